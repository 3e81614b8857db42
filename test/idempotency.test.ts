// Idempotency-Key on POSTs: reliability.md §1 (IDEM-R1…R11, tests IDEM-T01…T16) and api.md §4,
// through test-only routes (test/test-notes-route.ts) behind the real auth, limits and handlers.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { createApp } from "../src/app.js";
import { ERRORS, type ErrorCode } from "../src/errors.js";
import type { SeededAccount } from "./helpers.js";
import { buildNotesApp, type NotesApp, notesDb, notesRoutes } from "./test-notes-route.js";

const DAY = 24 * 3_600_000;
/** Tests that pause requests at gates: a bug that deadlocks them fails instead of hanging. */
const GATED = { timeout: 20_000 };

function assertError(res: LightMyRequestResponse, status: number, code: ErrorCode): void {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ["error", "message", "request_id"]);
  assert.equal(body.error, code);
  assert.match(body.request_id, /^req_[0-9a-f]{32}$/);
  assert.equal(body.request_id, res.headers["x-request-id"]);
}

describe("Idempotency-Key on POST", () => {
  let t: NotesApp;
  let acct: SeededAccount;
  const note = { text: "hello", tags: ["a", "b"] };
  const post = (key: string, body: unknown, k?: string, headers: Record<string, string> = {}) =>
    t.call(key, "POST", "/v1/test_notes", body, k === undefined ? headers : { ...headers, "idempotency-key": k });

  beforeEach(async () => {
    t = await buildNotesApp();
    acct = await t.seedAccount();
  });
  afterEach(() => t.close());

  it("202 then 200 replay: same id, current representation, Idempotent-Replayed, one note and one job (IDEM-T01)", async () => {
    const first = await post(acct.testKey, note, "K1");
    assert.equal(first.statusCode, 202);
    assert.equal(first.headers["idempotent-replayed"], undefined);
    const a = first.json();
    assert.deepEqual(Object.keys(a).sort(), ["data", "request_id"]);
    assert.equal(a.request_id, first.headers["x-request-id"]);
    assert.deepEqual({ text: a.data.text, tags: a.data.tags, status: a.data.status }, { ...note, status: "queued" });

    await notesDb(t.db.kysely).updateTable("test_notes").set({ status: "sent" }).execute();
    const second = await post(acct.testKey, note, "K1");
    assert.equal(second.statusCode, 200);
    assert.equal(second.headers["idempotent-replayed"], "true");
    const b = second.json();
    assert.deepEqual(b.data, { ...a.data, status: "sent" });
    assert.notEqual(b.request_id, a.request_id);
    assert.equal(b.request_id, second.headers["x-request-id"]);
    assert.equal(t.fx.creates, 1);
    assert.deepEqual(
      [await t.count("test_notes"), await t.count("test_note_jobs"), await t.count("idempotency_keys")],
      [1, 1, 1],
    );
  });

  it("422 idempotency_key_reused for the same key with a different body; nothing created (IDEM-T02)", async () => {
    assert.equal((await post(acct.testKey, note, "K2")).statusCode, 202);
    const res = await post(acct.testKey, { ...note, text: "other" }, "K2");
    assertError(res, 422, "idempotency_key_reused");
    assert.equal(res.json().message, ERRORS.idempotency_key_reused.message);
    assert.equal(await t.count("test_notes"), 1);
    assert.equal(t.fx.creates, 1);
  });

  it("422 for the same key on another endpoint, either way round (IDEM-T03)", async () => {
    assert.equal((await post(acct.testKey, note, "K3")).statusCode, 202);
    assertError(await t.call(acct.testKey, "POST", "/v1/test_uploads", { name: "f" }, { "idempotency-key": "K3" }), 422, "idempotency_key_reused");
    assert.equal((await t.call(acct.testKey, "POST", "/v1/test_uploads", { name: "f" }, { "idempotency-key": "U3" })).statusCode, 201);
    assertError(await post(acct.testKey, note, "U3"), 422, "idempotency_key_reused");
    assert.deepEqual([await t.count("test_notes"), await t.count("test_uploads")], [1, 1]);
  });

  it("200 replay for the same JSON with keys reordered and spacing changed; 422 when an array is reordered (IDEM-T04)", async () => {
    const id = (await post(acct.testKey, '{"text":"hello","tags":["a","b"]}', "K4")).json().data.id;
    const same = await post(acct.testKey, '{\n  "tags" : [ "a",  "b" ],\n\t"text":"hello"\n}', "K4");
    assert.equal(same.statusCode, 200);
    assert.equal(same.json().data.id, id);
    assertError(await post(acct.testKey, { text: "hello", tags: ["b", "a"] }, "K4"), 422, "idempotency_key_reused");
    assert.equal(await t.count("test_notes"), 1);
  });

  it("20 concurrent identical POSTs: exactly one 202, the rest 200 (same id) or 409 with Retry-After, one row (IDEM-T05)", async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => post(acct.testKey, note, "K5")));
    const by = (s: number) => all.filter((r) => r.statusCode === s);
    assert.equal(by(202).length, 1);
    assert.equal(by(200).length + by(409).length, 19, all.map((r) => r.statusCode).join(","));
    const id = by(202)[0]?.json().data.id;
    for (const r of by(200)) assert.equal(r.json().data.id, id);
    for (const r of by(409)) {
      assertError(r, 409, "idempotency_key_in_use");
      assert.equal(r.headers["retry-after"], "1");
    }
    assert.deepEqual([await t.count("test_notes"), await t.count("test_note_jobs")], [1, 1]);
  });

  it("409 idempotency_key_in_use + Retry-After while the original is inside its transaction, 200 replay after (IDEM-T06)", GATED, async () => {
    // The duplicate passes auth and validation first and waits at the handler's door, so it
    // reaches the idempotency layer while the original holds its transaction (SQLite serialises
    // database access, so it could not get through auth during that time).
    const pDup = post(acct.testKey, note, "K6", { "x-test-hook": "pause-before=dup" });
    await t.fx.gate("dup").reached;
    const pOrig = post(acct.testKey, note, "K6", { "x-test-hook": "pause-inside=orig" });
    await t.fx.gate("orig").reached;
    t.fx.gate("dup").release();
    const dup = await pDup;
    assertError(dup, 409, "idempotency_key_in_use");
    assert.equal(dup.headers["retry-after"], "1");
    t.fx.gate("orig").release();
    const orig = await pOrig;
    assert.equal(orig.statusCode, 202);
    const again = await post(acct.testKey, note, "K6");
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().data.id, orig.json().data.id);
    assert.equal(await t.count("test_notes"), 1);
  });

  it("two-phase: 409 + Retry-After while phase 1 holds the key during I/O, 201 then 200 replay (IDEM-T06, IDEM-R7)", GATED, async () => {
    const up = (h: Record<string, string> = {}) => t.call(acct.testKey, "POST", "/v1/test_uploads", { name: "f.png" }, { "idempotency-key": "U6", ...h });
    const pOrig = up({ "x-test-hook": "pause-io=io" });
    await t.fx.gate("io").reached;
    const dup = await up();
    assertError(dup, 409, "idempotency_key_in_use");
    assert.equal(dup.headers["retry-after"], "1");
    t.fx.gate("io").release();
    const orig = await pOrig;
    assert.equal(orig.statusCode, 201);
    const again = await up();
    assert.equal(again.statusCode, 200);
    assert.equal(again.headers["idempotent-replayed"], "true");
    assert.deepEqual(again.json().data, orig.json().data);
    assert.deepEqual([await t.count("test_uploads"), t.fx.creates], [1, 1]);
  });

  it("two-phase: a phase 1 whose process died answers 409 until its lock is 60 s old, then the retry takes over once", async () => {
    const up = () => t.call(acct.testKey, "POST", "/v1/test_uploads", { name: "f.png" }, { "idempotency-key": "U7" });
    t.fx.crashAfterPhase1 = true;
    assertError(await up(), 500, "internal_error");
    t.fx.crashAfterPhase1 = false;
    t.clock.advance(59_999);
    assertError(await up(), 409, "idempotency_key_in_use");
    t.clock.advance(1);
    assert.equal((await up()).statusCode, 201);
    assert.equal((await up()).statusCode, 200);
    assert.equal(await t.count("test_uploads"), 1);
  });

  it("two-phase: a slow owner whose lock was taken over gets 409 and neither completes nor frees the new owner's key", GATED, async () => {
    const up = (h: Record<string, string> = {}) => t.call(acct.testKey, "POST", "/v1/test_uploads", { name: "f.png" }, { "idempotency-key": "U8", ...h });
    const pSlow = up({ "x-test-hook": "pause-io=slow" });
    await t.fx.gate("slow").reached;
    t.clock.advance(60_000);
    const pTaker = up({ "x-test-hook": "pause-io=taker" });
    await t.fx.gate("taker").reached;
    t.fx.gate("slow").release();
    assertError(await pSlow, 409, "idempotency_key_in_use");
    assertError(await up(), 409, "idempotency_key_in_use");
    t.fx.gate("taker").release();
    const taker = await pTaker;
    assert.equal(taker.statusCode, 201);
    const replay = await up();
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.json().data.id, taker.json().data.id);
    assert.equal(await t.count("test_uploads"), 1);
  });

  it("two app instances on one database: the duplicate waits for the original's commit, then replays 200", GATED, async () => {
    // Each instance has its own in-flight map, so only the database orders them (on PostgreSQL
    // the unique index blocks the second insert until the first commits).
    const other = await createApp({ config: t.config, db: t.db, clock: t.clock, logger: false, extraRoutes: notesRoutes(t.fx) });
    try {
      const pOrig = post(acct.testKey, note, "K8", { "x-test-hook": "pause-inside=orig" });
      await t.fx.gate("orig").reached;
      const pDup = other.inject({ method: "POST", url: "/v1/test_notes", payload: note, headers: { authorization: `Bearer ${acct.testKey}`, "idempotency-key": "K8" } });
      if (t.db.dialect === "postgres") {
        const waiting = async () => {
          const r = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%idempotency_keys%'`.execute(t.db.kysely);
          return Number(r.rows[0]?.n) > 0;
        };
        for (let i = 0; !(await waiting()); i++) assert.ok(i < 1000, "the duplicate never blocked on the key row");
      }
      t.fx.gate("orig").release();
      const [orig, dup] = await Promise.all([pOrig, pDup]);
      assert.equal(orig.statusCode, 202);
      assert.equal(dup.statusCode, 200, dup.body);
      assert.equal(dup.json().data.id, orig.json().data.id);
      assert.equal(await t.count("test_notes"), 1);
    } finally {
      await other.close();
    }
  });

  it("500 with a generic body for a fault after the insert; everything rolled back, the retry gets 202 (IDEM-T07)", async () => {
    t.fx.faultAfterInsert = true;
    const res = await post(acct.testKey, note, "K9");
    assertError(res, 500, "internal_error");
    assert.equal(res.json().message, ERRORS.internal_error.message);
    assert.doesNotMatch(res.body, /insert|select|test_notes|api_keys|\/work|\.ts|XX000|stack|\bat\b/i);
    assert.deepEqual([await t.count("test_notes"), await t.count("test_note_jobs"), await t.count("idempotency_keys")], [0, 0, 0]);
    t.fx.faultAfterInsert = false;
    assert.equal((await post(acct.testKey, note, "K9")).statusCode, 202);
    assert.deepEqual([await t.count("test_notes"), await t.count("test_note_jobs")], [1, 1]);
  });

  it("401 for a bad API key does not burn the key: the valid retry gets 202 (IDEM-T08)", async () => {
    const fresh = await t.newKey(acct.id, "test");
    await t.revoke(acct.testKeyId);
    assertError(await post("sk_test_not-a-key", note, "K10"), 401, "unauthorized");
    assertError(await post(acct.testKey, note, "K10"), 401, "unauthorized");
    assertError(await t.call(null, "POST", "/v1/test_notes", note, { "idempotency-key": "K10" }), 401, "unauthorized");
    assert.equal(await t.count("idempotency_keys"), 0);
    assert.equal((await post(fresh, note, "K10")).statusCode, 202);
  });

  it("429 does not burn the key: after Retry-After the same key gets 202, not a replay (IDEM-T09)", async () => {
    const key = await t.newKey(acct.id, "test", 1);
    assert.equal((await t.call(key, "GET", "/v1/numbers")).statusCode, 200);
    const limited = await post(key, note, "K11");
    assertError(limited, 429, "rate_limited");
    assert.equal(limited.headers["retry-after"], "60");
    t.clock.advance(60_000);
    const res = await post(key, note, "K11");
    assert.equal(res.statusCode, 202);
    assert.equal(res.headers["idempotent-replayed"], undefined);
    assert.equal(await t.count("test_notes"), 1);
  });

  it("400 for an unknown field or malformed JSON does not burn the key: the corrected body gets 202 (IDEM-T10)", async () => {
    const unknown = await post(acct.testKey, { ...note, colour: "red" }, "K12");
    assertError(unknown, 400, "invalid_request");
    assert.match(unknown.json().message, /colour/);
    assertError(await post(acct.testKey, '{"text": "hello",', "K12"), 400, "invalid_request");
    assertError(await post(acct.testKey, { text: "" }, "K12"), 400, "invalid_request");
    assert.equal((await post(acct.testKey, note, "K12")).statusCode, 202);
    assert.equal((await post(acct.testKey, note, "K12")).statusCode, 200);
    assert.equal(await t.count("test_notes"), 1);
  });

  it("503 device_offline does not burn the key: once the device is online the same key gets 202 (IDEM-T11)", async () => {
    t.fx.deviceOnline = false;
    const res = await post(acct.testKey, note, "K13");
    assertError(res, 503, "device_offline");
    assert.equal(res.json().message, ERRORS.device_offline.message);
    assert.deepEqual([await t.count("test_notes"), await t.count("idempotency_keys")], [0, 0]);
    t.fx.deviceOnline = true;
    assert.equal((await post(acct.testKey, note, "K13")).statusCode, 202);
    assert.equal((await post(acct.testKey, note, "K13")).statusCode, 200);
    assert.deepEqual([await t.count("test_notes"), t.fx.creates], [1, 2]);
  });

  it("two accounts using one key get two resources, and each replay returns its own (IDEM-T12)", async () => {
    const other = await t.seedAccount("Other");
    const a = (await post(acct.testKey, note, "K14")).json().data.id;
    const bFirst = await post(other.testKey, note, "K14");
    assert.equal(bFirst.statusCode, 202);
    const b = bFirst.json().data.id;
    assert.notEqual(a, b);
    assert.equal((await post(other.testKey, note, "K14")).json().data.id, b);
    assert.equal((await post(acct.testKey, note, "K14")).json().data.id, a);
    assertError(await t.call(other.testKey, "GET", `/v1/test_notes/${a}`), 404, "not_found");
    assert.deepEqual([await t.count("test_notes", acct.id), await t.count("test_notes", other.id)], [1, 1]);
  });

  it("a rotated key of the same account replays 200; the live key with the same key creates its own (IDEM-T13)", async () => {
    const testId = (await post(acct.testKey, note, "K15")).json().data.id;
    const rotated = await t.newKey(acct.id, "test");
    const replay = await post(rotated, note, "K15");
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.json().data.id, testId);
    const live = await post(acct.liveKey, note, "K15");
    assert.equal(live.statusCode, 202);
    assert.notEqual(live.json().data.id, testId);
    assert.equal((await post(acct.liveKey, note, "K15")).json().data.id, live.json().data.id);
    assert.equal((await post(acct.testKey, note, "K15")).json().data.id, testId);
    assert.equal(await t.count("test_notes"), 2);
  });

  it("keys live 24 h: a replay at exactly 24 h, a new resource 1 s later even before the reaper runs (IDEM-T14)", async () => {
    const first = (await post(acct.testKey, note, "K16")).json().data.id;
    t.clock.advance(DAY);
    const kept = await post(acct.testKey, note, "K16");
    assert.equal(kept.statusCode, 200);
    assert.equal(kept.json().data.id, first);
    t.clock.advance(1_000);
    const fresh = await post(acct.testKey, note, "K16");
    assert.equal(fresh.statusCode, 202);
    assert.notEqual(fresh.json().data.id, first);
    const rows = await t.db.kysely.selectFrom("idempotency_keys").select(["key", "resource_id"]).execute();
    assert.deepEqual(rows, [{ key: "K16", resource_id: fresh.json().data.id }]);
    assert.equal(await t.count("test_notes"), 2);
  });

  it("the reaper deletes only keys older than the TTL; a purged key creates a new resource (IDEM-T14)", async () => {
    const old = (await post(acct.testKey, note, "K17")).json().data.id;
    t.clock.advance(DAY - 1_000);
    const recent = (await post(acct.testKey, note, "K18")).json().data.id;
    t.clock.advance(1_000); // K17 is exactly 24 h old: kept
    assert.equal(await t.fx.services().idempotency.purgeExpired(), 0);
    t.clock.advance(1_000); // K17 is 24 h + 1 s old, K18 is 2 s old
    assert.equal(await t.fx.services().idempotency.purgeExpired(), 1);
    assert.deepEqual((await t.db.kysely.selectFrom("idempotency_keys").select("key").execute()).map((r) => r.key), ["K18"]);
    assert.equal(await t.fx.services().idempotency.purgeExpired(), 0);
    const again = await post(acct.testKey, note, "K17");
    assert.equal(again.statusCode, 202);
    assert.notEqual(again.json().data.id, old);
    const replay = await post(acct.testKey, note, "K18");
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.json().data.id, recent);
    assert.equal(await t.count("test_notes"), 3);
  });

  it("400 invalid_request naming the header for an empty, 256-char, control-char, space or non-ASCII key; 255 chars and the quoted form work (IDEM-T15)", async () => {
    for (const bad of ["", '""', "k".repeat(256), "a\tb", "a\u0001b", "a b", "ключ", "caf\u00e9"]) {
      const res = await post(acct.testKey, note, bad);
      assertError(res, 400, "invalid_request");
      assert.match(res.json().message, /Idempotency-Key/, JSON.stringify(bad));
    }
    assert.deepEqual([await t.count("test_notes"), await t.count("idempotency_keys")], [0, 0]);
    const long = "k".repeat(255);
    assert.equal((await post(acct.testKey, note, long)).statusCode, 202);
    assert.equal((await post(acct.testKey, note, long)).statusCode, 200);
    const quoted = await post(acct.testKey, note, '"abc-123"');
    assert.equal(quoted.statusCode, 202);
    const bare = await post(acct.testKey, note, "abc-123");
    assert.equal(bare.statusCode, 200);
    assert.equal(bare.json().data.id, quoted.json().data.id);
    assert.deepEqual((await t.db.kysely.selectFrom("idempotency_keys").select("key").orderBy("key").execute()).map((r) => r.key), ["abc-123", long]);
  });

  it("without a key every POST creates; GET and DELETE ignore the header, even an invalid one (IDEM-T16, IDEM-R11)", async () => {
    const a = await post(acct.testKey, note);
    const b = await post(acct.testKey, note);
    assert.deepEqual([a.statusCode, b.statusCode], [202, 202]);
    assert.notEqual(a.json().data.id, b.json().data.id);
    const id = (await post(acct.testKey, note, "K19")).json().data.id;
    for (const k of ["K19", "k".repeat(300), ""]) {
      const got = await t.call(acct.testKey, "GET", `/v1/test_notes/${id}`, undefined, { "idempotency-key": k });
      assert.equal(got.statusCode, 200);
      assert.equal(got.headers["idempotent-replayed"], undefined);
      assert.equal(got.json().data.id, id);
    }
    const del = await t.call(acct.testKey, "DELETE", `/v1/test_notes/${id}`, undefined, { "idempotency-key": "K19" });
    assert.equal(del.statusCode, 200);
    assert.deepEqual(del.json().data, { id, deleted: true });
    assertError(await t.call(acct.testKey, "DELETE", `/v1/test_notes/${id}`, undefined, { "idempotency-key": "K19" }), 404, "not_found");
    assert.equal((await t.call(acct.testKey, "GET", "/v1/numbers", undefined, { "idempotency-key": "K19" })).statusCode, 200);
    assert.equal(await t.count("idempotency_keys"), 1);
  });
});

describe("IDEMPOTENCY_REQUIRED", () => {
  it("400 invalid_request for a POST without the header; with it, 202 (IDEM-R2)", async () => {
    const t = await buildNotesApp({ config: { IDEMPOTENCY_REQUIRED: true } });
    try {
      const acct = await t.seedAccount();
      const res = await t.call(acct.testKey, "POST", "/v1/test_notes", { text: "x" });
      assertError(res, 400, "invalid_request");
      assert.match(res.json().message, /Idempotency-Key/);
      assert.equal((await t.call(acct.testKey, "POST", "/v1/test_notes", { text: "x" }, { "idempotency-key": "R1" })).statusCode, 202);
      assert.equal((await t.call(acct.testKey, "GET", "/v1/numbers")).statusCode, 200);
      assert.equal(await t.count("test_notes"), 1);
    } finally {
      await t.close();
    }
  });
});
