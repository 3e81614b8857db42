// Faults under load (reliability.md §4.4, FI-01…FI-04 under a steady stream; INV-1…4, 6, 7): the
// real `msgbubbles serve` as a child process (SQLite file, or a PostgreSQL schema when
// DATABASE_URL is set) takes a steady stream of sends — each with its own Idempotency-Key,
// retried with the SAME key on connection errors, so the client is exactly-once from its side —
// while it dispatches them and delivers their events to a live local webhook receiver. It is
// SIGKILLed mid-stream, at a moment when sends and deliveries are in flight, and restarted; once the run settles, every accepted message exists
// once, sent once by the device, in one terminal state, and every event reached the receiver.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SIM } from "../src/backends/simulator.js";
import type { Db } from "../src/db/client.js";
import { bounded, faultRun, registerWebhook, SendLoad, seedAccount, settleAndCheck, step, within } from "./fault-support.js";
import { Receiver } from "./webhook-support.js";

const NUMBERS = Array.from({ length: 6 }, (_, i) => `+1555555010${i}`);
const RECIPIENTS = ["+15555551001", "+15555551002", "+15555551003", SIM.smsOnly];
/** Messages accepted before the kill, and again after the restart. */
const PER_LEG = 150;
// One kill: each server start costs seconds of a loaded machine's time (dispatch-crash.test.ts
// kills twice at chosen points; this one kills at a random moment of a busy stream).
const KILLS = 1;

/** Waits (briefly) for a moment when a send or a webhook delivery is in flight, to kill then. */
async function busyMoment(db: Db): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const sending = await db.kysely.selectFrom("messages").select("id").where("status", "=", "sending").limit(1).execute();
    const delivering = await db.kysely.selectFrom("webhook_deliveries").select("id").where("status", "=", "delivering").limit(1).execute();
    if (sending.length > 0 && delivering.length > 0) return;
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe("faults: SIGKILL the server under a steady send load, restart it", () => {
  const rig = faultRun();
  const { storage, servers } = rig;

  async function run(): Promise<void> {
    const started = Date.now();
    const db = await storage.open();
    try {
      const { accountId, key } = await seedAccount(db, NUMBERS);
      const receiver = await Receiver.start();
      rig.receiver = receiver;
      const first = await servers.start();
      step("server up");
      const webhook = await registerWebhook(first.base, key, receiver.url);

      const load = new SendLoad({ key, target: () => servers.current?.base ?? null, numbers: NUMBERS, recipients: RECIPIENTS, concurrency: 6, gapMs: 5 });
      rig.load = load;
      load.start();
      for (let k = 1; k <= KILLS; k++) {
        await load.waitAccepted(k * PER_LEG, 25_000);
        step(`${load.accepted.size} accepted`);
        await busyMoment(db);
        await servers.kill();
        step("killed");
        await servers.start();
        step("restarted"); // the load keeps retrying its unanswered messages meanwhile
      }
      await load.waitAccepted((KILLS + 1) * PER_LEG, 25_000);
      await within(load.stop(), 30_000, "the last sends");
      assert.deepEqual(load.problems, [], "every answer was expected");
      step(`load done: ${load.summary()}`);

      const report = await settleAndCheck(db, servers, { accountId, load, receiver, webhook, ms: 30_000 });
      process.stdout.write(
        `# faults-sigkill: ${load.issued} messages, ${servers.all.length} servers; answers ${load.summary()}; ${report.reclaimed} claimed again; ` +
          `${report.events} events, ${report.deliveries} deliveries (${report.duplicateDeliveries} repeats); ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await db.close();
    }
  }

  it(`SIGKILL mid-stream (${KILLS}×): no 202 lost, none sent twice, one terminal state each, every event delivered`, { timeout: 58_000 }, () => bounded(55_000, run));
});
