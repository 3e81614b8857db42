/**
 * OWASP API2 (broken authentication): SEC-T04…T07 and the constant-time comparisons.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { secretMatches } from "../src/backends/ingest-route.js";
import { uuidv7 } from "../src/ids.js";
import { generateKey, safeEqual } from "../src/keys/secret.js";
import { addNumber } from "../src/numbers/store.js";
import { errorBody } from "./auth-contract.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { dump, logSink, secApp, spyTimingSafeEqual } from "./security-support.js";
import { fakeResolver, Receiver } from "./webhook-support.js";

describe("API2 broken authentication: keys (the app logs everything, at trace level, into `lines`)", () => {
  let t: TestApp;
  let a: SeededAccount;
  let device: Receiver;
  let hook: Receiver;
  const { stream, lines } = logSink();
  before(async () => {
    device = await Receiver.start();
    hook = await Receiver.start();
    t = await secApp({
      logger: { level: "trace", stream },
      config: { WEBHOOK_ALLOW_PRIVATE: true },
      webhookResolver: fakeResolver(),
      extraRoutes: (v1) => v1.get("/_sec/boom", { schema: { hide: true } }, async () => Promise.reject(new Error("boom"))),
    });
    a = await t.seedAccount();
  });
  after(async () => {
    await t.close();
    await device.close();
    await hook.close();
  });

  test("SEC-T04: missing, malformed, bad-checksum, unknown and revoked keys get one identical 401 (auth-contract.ts runs this on every route)", async () => {
    const r = await t.seedAccount("Revoked");
    const live = await t.call(r.testKey, "GET", "/v1/numbers");
    assert.equal(live.statusCode, 200, "the key works before it is revoked");
    await t.revoke(r.testKeyId);
    const flipped = a.testKey.slice(0, -1) + (a.testKey.endsWith("A") ? "B" : "A");
    const bodies = new Set<string>();
    for (const k of [null, "sk_test_123", flipped, generateKey("test"), generateKey("live"), r.testKey]) {
      const res = await t.call(k, "GET", "/v1/numbers", undefined, k === null ? { authorization: "Bearer" } : {});
      bodies.add(errorBody(res, 401, "unauthorized", String(k)));
    }
    assert.equal(bodies.size, 1, [...bodies].join("\n"));
  });

  test("SEC-T05: a key in the query string is never used: alone 401, beside a header 400 (edge.test.ts)", async () => {
    errorBody(await t.call(null, "GET", `/v1/numbers?api_key=${a.testKey}`), 401, "unauthorized");
    errorBody(await t.call(a.testKey, "GET", `/v1/numbers?api_key=${a.liveKey}`), 400, "invalid_request");
  });

  test("SEC-T07: api_keys holds the SHA-256 of each key and a 12-character display prefix; no table holds a key (edge.test.ts dumps too)", async () => {
    const rows = await t.db.kysely.selectFrom("api_keys").selectAll().where("account_id", "=", a.id).orderBy("mode").execute();
    assert.deepEqual(Object.keys(rows[0] ?? {}).sort(), ["account_id", "created_at", "id", "key_hash", "key_prefix", "mode", "rate_limit", "revoked_at"]);
    for (const row of rows) {
      const k = row.mode === "test" ? a.testKey : a.liveKey;
      assert.equal(row.key_hash, createHash("sha256").update(k).digest("hex"));
      assert.equal(row.key_prefix, `${k.slice(0, 12)}…`);
    }
    const everything = JSON.stringify(await dump(t.db, []));
    for (const k of [a.testKey, a.liveKey]) assert.ok(!everything.includes(k.slice(12, 40)), "a key's secret part is stored");
  });

  test("constant time: safeEqual compares with crypto.timingSafeEqual, and authentication compares the stored hash through it", async () => {
    const spy = spyTimingSafeEqual();
    try {
      assert.equal(safeEqual("a".repeat(64), "b".repeat(64)), false);
      assert.equal(safeEqual("c".repeat(64), "c".repeat(64)), true);
      assert.equal(spy.calls.length, 2, "safeEqual did not go through timingSafeEqual");
      spy.calls.length = 0;
      const res = await t.call(a.testKey, "GET", "/v1/numbers");
      assert.equal(res.statusCode, 200);
      const hash = createHash("sha256").update(a.testKey).digest("hex");
      assert.ok(spy.calls.some(([x, y]) => x.toString() === hash && y.toString() === hash), "the request's key hash was not compared in constant time");
      // The other secrets compared on requests: device ingest secrets and attachment URL signatures.
      spy.calls.length = 0;
      assert.equal(secretMatches("x".repeat(32), "y".repeat(32)), false);
      assert.equal(spy.calls.length, 1, "secretMatches");
      const urls = t.app.services.attachments.urls;
      const signed = new URL(urls.download(uuidv7(), "response"));
      const sig = signed.searchParams.get("signature") ?? "";
      const forged = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
      assert.throws(() => urls.verify("GET", signed.pathname.split("/")[3] ?? "", signed.searchParams.get("expires") ?? "", forged));
      assert.equal(spy.calls.length, 2, "attachment URL signatures");
    } finally {
      spy.restore();
    }
  });

  test("SEC-T06: no API key, webhook secret, device ingest secret, device password or URL signature reaches any log line — on success, on errors, in URLs (regression: ingest secrets were logged)", async () => {
    // Every request of this block's earlier tests is in the log too (a's keys, the malformed and revoked ones).
    const secrets: string[] = [a.testKey, a.liveKey];
    const c = await t.seedAccount("Logged");
    await t.revoke(c.liveKeyId);
    secrets.push(c.testKey, c.liveKey, c.testKey.slice(8), c.liveKey.slice(8));
    const n = await addNumber(t.db.kysely, t.clock, { accountId: c.id, handle: "+15557010001", channels: "imessage,sms", backend: "bluebubbles", settings: { url: device.url, password: "bb-password-3f9a" } });
    const row = await t.db.kysely.selectFrom("numbers").select("backend_config").where("id", "=", n.id).executeTakeFirstOrThrow();
    const ingestSecret: string = JSON.parse(row.backend_config).bluebubbles.ingestSecret;
    secrets.push(ingestSecret, "bb-password-3f9a");
    await t.app.services.devices.tick();
    for (const s of [ingestSecret, `${ingestSecret}x`]) {
      await t.app.inject({ method: "POST", url: `/ingest/bluebubbles/${n.id}?secret=${encodeURIComponent(s)}`, payload: { type: "typing-indicator", data: { display: true, guid: "iMessage;-;+15557010002" } } });
    }
    const w = await t.call(c.testKey, "POST", "/v1/webhooks", { url: hook.url });
    const rotated = await t.call(c.testKey, "POST", `/v1/webhooks/${w.json().data.id}/rotate-secret`);
    secrets.push(w.json().data.secret, rotated.json().data.secret);
    await t.call(c.testKey, "POST", `/v1/webhooks/${w.json().data.id}/test`);
    await t.app.services.webhooks.runUntilIdle();
    const presign = (await t.call(c.testKey, "POST", "/v1/attachments/presign", { filename: "a.txt", content_type: "text/plain" })).json().data;
    const upload = new URL(presign.upload_url);
    secrets.push(upload.searchParams.get("signature") ?? "");
    await t.app.inject({ method: "PUT", url: upload.pathname + upload.search, payload: Buffer.from("hello") });
    const att = (await t.call(c.testKey, "GET", `/v1/attachments/${presign.id}`)).json().data;
    const download = new URL(att.url);
    secrets.push(download.searchParams.get("signature") ?? "");
    await t.app.inject({ method: "GET", url: download.pathname + download.search });
    await t.call(c.liveKey, "GET", "/v1/numbers");
    await t.call(c.testKey, "POST", "/v1/messages", "{bad json");
    await t.call(c.testKey, "GET", "/v1/_sec/boom");
    await t.call(null, "GET", `/v1/numbers?api_key=${c.testKey}`);
    await t.call(null, "GET", `/nope/${c.liveKey}`);
    await t.call(null, "GET", "/v1/numbers", undefined, { authorization: `Basic ${Buffer.from(`${c.testKey}:`).toString("base64")}` });
    assert.ok(hook.requests.length >= 1, "the webhook was delivered (its attempt was logged)");
    assert.ok(lines.some((l) => l.includes("/ingest/bluebubbles/") && l.includes("secret=[redacted]")), "the capture saw the ingest requests");
    assert.ok(lines.some((l) => l.includes("signature=[redacted]")), "the capture saw the signed URLs");
    assert.ok(lines.some((l) => l.includes("unhandled error")), "the capture saw the 500");
    assert.ok(secrets.every((s) => s.length >= 16), "every secret was captured");
    for (const s of secrets) assert.deepEqual(lines.filter((l) => l.includes(s)), [], "a secret is in the log");
    assert.deepEqual(lines.filter((l) => /sk_(live|test)_[0-9A-Za-z]|whsec_/.test(l)), []);
  });
});
