/**
 * OWASP API4 (unrestricted resource consumption): SEC-T11…T16 and the raw 408/431/400 of SEC-T21.
 * The app listens on a real port because slow clients and oversized headers never reach inject().
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { LightMyRequestResponse } from "fastify";
import { defaultConfig } from "../src/config.js";
import { uuidv7 } from "../src/ids.js";
import { type FilePart, multipart, png } from "./attachment-support.js";
import { openApiDoc } from "./edge-support.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { ANYONE, assertError } from "./messaging-helpers.js";
import { GROUP, HOOK_URL, makeResources, rawError, type Resources, secApp, trickle } from "./security-support.js";

describe("API4 unrestricted resource consumption (a listening app with small upload limits and timeouts)", () => {
  let t: TestApp;
  let a: SeededAccount;
  let r: Resources;
  let dir: string;
  let port: number;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "mb-security-"));
    t = await secApp({ config: { ATTACHMENTS_DIR: dir, ATTACHMENT_MAX_FILE_BYTES: 1000, ATTACHMENT_MAX_REQUEST_BYTES: 2500, HEADERS_TIMEOUT_MS: 300, REQUEST_TIMEOUT_MS: 800 } });
    a = await t.seedAccount();
    r = await makeResources(t, a, "test");
    port = Number(new URL(await t.app.listen({ host: "127.0.0.1", port: 0 })).port);
  });
  after(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("SEC-T11: 1 MiB + 1 byte of JSON is 413 payload_too_large on every JSON write route (edge.test.ts: exactly the limit passes)", async () => {
    const limit = defaultConfig().BODY_LIMIT_BYTES;
    assert.equal(limit, 1_048_576);
    const big = `{"text":"${"x".repeat(limit - 10)}"}`;
    assert.equal(Buffer.byteLength(big), limit + 1);
    for (const [method, url] of [
      ["POST", "/v1/messages"], ["PATCH", `/v1/messages/${r.message}`], ["POST", `/v1/messages/${r.message}/reactions`], ["POST", "/v1/chats"],
      ["PATCH", `/v1/chats/${r.group}`], ["POST", `/v1/chats/${r.group}/participants`], ["POST", "/v1/webhooks"], ["PATCH", `/v1/webhooks/${r.webhook}`],
      ["POST", "/v1/attachments/presign"], ["POST", "/v1/test_helpers/inbound"],
    ] as const) {
      assertError(await t.call(a.testKey, method, url, big), 413, "payload_too_large", `${method} ${url}`);
    }
  });

  test("field limits: text, metadata (20 keys, 40-character keys, 500-character string values), attachment_ids, addresses, events, title, filename, url → 400", async () => {
    const send = (extra: Record<string, unknown>) => t.call(a.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: r.handle, text: "hi", ...extra });
    const keys = (n: number, len = 3) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${"k".repeat(len - 3)}${String(i).padStart(3, "0")}`, "v"]));
    const refused: [string, () => Promise<LightMyRequestResponse>, string][] = [
      ["text of 10,001", () => send({ text: "x".repeat(10_001) }), "invalid_request"],
      ["21 metadata keys", () => send({ metadata: keys(21) }), "invalid_request"],
      ["a 41-character metadata key", () => send({ metadata: keys(1, 41) }), "invalid_request"],
      ["an empty metadata key", () => send({ metadata: { "": "v" } }), "invalid_request"],
      ["a 501-character metadata value", () => send({ metadata: { k: "v".repeat(501) } }), "invalid_request"],
      ["a number as metadata value", () => send({ metadata: { k: 1 } }), "invalid_request"],
      ["an object as metadata value", () => send({ metadata: { k: { deep: "x" } } }), "invalid_request"],
      ["metadata as an array", () => send({ metadata: ["x"] }), "invalid_request"],
      ["11 attachment_ids", () => send({ attachment_ids: Array.from({ length: 11 }, () => uuidv7()) }), "invalid_request"],
      ["metadata too big on a group's first message", () => t.call(a.testKey, "POST", "/v1/chats", { from_handle: r.handle, addresses: GROUP, message: { text: "x", metadata: keys(21) } }), "invalid_request"],
      ["32 group addresses", () => t.call(a.testKey, "POST", "/v1/chats", { from_handle: r.handle, addresses: Array.from({ length: 32 }, (_, i) => `+1555777${String(i).padStart(4, "0")}`), message: { text: "x" } }), "invalid_request"],
      ["a 101-character title", () => t.call(a.testKey, "PATCH", `/v1/chats/${r.group}`, { title: "t".repeat(101) }), "invalid_request"],
      ["101 webhook event types", () => t.call(a.testKey, "POST", "/v1/webhooks", { url: HOOK_URL, events: Array.from({ length: 101 }, () => "message.sent") }), "invalid_request"],
      ["a webhook url of 2,049 characters", () => t.call(a.testKey, "POST", "/v1/webhooks", { url: `http://93.184.216.34/${"a".repeat(2049 - 21)}` }), "invalid_url"],
      ["a 256-character filename", () => t.call(a.testKey, "POST", "/v1/attachments/presign", { filename: "f".repeat(256), content_type: "text/plain" }), "invalid_request"],
      ["a 33-character reaction", () => t.call(a.testKey, "POST", `/v1/messages/${r.message}/reactions`, { reaction: "r".repeat(33) }), "invalid_request"],
    ];
    for (const [what, run, code] of refused) assertError(await run(), 400, code as "invalid_request", what);
    const atLimit = await send({ text: "x".repeat(10_000), metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${"k".repeat(37)}${String(i).padStart(3, "0")}`, "v".repeat(500)])) });
    assert.equal(atLimit.statusCode, 202, atLimit.body);
  });

  test("SEC-T14: every list caps limit at 100 (0, 101, -1, 1.5, abc, empty → 400), defaults to 50, and bounds `before`", async () => {
    const doc = await openApiDoc(t);
    const lists = Object.entries(doc.paths)
      .filter(([, item]) => JSON.stringify(item.get?.responses?.["200"] ?? {}).includes("has_more"))
      .map(([path]) => path);
    // GET /v1/numbers lists the operator's numbers for the account: bounded by provisioning, unpaged.
    assert.deepEqual(lists.filter((p) => p !== "/v1/numbers").sort(), ["/v1/chats", "/v1/messages", "/v1/webhooks", "/v1/webhooks/{id}/deliveries"]);
    for (const path of lists.filter((p) => p !== "/v1/numbers")) {
      const params = (doc.paths[path]?.get as { parameters?: { name: string; schema: { maximum?: number; default?: number } }[] } | undefined)?.parameters ?? [];
      const limit = params.find((p) => p.name === "limit");
      assert.deepEqual([limit?.schema.maximum, limit?.schema.default], [100, 50], path);
      const url = path.replace("{id}", r.webhook);
      for (const bad of ["0", "101", "-1", "1.5", "abc", "", "99999999999999999999"]) assertError(await t.call(a.testKey, "GET", `${url}?limit=${bad}`), 400, "invalid_request", `${url}?limit=${bad}`);
      assertError(await t.call(a.testKey, "GET", `${url}?before=${"9".repeat(65)}`), 400, "invalid_request", `${url} long before`);
      for (const ok of ["1", "100"]) assert.equal((await t.call(a.testKey, "GET", `${url}?limit=${ok}`)).statusCode, 200, `${url}?limit=${ok}`);
    }
    for (let i = 0; i < 51; i++) assert.equal((await t.call(a.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: r.handle, text: `m${i}` })).statusCode, 202);
    const page = (await t.call(a.testKey, "GET", "/v1/messages")).json();
    assert.deepEqual([page.data.length, page.has_more], [50, true]);
  });

  const upload = (files: FilePart[]) => {
    const body = multipart(files);
    return t.app.inject({ method: "POST", url: "/v1/attachments", headers: { authorization: `Bearer ${a.testKey}`, ...body.headers }, payload: body.payload });
  };

  test("SEC-T12, T13, T16: uploads — a file or request over its limit is 413, 11 or 13 parts are 400, an .exe named .jpg is 415, a PNG labelled PDF is stored as image/png (attachments.test.ts)", async () => {
    assertError(await upload([{ filename: "big.bin", data: randomBytes(1001) }]), 413, "payload_too_large", "file");
    assertError(await upload([1, 2, 3].map((i) => ({ filename: `p${i}.bin`, data: randomBytes(900) }))), 413, "payload_too_large", "request");
    const tiny = (i: number) => ({ filename: `f${i}.txt`, data: Buffer.from("x") });
    for (const n of [11, 13]) assertError(await upload(Array.from({ length: n }, (_, i) => tiny(i))), 400, "invalid_request", `${n} parts`);
    const exe = Buffer.concat([Buffer.from("MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", "latin1"), Buffer.alloc(200)]);
    assertError(await upload([{ filename: "cat.jpg", type: "image/jpeg", data: exe }]), 415, "unsupported_media_type", ".exe as .jpg");
    const pdf = await upload([{ filename: "doc.pdf", type: "application/pdf", data: await png() }]);
    assert.equal(pdf.statusCode, 201, pdf.body);
    assert.equal(pdf.json().data[0].mime_type, "image/png");
    const p = (await t.call(a.testKey, "POST", "/v1/attachments/presign", { filename: "b.bin", content_type: "application/octet-stream" })).json().data;
    const put = new URL(p.upload_url);
    assertError(await t.app.inject({ method: "PUT", url: put.pathname + put.search, payload: randomBytes(1001) }), 413, "payload_too_large", "presigned PUT");
    const stored = await t.db.kysely.selectFrom("attachments").select("id").where("state", "=", "uploaded").execute();
    assert.deepEqual(stored.map((x) => x.id), [pdf.json().data[0].id], "only the accepted PNG is stored");
  });

  test("SEC-T15: the timeout settings reach the server, whose deadlines are checked often enough to hold them", () => {
    const server = t.app.server as typeof t.app.server & { connectionsCheckingInterval: number };
    assert.deepEqual([server.headersTimeout, server.requestTimeout, server.connectionsCheckingInterval], [300, 800, 75]);
  });

  test("SEC-T15: a client that trickles its headers (slow loris) is answered 408 request_timeout and cut off within the headers timeout", async () => {
    const out = await trickle(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n", 50, 5_000);
    assert.ok(out.closedAfterMs >= 250 && out.closedAfterMs < 1_500, `closed after ${out.closedAfterMs} ms`);
    rawError(out.response, 408, "request_timeout");
  });

  test("SEC-T15: a client that trickles its body is cut off within the request timeout, and nothing of it is stored", async () => {
    const endpoints = async () => (await t.db.kysely.selectFrom("webhook_endpoints").select("id").execute()).length;
    const before = await endpoints();
    const head = `POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.testKey}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"url":"`;
    const out = await trickle(port, head, "a", 50, 5_000);
    assert.ok(out.closedAfterMs >= 700 && out.closedAfterMs < 2_500, `closed after ${out.closedAfterMs} ms`);
    rawError(out.response, 408, "request_timeout");
    assert.equal(await endpoints(), before);
  });

  test("SEC-T21 off the route table: headers over 16 KiB are 431 headers_too_large, bytes that are not HTTP 400 invalid_request — both in the envelope", async () => {
    const huge = await trickle(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(17_000)}\r\n\r\n`, "", 1_000, 5_000);
    rawError(huge.response, 431, "headers_too_large");
    const garbage = await trickle(port, "HELLO THERE\r\n\r\n", "", 1_000, 5_000);
    rawError(garbage.response, 400, "invalid_request");
  });

  test("SEC-T15 control: a prompt client on the same server is served", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/numbers`, { headers: { authorization: `Bearer ${a.testKey}` } });
    assert.equal(res.status, 200);
  });
});
