/**
 * Regressions for the bugs the OpenAPI fuzzer (test/fuzz-*.test.ts) found, one focused test each,
 * named after what the fuzzer reported. They pass on SQLite and PostgreSQL.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { LightMyRequestResponse } from "fastify";
import { multipart } from "./attachment-support.js";
import { openApiDoc } from "./edge-support.js";
import { operationsOf } from "./fuzz-openapi.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";
import { assertError } from "./messaging-helpers.js";

const FROM = "+15557770101";
const ANYONE = "+15557779999";

let t: TestApp;
let a: SeededAccount;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "mb-fuzz-regressions-"));
  t = await buildTestApp({ config: { ATTACHMENTS_DIR: dir } });
  a = await t.seedAccount();
  await t.addNumber(a.id, FROM, "imessage,sms");
});
after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

const send = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => t.call(a.testKey, "POST", "/v1/messages", body, headers);
const dataOf = <T = Record<string, unknown>>(res: LightMyRequestResponse): T => (res.json() as { data: T }).data;

describe("the OpenAPI document lists every status the framework itself gives", () => {
  test("every operation documents 400; every operation that reads a body documents 413 and 415 (POST retry with text/plain answered an undocumented 415)", async () => {
    const ops = operationsOf(await openApiDoc(t));
    for (const op of ops) {
      assert.ok(op.responses["400"], `${op.id} does not document 400`);
      if (op.method !== "GET") for (const s of ["413", "415"]) assert.ok(op.responses[s], `${op.id} does not document ${s}`);
    }
    const m = dataOf(await send({ from_handle: FROM, to: ANYONE, text: "x" }));
    const res = await t.app.inject({ method: "POST", url: `/v1/messages/${m.id}/retry`, headers: { authorization: `Bearer ${a.testKey}`, "content-type": "text/plain" }, payload: "null" });
    assertError(res, 415, "unsupported_media_type");
  });

  test("GET /healthz?x=1 is 400, and /healthz documents it", async () => {
    assertError(await t.call(null, "GET", "/healthz?x=1"), 400, "invalid_request");
    const op = operationsOf(await openApiDoc(t)).find((o) => o.id === "GET /healthz");
    assert.ok(op?.responses["400"]);
  });

  test("the signed attachment URLs are documented without API-key security (they take none: no key → 403 invalid_signature, not 401)", async () => {
    const ops = operationsOf(await openApiDoc(t)).filter((o) => o.path === "/v1/attachments/{id}/content");
    assert.equal(ops.length, 2);
    for (const op of ops) assert.equal(op.keyed, false, `${op.id} is documented as needing an API key`);
  });

  test("POST /v1/test_helpers/inbound documents 409 (not_a_group), and 200 and 422 (Idempotency-Key replay and reuse)", async () => {
    const op = operationsOf(await openApiDoc(t)).find((o) => o.id === "POST /v1/test_helpers/inbound");
    for (const s of ["200", "409", "422"]) assert.ok(op?.responses[s], `inbound does not document ${s}`);
    const chat = dataOf(await send({ from_handle: FROM, to: ANYONE, text: "1:1" })).conversation_id as string;
    assertError(await t.call(a.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "x", conversation_id: chat }), 409, "not_a_group");
    const body = { from_handle: FROM, remote_handle: ANYONE, text: "keyed" };
    const first = await t.call(a.testKey, "POST", "/v1/test_helpers/inbound", body, { "idempotency-key": "inbound-replay" });
    assert.equal(first.statusCode, 201, first.body);
    const again = await t.call(a.testKey, "POST", "/v1/test_helpers/inbound", body, { "idempotency-key": "inbound-replay" });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(dataOf(again).id, dataOf(first).id);
  });
});

describe("ids are UUIDs, whatever their case", () => {
  test("POST /v1/messages/{ID}/retry with an upper-case id answers like the lower-case one (was 404 not_found)", async () => {
    const m = dataOf(await send({ from_handle: FROM, to: ANYONE, text: "queued" }));
    for (const id of [String(m.id), String(m.id).toUpperCase()]) {
      assertError(await t.call(a.testKey, "POST", `/v1/messages/${id}/retry`), 409, "conflict", id);
    }
  });

  test("reply_to in upper case names the same message (was 404), and is stored as the message's id", async () => {
    const m = dataOf(await send({ from_handle: FROM, to: ANYONE, text: "original" }));
    const reply = await send({ from_handle: FROM, to: ANYONE, text: "reply", reply_to: String(m.id).toUpperCase() });
    assert.equal(reply.statusCode, 202, reply.body);
    assert.equal(dataOf(reply).reply_to, m.id);
  });
});

describe("Idempotency-Key", () => {
  test("one key sent to another chat's action is another request: 422 — for another account's chat too, exactly as for a missing one (it replayed the first chat's answer with 200)", async () => {
    const chatA = dataOf(await send({ from_handle: FROM, to: "+15557779991", text: "a" })).conversation_id as string;
    const chatB = dataOf(await send({ from_handle: FROM, to: "+15557779992", text: "b" })).conversation_id as string;
    const b = await t.seedAccount("Other");
    await t.addNumber(b.id, "+15557770201", "imessage");
    const foreign = dataOf(await t.call(b.testKey, "POST", "/v1/messages", { from_handle: "+15557770201", to: ANYONE, text: "c" })).conversation_id as string;
    const typing = (chat: string) => t.call(a.testKey, "POST", `/v1/chats/${chat}/typing`, { state: "start" }, { "idempotency-key": "typing-1" });
    const first = await typing(chatA);
    assert.equal(first.statusCode, 200, first.body);
    const blank = (res: LightMyRequestResponse) => res.body.replace(String(res.headers["x-request-id"]), "req_*");
    const foreignRes = await typing(foreign);
    assertError(foreignRes, 422, "idempotency_key_reused");
    assert.equal(blank(foreignRes), blank(await typing("01900000-0000-7000-8000-000000000000")));
    assertError(await typing(chatB), 422, "idempotency_key_reused");
    const replay = await typing(chatA.toUpperCase());
    assert.equal(replay.statusCode, 200, replay.body);
    assert.equal(replay.headers["idempotent-replayed"], "true");
  });
});

describe("path parameters", () => {
  test("a participant's email handle longer than 100 characters can be added and removed (was 400 'A path parameter is too long.')", async () => {
    const group = await t.call(a.testKey, "POST", "/v1/chats", { from_handle: FROM, addresses: ["+15557778881", "+15557778882", "+15557778883"], message: { text: "hi" } });
    assert.equal(group.statusCode, 201, group.body);
    const id = dataOf(group).id as string;
    const email = `${"a".repeat(150)}@example.com`;
    const added = await t.call(a.testKey, "POST", `/v1/chats/${id}/participants`, { handle: email });
    assert.equal(added.statusCode, 200, added.body);
    const removed = await t.call(a.testKey, "DELETE", `/v1/chats/${id}/participants/${encodeURIComponent(email)}`);
    assert.equal(removed.statusCode, 200, removed.body);
    assert.ok(!(dataOf<{ participants: string[] }>(removed).participants).includes(email));
  });
});

describe("POST /v1/attachments", () => {
  const upload = (headers: Record<string, string>, payload: string | Buffer, url = "/v1/attachments") =>
    t.app.inject({ method: "POST", url, headers: { authorization: `Bearer ${a.testKey}`, ...headers }, payload });

  test("an unknown query field is 400 invalid_request, as on every route (was 201: the route's validator skipped the query too)", async () => {
    const body = multipart([{ filename: "a.txt", type: "text/plain", data: Buffer.from("hello") }]);
    assertError(await upload(body.headers, body.payload, "/v1/attachments?x=1"), 400, "invalid_request");
    assert.equal((await upload(body.headers, body.payload)).statusCode, 201);
  });

  test("malformed multipart bodies are 400 invalid_request, not 500 (boundary mismatch, garbage, empty or over-long boundary)", async () => {
    const long = "b".repeat(300);
    const cases: [string, string][] = [
      ["multipart/form-data; boundary=nope", "--x--"],
      ["multipart/form-data; boundary=x", "garbage"],
      ["multipart/form-data; boundary=", "--\r\n"],
      [`multipart/form-data; boundary=${long}`, `--${long}\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nabc\r\n--${long}--\r\n`],
    ];
    for (const [type, payload] of cases) assertError(await upload({ "content-type": type }, payload), 400, "invalid_request", type.slice(0, 40));
  });

  test("a body cut off inside a file part is answered 400 at once (the request hung forever)", async () => {
    const body = multipart([{ filename: "a.txt", type: "text/plain", data: Buffer.from("hello world") }]);
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([
      upload(body.headers, body.payload.subarray(0, body.payload.length - 20)),
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error("no answer within 5 s")), 5_000);
      }),
    ]).finally(() => clearTimeout(timer));
    assertError(res, 400, "invalid_request");
  });
});

describe("text and numbers no database stores as sent", () => {
  test("a NUL in a text field is 400 invalid_request (PostgreSQL answered 500), in the body, a metadata key and the query", async () => {
    assertError(await send({ from_handle: FROM, to: ANYONE, text: "a\u0000b" }), 400, "invalid_request", "text");
    assertError(await send({ from_handle: FROM, to: ANYONE, text: "x", metadata: { "k\u0000": "v" } }), 400, "invalid_request", "metadata key");
    assertError(await t.call(a.testKey, "GET", `/v1/messages?before=${encodeURIComponent("2026-01-01T00:00:00\u0000Z")}`), 400, "invalid_request", "query");
  });

  test("an unpaired surrogate is 400 invalid_request (it was accepted, answered back, and stored as U+FFFD)", async () => {
    const res = await send({ from_handle: FROM, to: ANYONE, text: "x\ud800y" });
    const body = assertError(res, 400, "invalid_request");
    assert.match(body.message, /^body\.text /);
    const pair = await send({ from_handle: FROM, to: ANYONE, text: "ok 😀" });
    assert.equal(pair.statusCode, 202, pair.body);
    assert.equal(dataOf((await t.call(a.testKey, "GET", `/v1/messages/${dataOf(pair).id}`))).text, "ok 😀");
  });

  test("limit=Infinity, 1e400 or -1e400 is 400 invalid_request on every list (reached SQL as LIMIT Infinity: 500)", async () => {
    const hook = await t.call(a.testKey, "POST", "/v1/webhooks", { url: "https://93.184.215.14/hook" });
    assert.equal(hook.statusCode, 201, hook.body);
    const lists = ["/v1/messages", "/v1/chats", "/v1/webhooks", `/v1/webhooks/${dataOf(hook).id}/deliveries`];
    for (const list of lists) {
      for (const v of ["Infinity", "1e400", "-1e400"]) assertError(await t.call(a.testKey, "GET", `${list}?limit=${v}`), 400, "invalid_request", `${list}?limit=${v}`);
      assert.equal((await t.call(a.testKey, "GET", `${list}?limit=1e1`)).statusCode, 200);
    }
  });
});

describe("POST /v1/test_helpers/numbers/{handle}/status keeps the Idempotency-Key rules of every POST (it ignored the header)", () => {
  const status = (body: unknown, key?: string) => t.call(a.testKey, "POST", `/v1/test_helpers/numbers/${encodeURIComponent(FROM)}/status`, body, key === undefined ? {} : { "idempotency-key": key });

  test("a malformed key is 400; a retry is a replay (200, Idempotent-Replayed); another body under the key is 422", async () => {
    assertError(await status({ status: "online" }, ""), 400, "invalid_request");
    const first = await status({ status: "offline" }, "status-1");
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.headers["idempotent-replayed"], undefined);
    const replay = await status({ status: "offline" }, "status-1");
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.headers["idempotent-replayed"], "true");
    assert.deepEqual(dataOf(replay), dataOf(first));
    assertError(await status({ status: "online" }, "status-1"), 422, "idempotency_key_reused");
    const back = await status({ status: "online" });
    assert.equal(dataOf(back).status, "online");
  });
});
