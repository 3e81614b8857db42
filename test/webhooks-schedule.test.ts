// The retry schedule and the disable rules on the ManualClock (reliability.md WH-R4, WH-R5;
// WH-T09, WH-T10, WH-T11): attempt times against the schedule and its jitter bounds, a receiver
// down for hours gets every event once it is back, and the 5-day auto-disable with its reset.
// Real receivers on 127.0.0.1; time only moves when the test moves it.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { RETRY_DELAYS_MS } from "../src/webhooks/schedule.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";
import { answer, createWebhook, DAY, deliver, deliveriesOf, emit, HOUR, type Handler, MINUTE, OK, Receiver, verifyWith } from "./webhook-support.js";

/** A repeatable sequence covering the whole jitter range, ends included. */
function sequence(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0.5;
}
const RANDOMS = [0, 0.999999, 0.5, 0.25, 0.75, 0.1, 0.9, 0.33, 0.66, 0.5];

let t: TestApp;
let a: SeededAccount;
let receivers: Receiver[] = [];

async function receiver(handler: Handler): Promise<Receiver> {
  const r = await Receiver.start({ clock: t.clock, handler });
  receivers.push(r);
  return r;
}

/** Advances the clock in `step`s up to `until` (absolute), delivering at every step. */
async function runTo(until: number, step: number): Promise<void> {
  await deliver(t);
  while (t.clock.now() < until) {
    t.clock.advance(Math.min(step, until - t.clock.now()));
    await deliver(t);
  }
}

describe("retry schedule", () => {
  beforeEach(async () => {
    t = await buildTestApp({ config: { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_TIMEOUT_MS: 2_000 }, webhookRandom: sequence(RANDOMS) });
    a = await t.seedAccount();
  });
  afterEach(async () => {
    await t.close();
    await Promise.all(receivers.map((r) => r.close()));
    receivers = [];
  });

  it("WH-T09: an endpoint that always answers 500 gets 10 attempts, each within ±20 % of its slot, then the delivery is failed", async () => {
    const r = await receiver(answer(500));
    const w = await createWebhook(t, a.testKey, r.url);
    const [eventId] = await emit(t, a.id, "test");
    await deliver(t);
    assert.equal(r.requests.length, 1, "the first attempt is immediate");
    for (let n = 1; n < RETRY_DELAYS_MS.length; n++) {
      const slot = RETRY_DELAYS_MS[n] ?? 0;
      const previous = t.clock.now();
      // The planned time is the slot stretched by this attempt's draw of the jitter.
      const planned = previous + Math.round(slot * (0.8 + 0.4 * (RANDOMS[n - 1] ?? 0)));
      const [d] = await deliveriesOf(t, a.testKey, w.id);
      assert.equal(d.next_attempt_at, new Date(planned).toISOString(), `attempt ${n + 1} planned`);
      // Nothing before the lower bound …
      t.clock.set(previous + Math.floor(slot * 0.8) - 1);
      await deliver(t);
      assert.equal(r.requests.length, n, `attempt ${n + 1} came before 80 % of its slot`);
      // … then in 20 steps across the window, the attempt comes at its planned time.
      const step = Math.max(1, Math.ceil((slot * 0.4) / 20));
      await runTo(planned - 1, step);
      assert.equal(r.requests.length, n, `attempt ${n + 1} came early`);
      t.clock.set(planned);
      await deliver(t);
      assert.equal(r.requests.length, n + 1, `attempt ${n + 1} missing at its planned time`);
      assert.ok(planned - previous >= slot * 0.8 && planned - previous <= slot * 1.2, `attempt ${n + 1} off its slot`);
    }
    const [d] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([d.status, d.attempts, d.next_attempt_at, d.last_status_code], ["failed", 10, null, 500]);
    t.clock.advance(7 * DAY);
    await deliver(t);
    assert.equal(r.requests.length, 10, "an exhausted delivery was tried again");
    assert.ok(r.requests.every((q) => q.headers["webhook-id"] === eventId));
    // About 75.6 hours from the first attempt to the last, give or take the jitter.
    const span = (r.requests[9]?.at ?? 0) - (r.requests[0]?.at ?? 0);
    assert.ok(span >= 0.8 * 75.5 * HOUR && span <= 1.2 * 75.6 * HOUR, `${span / HOUR} h`);
  });

  it("WH-T10: a receiver down for 6 hours gets every event acknowledged once it is back, at the next slot; duplicates only with the same webhook-id", async () => {
    const start = t.clock.now();
    const down = (at: number) => at < start + 6 * HOUR;
    const r = await receiver((q, res, got) => (down(got.at) ? answer(500)(q, res, got) : OK(q, res, got)));
    const w = await createWebhook(t, a.testKey, r.url);
    // Events keep coming during the outage.
    const events: string[] = [];
    for (const offset of [0, 10 * MINUTE, HOUR, 3 * HOUR, 5 * HOUR + 50 * MINUTE, 7 * HOUR]) {
      await runTo(start + offset, MINUTE);
      events.push(...(await emit(t, a.id, "test")));
    }
    await runTo(start + 30 * HOUR, MINUTE);
    const acknowledged = r.requests.filter((q) => !down(q.at)).map((q) => String(q.headers["webhook-id"]));
    assert.deepEqual([...new Set(acknowledged)].sort(), [...events].sort(), "every event acknowledged");
    assert.equal(acknowledged.length, events.length, "an event was acknowledged twice");
    for (const q of r.requests) verifyWith(w.secret, q);
    const bodies = new Map<string, string>();
    for (const q of r.requests) {
      const id = String(q.headers["webhook-id"]);
      assert.ok(events.includes(id), "a request for no event");
      const seen = bodies.get(id);
      assert.ok(seen === undefined || seen === q.body.toString("base64"), "two attempts of one event differ");
      bodies.set(id, q.body.toString("base64"));
    }
    // The first event: failed at 0, 5 s, 5 min, 30 min, 2 h later …, then succeeded at the next slot after the outage, not before.
    const first = r.requests.filter((q) => q.headers["webhook-id"] === events[0]);
    const success = first.at(-1);
    const before = first.at(-2);
    assert.ok(success && before);
    assert.ok(!down(success.at) && down(before.at));
    const slot = RETRY_DELAYS_MS[first.length - 1] ?? 0;
    assert.ok(success.at - before.at >= slot * 0.8 && success.at - before.at <= slot * 1.2 + MINUTE, `gap ${(success.at - before.at) / MINUTE} min, slot ${slot / MINUTE} min`);
    const all = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([...new Set(all.map((d) => d.status))], ["delivered"]);
  });
});

describe("auto-disable (WH-R5, WH-T11)", () => {
  beforeEach(async () => {
    t = await buildTestApp({ config: { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_TIMEOUT_MS: 2_000 }, webhookRandom: () => 0.5 });
    a = await t.seedAccount();
  });
  afterEach(async () => {
    await t.close();
    await Promise.all(receivers.map((r) => r.close()));
    receivers = [];
  });

  it("every attempt failing for 5 days disables the endpoint and notifies the account's other endpoints; one success on day 3 restarts the clock", async () => {
    const start = t.clock.now();
    const alwaysDown = await receiver(answer(500));
    // Answers 200 for one hour on day 3, 500 otherwise.
    const upOnDay3 = await receiver((q, res, got) => (got.at >= start + 3 * DAY && got.at < start + 3 * DAY + HOUR ? OK(q, res, got) : answer(500)(q, res, got)));
    const watcher = await receiver(OK);
    const A = await createWebhook(t, a.testKey, alwaysDown.url, ["message.created"]);
    const B = await createWebhook(t, a.testKey, upOnDay3.url, ["message.created"]);
    const W = await createWebhook(t, a.testKey, watcher.url, ["webhook.disabled"]);
    const disabledAt = new Map<string, number>();
    const STEP = HOUR;
    for (let at = start; at <= start + 9 * DAY; at += STEP) {
      await runTo(at, STEP);
      if ((at - start) % (2 * HOUR) === 0) await emit(t, a.id, "test");
      await deliver(t);
      for (const w of [A, B]) {
        if (disabledAt.has(w.id)) continue;
        const row = await t.db.kysely.selectFrom("webhook_endpoints").selectAll().where("id", "=", w.id).executeTakeFirstOrThrow();
        if (row.enabled === 0) {
          assert.equal(row.disabled_reason, "failing");
          disabledAt.set(w.id, t.clock.now());
        }
      }
    }
    const lastBefore = (r: Receiver, limit: number) => Math.max(...r.requests.filter((q) => q.at <= limit).map((q) => q.at));
    // A: its first failure at `start`; disabled by the first failed attempt 5 days on (attempts come every 2 h).
    const aOff = disabledAt.get(A.id);
    assert.ok(aOff !== undefined, "the always-failing endpoint was not disabled");
    assert.ok(aOff >= start + 5 * DAY && aOff <= start + 5 * DAY + 2 * HOUR + STEP, `A disabled after ${(aOff - start) / HOUR} h`);
    assert.equal(lastBefore(alwaysDown, Number.MAX_SAFE_INTEGER), lastBefore(alwaysDown, aOff), "A got an attempt after it was disabled");
    // B: succeeded on day 3, so its clock restarted with the next failure; not disabled on day 5.
    const bOff = disabledAt.get(B.id);
    assert.ok(bOff !== undefined, "B was never disabled");
    const firstFailureAfterSuccess = Math.min(...upOnDay3.requests.filter((q) => q.at >= start + 3 * DAY + HOUR).map((q) => q.at));
    assert.ok(bOff >= firstFailureAfterSuccess + 5 * DAY && bOff <= firstFailureAfterSuccess + 5 * DAY + 2 * HOUR + STEP, `B disabled after ${(bOff - start) / HOUR} h`);
    // The notification: webhook.disabled, signed, to the watcher only, once per endpoint.
    assert.deepEqual(watcher.events().map((e) => [e.type, e.data.id, e.data.enabled, e.data.disabled_reason]), [
      ["webhook.disabled", A.id, false, "failing"],
      ["webhook.disabled", B.id, false, "failing"],
    ]);
    for (const q of watcher.requests) verifyWith(W.secret, q);
    // Nothing lost: A's undelivered events wait, paused, for it to be enabled again.
    const paused = (await deliveriesOf(t, a.testKey, A.id, "?status=pending&limit=100")).filter((d) => d.next_attempt_at === null);
    assert.ok(paused.length > 0);
    const res = await t.call(a.testKey, "PATCH", `/v1/webhooks/${A.id}`, { enabled: true });
    assert.deepEqual([res.json().data.enabled, res.json().data.disabled_reason], [true, null]);
    const row = await t.db.kysely.selectFrom("webhook_endpoints").select("failing_since").where("id", "=", A.id).executeTakeFirstOrThrow();
    assert.equal(row.failing_since, null, "re-enabling clears the failure clock");
    const before = alwaysDown.requests.length;
    await deliver(t);
    assert.ok(alwaysDown.requests.length >= before + paused.length, "paused deliveries were not resumed");
  });
});
