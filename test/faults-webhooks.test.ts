// Faults under load, webhook side (reliability.md §2.2, §4.4 FI-10/FI-11; INV-4): one account with
// five endpoints on real local receivers — healthy, down (connection refused), slow (answers after
// WEBHOOK_TIMEOUT_MS), 500, 410 — and a burst of events. On the injected clock: every failing
// delivery is retried exactly on the schedule (jitter pinned to the middle), 410 disables its
// endpoint at once and nothing more reaches it, the healthy endpoint gets every event at once
// meanwhile, new events included, and once the sick receivers recover every event reaches them.
// Only the attempt timeout is real time (1 s).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { RETRY_DELAYS_MS } from "../src/webhooks/schedule.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";
import { answer, createWebhook, type CreatedWebhook, deliver, emit, type Handler, OK, Receiver, verifyWith } from "./webhook-support.js";

const EVENTS = 40;
const LATE_EVENTS = 10;
// Real time: long enough that a loaded machine answers the healthy receivers well within it.
const TIMEOUT_MS = 1000;
const PER_ENDPOINT = 8;

describe("faults: webhook receivers down, slow, 500 and 410 under a burst of events", () => {
  let t: TestApp;
  let a: SeededAccount;
  const receivers: Receiver[] = [];
  let revived: Server | undefined;
  before(async () => {
    t = await buildTestApp({
      config: { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_TIMEOUT_MS: TIMEOUT_MS, WEBHOOK_CONCURRENCY_PER_ENDPOINT: PER_ENDPOINT },
      webhookRandom: () => 0.5, // the middle of the ±20 % spread: every retry exactly on its slot
    });
    a = await t.seedAccount();
  });
  after(async () => {
    await t.close();
    await Promise.all(receivers.map((r) => r.close()));
    revived?.closeAllConnections();
    await new Promise((r) => (revived ? revived.close(r) : r(undefined)));
  });

  async function receiver(handler: Handler): Promise<Receiver> {
    const r = await Receiver.start({ clock: t.clock, handler });
    receivers.push(r);
    return r;
  }

  /** The account's events, by id. */
  async function eventIds(): Promise<string[]> {
    const rows = await t.db.kysely.selectFrom("events").select("id").where("account_id", "=", a.id).orderBy("id").execute();
    return rows.map((r) => r.id);
  }

  async function deliveries(w: CreatedWebhook) {
    return t.db.kysely.selectFrom("webhook_deliveries").selectAll().where("endpoint_id", "=", w.id).execute();
  }

  /** Per webhook-id, the clock times at which it arrived, in order. */
  function arrivals(r: Receiver): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const q of r.requests) {
      const id = String(q.headers["webhook-id"]);
      out.set(id, [...(out.get(id) ?? []), q.at]);
    }
    return out;
  }

  it("retries on schedule, 410 disables, the healthy endpoint never waits, and every event gets through once the receivers recover", { timeout: 58_000 }, async () => {
    const started = Date.now();
    let slow = true;
    let failing = true;
    const healthy = await receiver(OK);
    const slowR = await receiver((req, res, got) => {
      if (!slow) return OK(req, res, got);
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200).end("too late");
      }, TIMEOUT_MS * 3);
    });
    const fail500 = await receiver((req, res, got) => (failing ? answer(500)(req, res, got) : OK(req, res, got)));
    const gone = await receiver(answer(410));
    // Down: a port nobody listens on (connections refused); it comes back later on that port.
    const downR = await receiver(OK);
    const downPort = downR.port;
    await downR.close();
    receivers.splice(receivers.indexOf(downR), 1);
    const backUp: string[] = []; // webhook-ids received once it is back

    const hooks = {
      healthy: await createWebhook(t, a.testKey, healthy.url),
      slow: await createWebhook(t, a.testKey, slowR.url),
      fail500: await createWebhook(t, a.testKey, fail500.url),
      gone: await createWebhook(t, a.testKey, gone.url),
      down: await createWebhook(t, a.testKey, downR.url),
    };
    const t0 = t.clock.now();
    await emit(t, a.id, "test", EVENTS, "message.created", (i) => ({ id: `m${i}` }));

    // Attempt 1, at once.
    await deliver(t);
    let all = await eventIds();
    assert.equal(all.length, EVENTS + 1, "the events, and webhook.disabled for the 410 endpoint");
    assert.deepEqual([...arrivals(healthy).keys()].sort(), all, "the healthy endpoint got every event at once, once");
    assert.equal(healthy.requests.length, all.length);
    const g = (await t.call(a.testKey, "GET", `/v1/webhooks/${hooks.gone.id}`)).json().data;
    assert.deepEqual([g.enabled, g.disabled_reason], [false, "gone"], "410 disabled the endpoint at once");
    const goneHits = gone.requests.length;
    assert.ok(goneHits >= 1 && goneHits <= PER_ENDPOINT, `the 410 endpoint got only the first concurrent attempts (${goneHits})`);
    for (const d of await deliveries(hooks.down)) assert.match(d.last_error ?? "", /ECONNREFUSED/);
    for (const d of await deliveries(hooks.slow)) assert.match(d.last_error ?? "", /^timeout/);

    // Attempts 2…5 on the schedule. The slow receiver speeds up after attempt 2, the 500 one
    // heals and the down one comes back after attempt 4; new events arrive at attempt 3.
    let at = t0;
    let late = new Set<string>();
    for (let n = 1; n <= 4; n++) {
      at += RETRY_DELAYS_MS[n] ?? 0;
      t.clock.set(at);
      if (n === 2) late = new Set(await emit(t, a.id, "test", LATE_EVENTS, "message.created", (i) => ({ id: `late${i}` })));
      await deliver(t);
      if (n === 1) slow = false;
      if (n === 2) {
        all = await eventIds();
        assert.deepEqual([...arrivals(healthy).keys()].sort(), all, "new events reach the healthy endpoint at once, whatever the others' backlog");
      }
      if (n === 3) {
        failing = false;
        revived = createServer((req, res) => {
          req.resume();
          req.on("end", () => {
            backUp.push(String(req.headers["webhook-id"]));
            res.writeHead(204).end();
          });
        });
        await new Promise<void>((resolve) => revived?.listen(downPort, "127.0.0.1", resolve));
        assert.equal((revived.address() as AddressInfo).port, downPort);
      }
    }

    // Every sick endpoint's arrivals follow the schedule exactly; every event got through. The
    // late events began at attempt 3's time, so their retries come at the next steps of the
    // clock, each at least its slot after the previous attempt.
    const schedule = (k: number) => t0 + RETRY_DELAYS_MS.slice(0, k + 1).reduce((sum, d) => sum + d, 0);
    for (const [name, r, w, arrivalsEach, lateArrivals] of [
      ["slow", slowR, hooks.slow, 3, 1],
      ["500", fail500, hooks.fail500, 5, 3],
    ] as const) {
      const got = arrivals(r);
      assert.deepEqual([...got.keys()].sort(), all, `${name}: every event arrived`);
      for (const [id, times] of got) {
        if (late.has(id)) {
          assert.equal(times.length, lateArrivals, `${name}: attempts of the late ${id}`);
          assert.equal(times[0], schedule(2));
          for (let k = 1; k < times.length; k++) {
            assert.ok((times[k] ?? 0) - (times[k - 1] ?? 0) >= (RETRY_DELAYS_MS[k] ?? 0), `${name}: ${id} attempt ${k + 1} too early`);
          }
        } else {
          assert.deepEqual(times, Array.from({ length: arrivalsEach }, (_, k) => schedule(k)), `${name}: attempts of ${id} on the schedule`);
        }
      }
      for (const q of r.requests) verifyWith(w.secret, q);
    }
    for (const q of healthy.requests) verifyWith(hooks.healthy.secret, q);
    assert.deepEqual([...new Set(backUp)].sort(), all, "the receiver that was down got every event once back");
    assert.equal(backUp.length, all.length, "once each");
    for (const name of ["healthy", "slow", "fail500", "down"] as const) {
      const rows = await deliveries(hooks[name]);
      assert.equal(rows.length, all.length);
      assert.deepEqual(rows.filter((d) => d.status !== "delivered").map((d) => d.status), [], `${name}: every delivery delivered`);
    }
    const downRows = await deliveries(hooks.down);
    assert.ok(downRows.every((d) => d.attempts === (late.has(d.event_id) ? 3 : 5)), "down: delivered at attempt 5 (late events: 3)");

    // The 410 endpoint: nothing after its disabling; its deliveries wait, kept, without a due time.
    assert.equal(gone.requests.length, goneHits, "nothing reached the disabled endpoint");
    const goneRows = await deliveries(hooks.gone);
    // Its events from before are kept; events after it was disabled make no delivery to it
    // (docs/webhooks.md, Disabled endpoints), nor does the webhook.disabled about itself.
    assert.equal(goneRows.length, EVENTS, "its earlier events are kept");
    assert.ok(goneRows.every((d) => d.status === "pending" && d.next_attempt_at === null), "paused until re-enabled");
    process.stdout.write(
      `# faults-webhooks: ${all.length} events × 5 endpoints; 410 endpoint hit ${goneHits}×; slow ${slowR.requests.length}, 500 ${fail500.requests.length}, ` +
        `revived ${backUp.length} requests; ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  });
});
