// Faults under load (reliability.md §4.4, FI-07 with the simulator; INV-1, 2, 4): the real `serve`
// takes a steady stream of sends while the devices of two of its numbers flap offline and online
// (the test helper POST /v1/test_helpers/numbers/:handle/status). Nothing is lost or sent twice;
// new sends from an offline number get `503 device_offline` (nothing stored; the client retries
// with the same key), what was queued before waits and goes out once it is back, and an offline
// device is never handed more than the one send already in flight when it went offline.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SIM } from "../src/backends/simulator.js";
import { systemClock } from "../src/clock.js";
import { updateNumber } from "../src/numbers/store.js";
import { bounded, call, faultRun, pause, registerWebhook, SendLoad, seedAccount, settleAndCheck, step, within } from "./fault-support.js";
import { Receiver } from "./webhook-support.js";

const NUMBERS = Array.from({ length: 4 }, (_, i) => `+1555555010${i}`);
const FLAPPING = NUMBERS.slice(0, 2);
const RECIPIENTS = ["+15555551001", "+15555551002", SIM.smsOnly];
const OFFLINE_MS = 400;
const ONLINE_MS = 250;
const CYCLES = 5;
/** Messages queued on a flapping number just before it goes offline: they must wait for it. */
const BURST = 4;
/** The flapping numbers' pace (per minute): slow enough that a burst is still queued when the device goes. */
const FLAP_PACE = 1200;

interface Window {
  /** The offline switch was answered (committed) by then. */
  from: number;
  /** The online switch was asked for at this time (not committed before). */
  to: number;
}

describe("faults: devices flapping offline/online under a steady send load", () => {
  const rig = faultRun();
  const { storage, servers } = rig;

  async function setStatus(base: string, key: string, handle: string, status: "online" | "offline"): Promise<void> {
    const a = await call(base, key, "POST", `/v1/test_helpers/numbers/${encodeURIComponent(handle)}/status`, { status });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.data.status, status);
  }

  /** Flaps one number CYCLES times; returns its offline windows. */
  async function flap(base: string, key: string, handle: string, offset: number): Promise<Window[]> {
    const windows: Window[] = [];
    await pause(offset);
    for (let c = 0; c < CYCLES; c++) {
      await rig.load?.burst(handle, BURST);
      await setStatus(base, key, handle, "offline");
      const from = Date.now();
      await pause(OFFLINE_MS);
      const to = Date.now();
      await setStatus(base, key, handle, "online");
      windows.push({ from, to });
      await pause(ONLINE_MS);
    }
    return windows;
  }

  async function run(): Promise<void> {
    const started = Date.now();
    const db = await storage.open();
    try {
      const { accountId, key } = await seedAccount(db, NUMBERS);
      for (const handle of FLAPPING) await updateNumber(db.kysely, systemClock, handle, { pace: FLAP_PACE });
      const receiver = await Receiver.start();
      rig.receiver = receiver;
      const server = await servers.start();
      step("server up");
      const webhook = await registerWebhook(server.base, key, receiver.url);
      const load = new SendLoad({ key, target: () => server.base, numbers: NUMBERS, recipients: RECIPIENTS, concurrency: 4, gapMs: 10 });
      rig.load = load;
      load.start();
      await load.waitAccepted(20, 10_000);
      const windows = await Promise.all(FLAPPING.map((h, i) => flap(server.base, key, h, i * 150)));
      step(`flapped; ${load.accepted.size} accepted`);
      await within(load.stop(), 20_000, "the last sends");
      assert.deepEqual(load.problems, [], "every answer was expected");

      const report = await settleAndCheck(db, servers, { accountId, load, receiver, webhook, ms: 25_000 });

      // While a number is offline its device gets nothing new: at most the one send that was
      // already claimed when it went offline (one send in flight per lane).
      const waited = new Set<string>();
      for (const [n, handle] of FLAPPING.entries()) {
        const rows = await db.kysely
          .selectFrom("simulator_history")
          .innerJoin("messages", "messages.id", "simulator_history.message_id")
          .select(["simulator_history.message_id", "simulator_history.sent_at", "messages.created_at"])
          .where("simulator_history.from_handle", "=", handle)
          .execute();
        for (const w of windows[n] ?? []) {
          const during = rows.filter((r) => r.sent_at > w.from && r.sent_at < w.to).length;
          assert.ok(during <= 1, `${handle} sent ${during} messages while offline (${w.from}…${w.to})`);
          // Queued before it went offline, sent only once it was back: they waited.
          for (const r of rows) if (Date.parse(r.created_at) < w.from && r.sent_at >= w.to) waited.add(r.message_id);
        }
      }
      assert.ok(waited.size > 0, "messages accepted while their number was offline waited and went out later");
      const flaps = await db.kysely.selectFrom("events").select("id").where("account_id", "=", accountId).where("type", "=", "number.status").execute();
      assert.equal(flaps.length, FLAPPING.length * CYCLES * 2, "a number.status event for every switch");
      process.stdout.write(
        `# faults-device-flap: ${load.issued} messages, ${waited.size} waited for their device; answers ${load.summary()}; ` +
          `${report.events} events, ${report.deliveries} deliveries; ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await db.close();
    }
  }

  it(`${FLAPPING.length} of ${NUMBERS.length} numbers flap ${CYCLES} times: nothing lost or doubled, queued messages wait and go out`, { timeout: 58_000 }, () =>
    bounded(55_000, run),
  );
});
