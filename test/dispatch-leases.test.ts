// Leases, fencing and reconciliation (reliability.md §4.2–§4.4: Q-R2…Q-R6, FI-01, FI-02, FI-08,
// PACE-T06): a send whose worker died is reconciled against the device's history before anything
// is resent — found → `sent` with no second device send; absent → resent once — and a worker
// that lost its lease cannot move the message.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { SECOND, PACE_MS, accept, assertPaced, bulkKey, drive, events, history, row } from "./dispatch-support.js";
import { type ScriptedApp, buildScriptedApp, claimOnly } from "./dispatch-device.js";

const S = "+15555550100";
const S2 = "+15555550101";
const A = "+15555551001";
const LEASE = 60 * SECOND;

describe("leases and reconciliation", () => {
  let t: ScriptedApp;
  let key: string;

  beforeEach(async () => {
    t = await buildScriptedApp();
    const acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
    await t.addNumber(acct.id, S);
    await t.addNumber(acct.id, S2);
  });
  afterEach(() => t.close());

  const post = (text: string, from = S) => accept(t, key, { from_handle: from, to: A, text });
  const statusOf = async (id: string) => (await t.call(key, "GET", `/v1/messages/${id}`)).json().data.status;

  it("crash after the claim, before the device call (FI-01): untouched until the lease ends, then reconciled absent and sent once, first in its lane", async () => {
    const ids = [await post("a0"), await post("a1")];
    const t0 = t.clock.now();
    // The worker commits its claim (the recovery point) and dies.
    const claimed = await claimOnly(t.worker(), t0);
    assert.deepEqual(claimed.map((c) => c.row.id), [ids[0]]);
    const stuck = await row(t.db, ids[0] as string);
    assert.equal(stuck.status, "sending");
    assert.equal(stuck.attempts, 1);
    assert.equal(stuck.lease_until, t0 + LEASE);
    assert.equal(await statusOf(ids[0] as string), "sending");

    // The restarted process: nothing of that lane moves while the lease runs.
    await drive(t, LEASE - SECOND, 5 * SECOND);
    assert.deepEqual(await history(t.db), []);
    assert.deepEqual(t.device.reconciles, []);
    await drive(t, 5 * SECOND);
    assert.deepEqual(t.device.reconciles, ["a0"]);
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS);
    assert.equal(sent[0]?.sent_at, t0 + LEASE);
    const m = await row(t.db, ids[0] as string);
    assert.equal(m.status, "read");
    assert.equal(m.attempts, 2);
    assert.equal(m.channel, "imessage");
    assert.equal((await events(t.db, "message.sent")).filter((e) => e.message_id === ids[0]).length, 1);
  });

  it("crash after the device sent it, before the database write (FI-02): reconciled as sent, never sent twice; the dead worker's late write is fenced off", async () => {
    t.device.script("a0", "hang");
    const ids = [await post("a0"), await post("a1")];
    const t0 = t.clock.now();
    // Worker 1 claims a0, the device sends it, and the worker stalls before recording.
    const zombie = t.worker();
    const stalled = zombie.tick();
    while ((await history(t.db)).length === 0) await new Promise((r) => setImmediate(r));
    assert.equal((await row(t.db, ids[0] as string)).status, "sending");
    const deadToken = (await row(t.db, ids[0] as string)).lease_token;

    // Worker 2 (the restarted process) reconciles once the lease has expired.
    await drive(t, LEASE, 5 * SECOND);
    assert.deepEqual(t.device.reconciles, ["a0"]);
    await drive(t, 5 * SECOND);
    const m = await row(t.db, ids[0] as string);
    // `sent` at least. (The device's delivered/read acks fired while the row was still `sending`
    // with no device id, and were dropped: it may stay `sent`.)
    assert.ok(["sent", "delivered", "read"].includes(m.status), m.status);
    assert.equal(m.device_message_id, `sim-${ids[0]}`);
    assert.equal(m.channel, "imessage");
    assert.equal(m.lease_token, null);
    assert.deepEqual(t.device.calls.map(([k]) => k), ["a0", "a1"], "a0 went to the device once");
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS);
    assert.equal(sent[0]?.sent_at, t0);

    // Worker 1 wakes up and records its (stale) outcome: zero rows move, no second event.
    const before = await row(t.db, ids[0] as string);
    t.device.release();
    await stalled;
    assert.notEqual(deadToken, null);
    assert.deepEqual(await row(t.db, ids[0] as string), before);
    assert.equal((await events(t.db, "message.sent")).filter((e) => e.message_id === ids[0]).length, 1);
  });

  it("rows left `sending` with expired leases (written directly): found in the device history → sent; not found → resent once", async () => {
    const inHistory: string[] = [];
    const notInHistory: string[] = [];
    for (let i = 0; i < 4; i++) {
      inHistory.push(await post(`h${i}`, i % 2 ? S2 : S));
      notInHistory.push(await post(`n${i}`, i % 2 ? S2 : S));
    }
    const now = t.clock.now();
    const all = [...inHistory, ...notInHistory];
    // As a crashed worker would have left them: claimed (lane count taken), lease expired.
    await t.db.kysely.updateTable("messages").set({ status: "sending", attempts: 1, lease_token: "dead", lease_until: now - 1 }).where("id", "in", all).execute();
    await t.db.kysely.updateTable("sender_lanes").set({ pending: 0, ready_at: null }).execute();
    for (const id of inHistory) {
      const m = await row(t.db, id);
      await t.db.kysely.insertInto("simulator_history")
        .values({ message_id: id, from_handle: m.from_handle, to_handle: m.to_handle, channel: "imessage", text: m.text, sent_at: now - 2000, sends: 1 })
        .execute();
    }
    await drive(t, 10 * SECOND);
    assert.deepEqual([...t.device.reconciles].sort(), ["h0", "h1", "h2", "h3", "n0", "n1", "n2", "n3"]);
    assert.deepEqual(t.device.calls.map(([k]) => k).sort(), ["n0", "n1", "n2", "n3"], "only the absent ones are resent");
    for (const id of all) {
      const m = await row(t.db, id);
      assert.ok(["sent", "delivered", "read"].includes(m.status), `${m.text} is ${m.status}`);
      assert.equal(m.channel, "imessage");
      assert.equal(m.device_message_id, `sim-${id}`);
    }
    const hist = await history(t.db);
    assert.equal(hist.length, 8);
    for (const h of hist) assert.equal(h.sends, 1, h.message_id);
    for (const id of all) assert.equal((await events(t.db, "message.sent")).filter((e) => e.message_id === id).length, 1);
    for (const lane of await t.db.kysely.selectFrom("sender_lanes").selectAll().execute()) assert.equal(lane.pending, 0, lane.id);
  });

  it("a live lease is respected: a slow send is not reconciled or duplicated by another worker", async () => {
    t.device.script("a0", "hang");
    const ids = [await post("a0"), await post("a1")];
    const w1 = t.worker();
    const slow = w1.tick();
    while ((await history(t.db)).length === 0) await new Promise((r) => setImmediate(r));
    await drive(t, LEASE - SECOND, 5 * SECOND);
    assert.deepEqual(t.device.reconciles, []);
    assert.deepEqual(t.device.calls.map(([k]) => k), ["a0"], "a1 waits for a0; a0 is not sent again");
    t.device.release();
    await slow;
    assert.equal((await row(t.db, ids[0] as string)).status, "sent");
    await drive(t, 5 * SECOND);
    assertPaced(await history(t.db, S), ids, PACE_MS);
    for (const h of await history(t.db)) assert.equal(h.sends, 1);
  });

  it("two workers never have two sends in flight for one number, and the spacing holds (PACE-T06)", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await post(`a${i}`));
    const w1 = t.worker();
    const w2 = t.worker();
    const inFlight = async () => (await t.db.kysely.selectFrom("messages").select("id").where("status", "=", "sending").execute()).length;
    for (let i = 0; i < 4; i++) {
      // Worker 1's send of a<i> is slower than three pace intervals…
      t.device.script(`a${i}`, "hang");
      const slow = w1.tick();
      while ((await history(t.db)).length < i + 1) await new Promise((r) => setImmediate(r));
      t.clock.advance(3 * SECOND);
      // …and worker 2, free and with the lane due by pace, must leave the lane alone meanwhile.
      await w2.tick();
      assert.equal(await inFlight(), 1, `send ${i}`);
      assert.equal((await history(t.db)).length, i + 1, `send ${i}: the next message overtook a slow send`);
      t.device.release();
      await slow;
      assert.equal(await inFlight(), 0);
    }
    assertPaced(await history(t.db, S), ids, PACE_MS);
  });
});
