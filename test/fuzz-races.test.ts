/**
 * Fuzzing the HTTP API (reliability.md §6) with fast-check on the real app and a real database:
 * P07 races (`fc.scheduler`) on Idempotency-Key and on single-use attachments.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { multipart } from "./attachment-support.js";
import { closeApp, fuzzApp } from "./fuzz-app.js";
import { params, scaled } from "./fuzz-budget.js";
import { clip } from "./fuzz-http.js";
import type { TestApp } from "./helpers.js";

// ───────────────────────────── P07: races ─────────────────────────────

describe("P07: races (fc.scheduler)", () => {
  let t: TestApp;
  let acct: Awaited<ReturnType<TestApp["seedAccount"]>>;
  const FROM = "+15557770301";
  let seq = 0;

  before(async () => {
    t = await fuzzApp();
    acct = await t.seedAccount("Races");
    await t.addNumber(acct.id, FROM, "imessage,sms");
  });
  after(() => closeApp(t));

  /** Every transaction start and end becomes a point the scheduler orders; requests start when it says. */
  async function race<T>(s: fc.Scheduler, runs: (() => Promise<T>)[]): Promise<T[]> {
    const db = t.db as { transaction: TestApp["db"]["transaction"] };
    const original = db.transaction;
    db.transaction = async <R>(fn: Parameters<typeof original>[0]): Promise<R> => {
      await s.schedule(Promise.resolve(), "tx start");
      const out = (await original(fn)) as R;
      await s.schedule(Promise.resolve(), "tx end");
      return out;
    };
    try {
      const all = Promise.all(runs.map((run, i) => s.schedule(Promise.resolve(), `request ${i}`).then(run)));
      return await s.waitFor(all);
    } finally {
      db.transaction = original;
    }
  }

  const countMessages = async () =>
    Number((await t.db.kysely.selectFrom("messages").select((eb) => eb.fn.countAll<number | string>().as("n")).where("account_id", "=", acct.id).executeTakeFirstOrThrow()).n);

  const creates: Record<string, { url: string; body: () => unknown; status: number; count?: () => Promise<number> }> = {
    message: { url: "/v1/messages", body: () => ({ from_handle: FROM, to: "+15557779999", text: `race ${seq}` }), status: 202, count: countMessages },
    inbound: { url: "/v1/test_helpers/inbound", body: () => ({ from_handle: FROM, remote_handle: "+15557776666", text: `in ${seq}` }), status: 201, count: countMessages },
    webhook: { url: "/v1/webhooks", body: () => ({ url: `https://hooks.example.com/${seq}` }), status: 201 },
    presign: { url: "/v1/attachments/presign", body: () => ({ filename: "r.bin", content_type: "application/octet-stream" }), status: 201 },
  };

  test("two identical requests with one Idempotency-Key: one resource, the other a replay of it or 409 idempotency_key_in_use", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.constantFrom(...Object.keys(creates)), fc.integer({ min: 2, max: 3 }), fc.boolean(), async (s, which, n, rotated) => {
        const c = creates[which] as (typeof creates)[string];
        seq++;
        const body = c.body();
        const key = `race-${seq}`;
        const second = rotated ? await t.newKey(acct.id, "test") : acct.testKey; // any key of the account shares the namespace
        const before = c.count ? await c.count() : 0;
        const results = await race(s, Array.from({ length: n }, (_v, i) => () => t.call(i === 1 ? second : acct.testKey, "POST", c.url, body, { "idempotency-key": key })));
        const where = () => `${which}: ${results.map((r) => `${r.statusCode} ${clip(r.body, 160)}`).join(" | ")}\n${s.report().map((x) => x.label).join(", ")}`;
        for (const r of results) assert.ok([c.status, 200, 409].includes(r.statusCode), `unexpected status: ${where()}`);
        assert.equal(results.filter((r) => r.statusCode === c.status).length, 1, `not exactly one ${c.status}: ${where()}`);
        const ids = new Set(results.filter((r) => r.statusCode < 300).map((r) => (r.json() as { data: { id: string } }).data.id));
        assert.equal(ids.size, 1, `two resources for one key: ${where()}`);
        for (const r of results) {
          if (r.statusCode === 200) assert.equal(r.headers["idempotent-replayed"], "true", where());
          if (r.statusCode === 409) {
            assert.equal((r.json() as { error: string }).error, "idempotency_key_in_use", where());
            assert.equal(r.headers["retry-after"], "1", where());
          }
        }
        if (c.count) assert.equal((await c.count()) - before, 1, `messages created: ${where()}`);
        const replay = await t.call(acct.testKey, "POST", c.url, body, { "idempotency-key": key });
        assert.equal(replay.statusCode, 200, `a later retry: ${replay.statusCode} ${replay.body}`);
        assert.equal((replay.json() as { data: { id: string } }).data.id, [...ids][0]);
        // Stay under the 50 endpoints an account may have.
        if (which === "webhook") assert.equal((await t.call(acct.testKey, "DELETE", `/v1/webhooks/${[...ids][0]}`)).statusCode, 200);
      }),
      params(scaled(0.25, 10)),
    );
  });

  test("sends racing for one attachment: exactly one claims it, the others 400 invalid_attachments", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(fc.constantFrom("send", "send-upper", "send-keyed", "inbound"), { minLength: 2, maxLength: 3 }), async (s, racers) => {
        seq++;
        const body = multipart([{ filename: "race.txt", type: "text/plain", data: Buffer.from(`race ${seq}`) }]);
        const up = await t.app.inject({ method: "POST", url: "/v1/attachments", headers: { authorization: `Bearer ${acct.testKey}`, ...body.headers }, payload: body.payload });
        assert.equal(up.statusCode, 201, up.body);
        const att = ((up.json() as { data: { id: string }[] }).data[0] as { id: string }).id;
        const before = await countMessages();
        const results = await race(
          s,
          racers.map((kind, i) => () => {
            const ids = [kind === "send-upper" ? att.toUpperCase() : att];
            if (kind === "inbound") return t.call(acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: "+15557776666", attachment_ids: ids });
            const headers: Record<string, string> = kind === "send-keyed" ? { "idempotency-key": `att-${seq}-${i}` } : {};
            return t.call(acct.testKey, "POST", "/v1/messages", { from_handle: FROM, to: "+15557779999", text: `claim ${i}`, attachment_ids: ids }, headers);
          }),
        );
        const where = () => `${racers.join(", ")}: ${results.map((r) => `${r.statusCode} ${clip(r.body, 160)}`).join(" | ")}`;
        const won = results.filter((r) => r.statusCode === 201 || r.statusCode === 202);
        assert.equal(won.length, 1, `not exactly one winner: ${where()}`);
        for (const r of results) {
          if (r.statusCode < 300) continue;
          assert.equal(r.statusCode, 400, where());
          assert.equal((r.json() as { error: string }).error, "invalid_attachments", where());
        }
        assert.equal((await countMessages()) - before, 1, `messages created: ${where()}`);
        const winner = ((won[0] as LightMyRequestResponse).json() as { data: { id: string } }).data.id;
        const a = await t.call(acct.testKey, "GET", `/v1/attachments/${att}`);
        assert.equal((a.json() as { data: { message_id: string } }).data.message_id, winner, `the attachment's message: ${where()}`);
      }),
      params(scaled(0.2, 10)),
    );
  });
});
