// WH-T12: the real `msgbubbles serve` as a child process delivers a webhook; the receiver takes
// the event (it will answer 200) and the worker is SIGKILLed before it can record the outcome.
// The next process finds the delivery's lease expired and sends the event again with the same
// webhook-id: the documented at-least-once duplicate, which receivers drop by webhook-id.
// Real time is unavoidable here (two server starts, one lease); every wait is bounded.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createAccount } from "../src/accounts/store.js";
import { systemClock } from "../src/clock.js";
import { createKey } from "../src/keys/store.js";
import { persistentStorage } from "./dispatch-support.js";
import { type ServeProcess, startServe } from "./serve-process.js";
import { Receiver, verifyWith } from "./webhook-support.js";

type Server = ServeProcess;

const ENV = {
  HOST: "127.0.0.1",
  PORT: "0",
  LOG_LEVEL: "error",
  CREATE_DEMO_ACCOUNT: "false",
  WEBHOOK_ALLOW_PRIVATE: "true",
  // A 500 ms attempt deadline makes the lease 2 s: the wait for the takeover stays short.
  WEBHOOK_TIMEOUT_MS: "500",
  WEBHOOK_INTERVAL_MS: "20",
};

const startServer = (env: Record<string, string>): Promise<Server> => startServe({ ...env, ...ENV });

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

describe("crash: SIGKILL the worker after the receiver took the event, before the outcome is recorded (WH-T12)", () => {
  const storage = persistentStorage();
  const servers: Server[] = [];
  let receiver: Receiver | undefined;
  after(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited));
    await receiver?.close();
    await storage.cleanup();
  });

  it("the next process redelivers the event with the same webhook-id; both attempts verify", { timeout: 60_000 }, async () => {
    const db = await storage.open();
    try {
      const acct = await createAccount(db.kysely, systemClock, "Crash");
      const key = (await createKey(db.kysely, systemClock, { accountId: acct.id, mode: "test" })).key;

      const first = await startServer(storage.env);
      servers.push(first);
      receiver = await Receiver.start({
        handler: (_req, res) => {
          // The event is the receiver's now; the worker dies before it can learn the answer.
          if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
          res.writeHead(200);
          res.end("ok");
        },
      });
      const created = await fetch(`${first.base}/v1/webhooks`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ url: receiver.url }),
      });
      assert.equal(created.status, 201);
      const webhook = ((await created.json()) as { data: { id: string; secret: string } }).data;
      const test = await fetch(`${first.base}/v1/webhooks/${webhook.id}/test`, { method: "POST", headers: { authorization: `Bearer ${key}` } });
      assert.equal(test.status, 202);

      await within(receiver.waitFor(1), 15_000, "first attempt");
      await within(first.exited, 10_000, "SIGKILL");
      const cut = await db.kysely.selectFrom("webhook_deliveries").selectAll().where("endpoint_id", "=", webhook.id).executeTakeFirstOrThrow();
      assert.deepEqual([cut.status, cut.attempts, cut.last_status_code], ["delivering", 1, null], "the outcome was recorded before the kill");

      const second = await startServer(storage.env);
      servers.push(second);
      await within(receiver.waitFor(2), 20_000, "redelivery after the lease");
      const [a1, a2] = receiver.requests;
      assert.ok(a1 && a2);
      assert.equal(a2.headers["webhook-id"], a1.headers["webhook-id"], "the duplicate carries the same webhook-id");
      assert.ok(a1.body.equals(a2.body));
      verifyWith(webhook.secret, a1);
      verifyWith(webhook.secret, a2);
      for (let i = 0; i < 100; i++) {
        const row = await db.kysely.selectFrom("webhook_deliveries").selectAll().where("endpoint_id", "=", webhook.id).executeTakeFirstOrThrow();
        if (row.status === "delivered") {
          assert.equal(row.attempts, 2);
          break;
        }
        assert.ok(i < 99, `not recorded: ${row.status}`);
        await new Promise((r) => setTimeout(r, 50)); // real I/O of another process: a bounded poll
      }
      second.child.kill("SIGTERM");
      assert.equal(await within(second.exited, 15_000, "graceful stop"), 0);
      assert.equal(receiver.requests.length, 2);
    } finally {
      await db.close();
    }
  });
});
