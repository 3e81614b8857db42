// Per-sending-number pacing: api.md §3 and reliability.md §3.4–§3.5 (PACE-R1, PACE-R3; tests
// PACE-T01, T02, T04, T05, plus the per-number --pace override), on the real app with a
// ManualClock. The simulator's history (simulator_history.sent_at, on the ManualClock) is what
// "the device saw".
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ManualClock } from "../src/clock.js";
import { ERRORS } from "../src/errors.js";
import {
  HOUR,
  MINUTE,
  PACE_MS,
  SECOND,
  accept,
  assertPaced,
  bulkKey,
  drive,
  history,
  persistentStorage,
  row,
  send,
  setPace,
} from "./dispatch-support.js";
import { type SeededAccount, type TestApp, buildTestApp } from "./helpers.js";

const S = "+15555550100";
const recipients = ["+15555551001", "+15555551002", "+15555551003", "+15555551004", "+15555551005"];

describe("pacing: one lane", () => {
  let t: TestApp;
  let acct: SeededAccount;
  let key: string;

  beforeEach(async () => {
    t = await buildTestApp();
    acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
    await t.addNumber(acct.id, S);
  });
  afterEach(() => t.close());

  it("100 messages at t=0: all 202 queued; the device gets them in accept order, one per pace interval (PACE-T01)", async () => {
    const t0 = t.clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await send(t, key, { to: recipients[i % recipients.length], from_handle: S, text: `m${i}` });
      assert.equal(res.statusCode, 202, res.body);
      assert.equal(res.json().data.status, "queued");
      ids.push(res.json().data.id);
    }
    await drive(t, 100 * SECOND);
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS, "lane S");
    // Burst 1: the first goes at once, then exactly one per interval (no idle gaps either).
    assert.deepEqual(sent.map((r) => r.sent_at - t0), ids.map((_, i) => i * PACE_MS));
    assert.deepEqual(sent.map((r) => r.text), ids.map((_, i) => `m${i}`));
    for (const id of ids) assert.equal((await row(t.db, id)).status, "read");
  });

  it("a message accepted after the backlog drained goes out at once, then the pace applies again", async () => {
    const t0 = t.clock.now();
    const first = await accept(t, key, { to: recipients[0], from_handle: S });
    await drive(t, 10 * SECOND);
    const late = [await accept(t, key, { to: recipients[0], from_handle: S }), await accept(t, key, { to: recipients[0], from_handle: S })];
    await drive(t, 5 * SECOND);
    const sent = await history(t.db, S);
    assertPaced(sent, [first, ...late], PACE_MS);
    assert.deepEqual(sent.map((r) => r.sent_at - t0), [0, 10 * SECOND, 11 * SECOND]);
  });

  it("--pace overrides the default per number, and a changed pace applies to the rest of the backlog", async () => {
    const slow = "+15555550101";
    const fast = "+15555550102";
    await t.addNumber(acct.id, slow);
    await t.addNumber(acct.id, fast);
    await setPace(t, slow, 30); // one per 2 s
    await setPace(t, fast, 240); // one per 250 ms
    const t0 = t.clock.now();
    const ids: Record<string, string[]> = { [S]: [], [slow]: [], [fast]: [] };
    for (let i = 0; i < 8; i++) {
      for (const from of [S, slow, fast]) ids[from]?.push(await accept(t, key, { to: recipients[i % 3], from_handle: from }));
    }
    await drive(t, 20 * SECOND, 250);
    const offsets = async (h: string) => (await history(t.db, h)).map((r) => r.sent_at - t0);
    assertPaced(await history(t.db, S), ids[S] ?? [], PACE_MS, "default");
    assertPaced(await history(t.db, slow), ids[slow] ?? [], 2 * SECOND, "pace 30");
    assertPaced(await history(t.db, fast), ids[fast] ?? [], 250, "pace 240");
    assert.deepEqual(await offsets(slow), [0, 2, 4, 6, 8, 10, 12, 14].map((s) => s * SECOND));
    assert.deepEqual(await offsets(fast), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * 250));

    // Slow the fast number down mid-backlog: the next sends follow the new pace.
    const t1 = t.clock.now();
    const more: string[] = [];
    for (let i = 0; i < 4; i++) more.push(await accept(t, key, { to: recipients[0], from_handle: fast }));
    await drive(t, 0);
    await setPace(t, fast, 20); // one per 3 s
    await drive(t, 12 * SECOND, 250);
    const after = (await history(t.db, fast)).slice(8);
    assert.deepEqual(after.map((r) => r.message_id), more);
    assert.deepEqual(after.map((r) => r.sent_at - t1), [0, 250, 3250, 6250]);
  });
});

describe("pacing: many lanes", () => {
  let t: TestApp;
  let acct: SeededAccount;
  let key: string;

  beforeEach(async () => {
    // A small claim batch, so that lanes compete for places in each tick.
    t = await buildTestApp({ config: { DISPATCH_BATCH: 8 } });
    acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
  });
  afterEach(() => t.close());

  it("50 numbers: busy lanes neither delay each other nor starve an idle one; each lane keeps its pace (PACE-T02)", async () => {
    const numbers = Array.from({ length: 50 }, (_, i) => `+1555556${String(i).padStart(4, "0")}`);
    for (const n of numbers) await t.addNumber(acct.id, n);
    const idle = numbers[49] as string;
    const busy = numbers.slice(0, 49);
    const t0 = t.clock.now();
    const ids = new Map<string, string[]>(busy.map((n) => [n, []]));
    for (let i = 0; i < 5; i++) {
      for (const n of busy) ids.get(n)?.push(await accept(t, key, { to: recipients[i % 5], from_handle: n, text: `${n}#${i}` }));
    }
    await drive(t, 2 * SECOND);
    t.clock.advance(SECOND);
    // Every busy lane is due again right now, and there are six times more of them than a batch.
    const lanes = await t.db.kysely.selectFrom("sender_lanes").select(["ready_at"]).where("ready_at", "<=", t.clock.now()).execute();
    assert.equal(lanes.length, 49);
    const idleMsg = await accept(t, key, { to: recipients[0], from_handle: idle });
    await t.app.services.dispatcher.runUntilIdle();
    const idleSent = await history(t.db, idle);
    assert.deepEqual(idleSent.map((r) => [r.message_id, r.sent_at - t0]), [[idleMsg, 3 * SECOND]], "the idle number sends at once");

    await drive(t, 3 * SECOND);
    for (const n of busy) {
      const sent = await history(t.db, n);
      assertPaced(sent, ids.get(n) ?? [], PACE_MS, n);
      // No lane waited for another: send i of every lane at exactly i × pace.
      assert.deepEqual(sent.map((r) => r.sent_at - t0), [0, 1, 2, 3, 4].map((s) => s * SECOND), n);
    }
    assert.equal((await history(t.db)).length, 49 * 5 + 1);
  });
});

describe("admission: backlog beyond the validity window (PACE-R3)", () => {
  let t: TestApp;
  let acct: SeededAccount;
  let key: string;

  beforeEach(async () => {
    // A 36-second validity window: 36 messages at the default pace fill it.
    t = await buildTestApp({ config: { MESSAGE_VALIDITY_HOURS: 0.01 } });
    acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
    await t.addNumber(acct.id, S);
  });
  afterEach(() => t.close());

  it("429 sender_queue_full with Retry-After once the backlog would outlast the window; other numbers unaffected; retrying after Retry-After works (PACE-T04)", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 36; i++) ids.push(await accept(t, key, { to: recipients[0], from_handle: S }));
    const full = await send(t, key, { to: recipients[1], from_handle: S });
    assert.equal(full.statusCode, 429, full.body);
    assert.equal(full.json().error, "sender_queue_full");
    assert.equal(full.json().message, ERRORS.sender_queue_full.message);
    assert.equal(full.headers["retry-after"], "1");
    // Nothing was stored for the refused send.
    const count = await t.db.kysely.selectFrom("messages").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    assert.equal(Number(count.n), 36);

    const other = "+15555550109";
    await t.addNumber(acct.id, other);
    await accept(t, key, { to: recipients[0], from_handle: other });

    // Still full at once, even after the first send (it moved the lane's TAT forward)…
    await t.app.services.dispatcher.runUntilIdle();
    assert.equal((await send(t, key, { to: recipients[1], from_handle: S })).statusCode, 429);
    // …but Retry-After seconds later, with the lane draining, there is room again.
    await drive(t, Number(full.headers["retry-after"]) * SECOND);
    ids.push(await accept(t, key, { to: recipients[1], from_handle: S }));
    assert.equal((await send(t, key, { to: recipients[1], from_handle: S })).statusCode, 429);

    // Whatever was admitted goes out inside its window: admission and expiry agree.
    await drive(t, 40 * SECOND);
    assertPaced(await history(t.db, S), ids, PACE_MS);
    const failed = await t.db.kysely.selectFrom("messages").select("id").where("status", "=", "failed").execute();
    assert.deepEqual(failed, []);
  });

  it("a slow --pace shrinks the admitted backlog accordingly; Retry-After is the wait until the next message fits", async () => {
    await setPace(t, S, 6); // one per 10 s: three fit in 36 s
    for (let i = 0; i < 3; i++) await accept(t, key, { to: recipients[0], from_handle: S });
    const full = await send(t, key, { to: recipients[0], from_handle: S });
    assert.equal(full.statusCode, 429);
    assert.equal(full.json().error, "sender_queue_full");
    assert.equal(full.headers["retry-after"], "4"); // 4 × 10 s drain − 36 s window
    // Scheduled sends are not part of the backlog yet and are admitted.
    const later = await send(t, key, { to: recipients[0], from_handle: S, send_at: new Date(t.clock.now() + HOUR).toISOString() });
    assert.equal(later.statusCode, 202, later.body);
  });
});

describe("restart mid-backlog (PACE-T05)", () => {
  it("the persisted TAT holds across a restart: no burst, FIFO continues with new messages after the old backlog", async () => {
    const storage = persistentStorage();
    const clock = new ManualClock();
    const t0 = clock.now();
    let t = await buildTestApp({ clock, db: await storage.open() });
    try {
      const acct = await t.seedAccount();
      const key = await bulkKey(t, acct.id);
      await t.addNumber(acct.id, S);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await accept(t, key, { to: recipients[i % 2], from_handle: S }));
      await drive(t, 2 * SECOND + 400, 200); // sends at 0, 1 s, 2 s
      assert.equal((await history(t.db, S)).length, 3);
      await t.close();

      // A new process: fresh app, fresh dispatcher, same storage, 400 ms before the lane's next slot.
      t = await buildTestApp({ clock, db: await storage.open() });
      await t.app.services.dispatcher.runUntilIdle();
      assert.equal((await history(t.db, S)).length, 3, "no send before the persisted TAT");
      for (let i = 0; i < 2; i++) ids.push(await accept(t, key, { to: recipients[0], from_handle: S }));
      await t.app.services.dispatcher.runUntilIdle();
      assert.equal((await history(t.db, S)).length, 3);
      await drive(t, 15 * SECOND, 100);
      const sent = await history(t.db, S);
      assertPaced(sent, ids, PACE_MS);
      assert.deepEqual(sent.map((r) => r.sent_at - t0), ids.map((_, i) => i * SECOND));

      // A restart long after the lane went idle: one message at once, then the pace again.
      await t.close();
      clock.advance(10 * MINUTE);
      t = await buildTestApp({ clock, db: await storage.open() });
      const t1 = clock.now();
      const late: string[] = [];
      for (let i = 0; i < 3; i++) late.push(await accept(t, key, { to: recipients[0], from_handle: S }));
      await drive(t, 5 * SECOND, 250);
      const after = (await history(t.db, S)).slice(ids.length);
      assertPaced(after, late, PACE_MS);
      assert.deepEqual(after.map((r) => r.sent_at - t1), [0, SECOND, 2 * SECOND]);
    } finally {
      await t.close();
      await storage.cleanup();
    }
  });
});
