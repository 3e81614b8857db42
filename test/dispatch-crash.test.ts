// SIGKILL under load (reliability.md §4.4: FI-01, FI-02, FI-03, FI-04; invariants INV-1, INV-2,
// INV-6): the real `msgbubbles serve` as a child process on a file SQLite database (or a
// PostgreSQL schema when DATABASE_URL is set), killed twice while it accepts and dispatches, then
// restarted. Every accepted message must reach exactly one terminal state, and the simulator's
// device history must show each of them sent exactly once — and nothing else.
// Real time is unavoidable here; every wait is bounded.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createAccount } from "../src/accounts/store.js";
import { SIM } from "../src/backends/simulator.js";
import { systemClock } from "../src/clock.js";
import type { Db } from "../src/db/client.js";
import { createKey } from "../src/keys/store.js";
import { addNumber } from "../src/numbers/store.js";
import { persistentStorage } from "./dispatch-support.js";
import { FAST_DISPATCH_ENV, pause } from "./fault-support.js";
import { type ServeProcess, startServe } from "./serve-process.js";

const TOTAL = 300;
const NUMBERS = ["+15555550100", "+15555550101", "+15555550102", "+15555550103", "+15555550104"];
// Mostly iMessage, and the simulator's SMS-only recipient for the other channel.
const RECIPIENTS = ["+15555551001", "+15555551002", "+15555551003", SIM.smsOnly];
/** Kill the server when the device history reaches these counts (then a last server finishes). */
const KILL_AT = [60, 170];
const TERMINAL = new Set(["sent", "delivered", "read", "failed"]);
// Typically ~20 s; the bound leaves room for a loaded machine (three cold `tsx` starts).
const DEADLINE_MS = 75_000;


type Server = ServeProcess;

const startServer = (env: Record<string, string>): Promise<Server> => startServe({ ...env, ...FAST_DISPATCH_ENV, DISPATCH_INTERVAL_MS: "5" });

/** POSTs message `i` (Idempotency-Key k<i>); the id, or null when the server did not answer. */
async function post(base: string, key: string, i: number): Promise<string | null> {
  for (let attempt = 0; attempt < 50; attempt++) {
    let res: Response;
    let body: { data?: { id: string }; error?: string };
    try {
      res = await fetch(`${base}/v1/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "idempotency-key": `k${i}` },
        body: JSON.stringify({ from_handle: NUMBERS[i % NUMBERS.length], to: RECIPIENTS[i % RECIPIENTS.length], text: `m${i}` }),
      });
      body = (await res.json()) as typeof body;
    } catch {
      return null; // killed before (or while) answering: retried on the next server
    }
    if (res.status === 202 || res.status === 200) return body.data?.id ?? null;
    // The killed attempt's transaction may still hold the key for a moment (PostgreSQL notices
    // the dead connection): wait and retry with the same key.
    if (res.status === 409 && body.error === "idempotency_key_in_use") {
      await pause(100);
      continue;
    }
    throw new Error(`POST ${i}: ${res.status} ${JSON.stringify(body)}`);
  }
  throw new Error(`POST ${i}: key stayed in use`);
}

async function postAll(base: string, key: string, indices: number[], accepted: Map<number, string>): Promise<number[]> {
  const queue = [...indices];
  const failed: number[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const id = await post(base, key, i);
        if (id === null) failed.push(i);
        else {
          const before = accepted.get(i);
          assert.ok(before === undefined || before === id, `key k${i} answered two different messages`);
          accepted.set(i, id);
        }
      }
    }),
  );
  return failed.sort((a, b) => a - b);
}

const inFlight = async (db: Db) => (await db.kysely.selectFrom("messages").select("id").where("status", "=", "sending").limit(1).execute()).length > 0;

const count = async (db: Db, table: "simulator_history" | "messages") =>
  Number((await db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n);

describe("crash: SIGKILL the server while it dispatches, restart it (FI-01…FI-04)", () => {
  const storage = persistentStorage();
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited));
    await storage.cleanup();
  });

  it(`${TOTAL} messages over 5 numbers, two kills: every 202 reaches one terminal state, every device send happened exactly once`, { timeout: 90_000 }, async () => {
    const started = Date.now();
    const db = await storage.open();
    let key: string;
    try {
      const acct = await createAccount(db.kysely, systemClock, "Crash");
      key = (await createKey(db.kysely, systemClock, { accountId: acct.id, mode: "test", rateLimit: 1_000_000 })).key;
      for (const handle of NUMBERS) await addNumber(db.kysely, systemClock, { accountId: acct.id, handle, channels: "imessage,sms", backend: "simulator", pace: 6000 });

      const accepted = new Map<number, string>();
      let pending = Array.from({ length: TOTAL }, (_, i) => i);
      for (const threshold of KILL_AT) {
        const server = await startServer(storage.env);
        servers.push(server);
        const posting = postAll(server.base, key, pending, accepted);
        let posted = false;
        void posting.then(() => {
          posted = true;
        });
        // Kill once the device has sent `threshold` messages (or when nothing is left to
        // interrupt), preferably at a moment when some send is in flight (claimed, not recorded).
        for (;;) {
          const sent = await count(db, "simulator_history");
          if (sent >= threshold || (posted && sent >= accepted.size)) break;
          assert.ok(Date.now() - started < DEADLINE_MS, `no progress: ${sent} sent`);
          await pause(2);
        }
        for (let i = 0; i < 200 && !(await inFlight(db)); i++) await pause(1);
        server.child.kill("SIGKILL");
        await server.exited;
        pending = await posting;
      }

      // The last server: retries what never got an answer (same keys), then drains everything.
      const server = await startServer(storage.env);
      servers.push(server);
      pending = await postAll(server.base, key, pending, accepted);
      assert.deepEqual(pending, [], "the last server answered every POST");
      const ids = [...accepted.values()];
      assert.equal(new Set(ids).size, TOTAL, "one message per idempotency key");
      let rows: { id: string; status: string; text: string | null }[] = [];
      for (;;) {
        rows = await db.kysely.selectFrom("messages").select(["id", "status", "text"]).where("direction", "=", "outbound").execute();
        if (rows.length >= TOTAL && rows.every((r) => TERMINAL.has(r.status))) break;
        assert.ok(Date.now() - started < DEADLINE_MS, `not drained: ${rows.filter((r) => !TERMINAL.has(r.status)).length} of ${rows.length} not terminal`);
        await pause(100);
      }
      server.child.kill("SIGTERM");
      await server.exited;

      // INV-1 / INV-6: exactly the accepted messages exist (no orphan, no loss), each terminal.
      assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort());
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const [i, id] of accepted) assert.equal(byId.get(id)?.text, `m${i}`, `message ${i}`);
      assert.deepEqual(rows.filter((r) => r.status === "failed"), [], "no message failed");
      // Exactly one terminal transition each in the event log (sent xor failed, once).
      const evs = await db.kysely.selectFrom("events").select(["type", "data"]).where("type", "in", ["message.sent", "message.failed"]).execute();
      const terminalEvents = new Map<string, string[]>();
      for (const e of evs) {
        const id = (JSON.parse(e.data) as { id: string }).id;
        terminalEvents.set(id, [...(terminalEvents.get(id) ?? []), e.type]);
      }
      for (const id of ids) assert.deepEqual(terminalEvents.get(id), ["message.sent"], `events of ${id}`);
      assert.equal(terminalEvents.size, TOTAL);

      // INV-2: the device sent every accepted message exactly once, and nothing else.
      const hist = await db.kysely.selectFrom("simulator_history").select(["message_id", "sends", "text"]).execute();
      assert.deepEqual(hist.map((h) => h.message_id).sort(), [...ids].sort());
      const dupes = hist.filter((h) => h.sends !== 1);
      assert.deepEqual(dupes, [], "no duplicate device send");
      // Informational: how much the kills interrupted. A send recorded a lease (1 s) or more after
      // the device sent it was recovered by reconciliation; attempts > 1 were claimed again.
      const recovered = await db.kysely
        .selectFrom("messages")
        .innerJoin("simulator_history", "simulator_history.message_id", "messages.id")
        .select(["messages.attempts", "messages.sent_at", "simulator_history.sent_at as device_at"])
        .execute();
      const reclaimed = recovered.filter((r) => r.attempts > 1).length;
      const foundSent = recovered.filter((r) => r.attempts === 1 && Date.parse(r.sent_at ?? "") - r.device_at >= 900).length;
      process.stdout.write(`# crash test: ${servers.length} servers; ${reclaimed} claimed again, ${foundSent} found already sent; ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    } finally {
      await db.close();
    }
  });
});
