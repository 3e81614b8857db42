// Faults under load, FI-05 (reliability.md §4.4; INV-1, 2, 4, 7): PostgreSQL restarted while the
// real `serve` takes a steady stream of sends, dispatches them and delivers their events. While
// the database is down the API answers `503 unavailable` in the documented error shape — never a
// 500, never a hang — and the server recovers by itself with nothing lost.
//
// PostgreSQL only (DATABASE_URL set). The database restarted is a throwaway cluster of the same
// installation (pg_createcluster on a free port), not the one DATABASE_URL names: the other test
// files run alongside this one on that server, and a restart under them would fail them. The
// cluster is stopped and dropped in a finally block whatever happens.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { SIM } from "../src/backends/simulator.js";
import { sql } from "kysely";
import { type Db, openDb } from "../src/db/client.js";
import { isUnavailable } from "../src/http/error-handler.js";
import { bounded, call, errorShapeProblem, registerWebhook, SendLoad, Servers, seedAccount, settleAndCheck, step, within } from "./fault-support.js";
import { DATABASE_URL, freshDb } from "./helpers.js";
import { Receiver } from "./webhook-support.js";

const run = promisify(execFile);
// Eight numbers: the dispatcher serves one message per number and pass, so the backlog the
// outages leave drains in a few seconds.
const NUMBERS = Array.from({ length: 8 }, (_, i) => `+1555555010${i}`);
const RECIPIENTS = ["+15555551001", "+15555551002", SIM.smsOnly];
const PREFIX = "mbfaults_";

const version = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql").sort()[0] : undefined;
const skip = !DATABASE_URL
  ? "PostgreSQL only: set DATABASE_URL (the test restarts a PostgreSQL cluster of its own)"
  : !version || !existsSync("/usr/bin/pg_createcluster") || process.getuid?.() !== 0
    ? "needs root and Debian's pg_createcluster/pg_ctlcluster to run a throwaway PostgreSQL cluster"
    : false;

const ctl = (name: string, action: "start" | "stop" | "restart") =>
  run("pg_ctlcluster", ["--skip-systemctl-redirect", version ?? "", name, action], { timeout: 60_000 });

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** A cluster of our own, trusted on localhost; leftovers of runs that died are dropped first. */
async function createCluster(): Promise<{ name: string; url: string }> {
  const { stdout } = await run("pg_lsclusters", ["--no-header"]);
  for (const line of stdout.split("\n")) {
    const name = line.trim().split(/\s+/)[1] ?? "";
    const pid = Number(name.slice(PREFIX.length));
    if (!name.startsWith(PREFIX) || !Number.isInteger(pid)) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await run("pg_dropcluster", ["--stop", version ?? "", name]).catch(() => {});
  }
  const name = `${PREFIX}${process.pid}`;
  const port = await freePort();
  await run("pg_createcluster", [version ?? "", name, "-p", String(port), "--start-conf", "manual", "--", "--auth-host=trust", "--auth-local=trust", "--no-sync"], { timeout: 60_000 });
  await ctl(name, "start");
  return { name, url: `postgres://postgres@127.0.0.1:${port}/postgres` };
}

const dropCluster = (name: string) => run("pg_dropcluster", ["--stop", version ?? "", name], { timeout: 60_000 });

describe("faults: PostgreSQL restarted under load (FI-05)", { skip }, () => {
  const servers = new Servers({});
  let receiver: Receiver | undefined;
  let load: SendLoad | undefined;
  let cluster: { name: string; url: string } | undefined;
  after(async () => {
    load?.abort();
    await servers.killAll();
    await receiver?.close();
  });

  /**
   * Reads and readiness in a loop until `done()`: each answer is a 200, or — while the database
   * is down — a prompt 503 unavailable in the error shape; liveness stays 200 throughout.
   * Returns how many 503s each path got.
   */
  async function probeWhile(base: string, key: string, done: () => boolean): Promise<Map<string, number>> {
    const down = new Map<string, number>();
    while (!done()) {
      for (const path of ["/v1/messages?limit=5", "/readyz", "/healthz"]) {
        const a = await call(base, key, "GET", path);
        assert.ok(a.ms < 8_000, `GET ${path} answered in ${a.ms.toFixed(0)} ms`);
        if (a.status === 200) continue;
        assert.equal(a.status, 503, `GET ${path} while the database restarts: ${a.status} ${JSON.stringify(a.body)}`);
        assert.notEqual(path, "/healthz", "the process itself stays alive");
        assert.equal(a.body.error, "unavailable");
        assert.equal(errorShapeProblem(a), null);
        down.set(path, (down.get(path) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return down;
  }

  async function body(): Promise<void> {
    const started = Date.now();
    cluster = await createCluster();
    const { name, url } = cluster;
    step("cluster up");
    let db: Db | undefined;
    try {
      db = await openDb({ databaseUrl: url, schema: "faults" });
      const env = { DATABASE_URL: `${url}?options=${encodeURIComponent("-c search_path=faults")}` };
      const { accountId, key } = await seedAccount(db, NUMBERS);
      receiver = await Receiver.start();
      const server = await servers.start(env);
      step("server up");
      const webhook = await registerWebhook(server.base, key, receiver.url);
      load = new SendLoad({ key, target: () => servers.current?.base ?? null, numbers: NUMBERS, recipients: RECIPIENTS, concurrency: 6, gapMs: 5 });
      load.start();
      await load.waitAccepted(60, 20_000);

      // A restart in the middle of the stream (pg_ctlcluster restart: fast shutdown, then start),
      // probed meanwhile: every answer is 200 or a prompt 503 unavailable.
      step("restart");
      let restarting = true;
      const probing = probeWhile(server.base, key, () => !restarting);
      await ctl(name, "restart").finally(() => {
        restarting = false;
      });
      const down = await probing;
      step(`restarted; probes got 503 ${JSON.stringify(Object.fromEntries(down))}`);
      assert.ok(load.unavailableAt.length > 0, "sends got 503 unavailable while the database was down");
      assert.ok((down.get("/v1/messages?limit=5") ?? 0) > 0 && (down.get("/readyz") ?? 0) > 0, "reads and readiness got 503 while it was down");
      // It recovers by itself: the stream goes on.
      await load.waitAccepted(load.accepted.size + 60, 20_000);
      await within(load.stop(), 20_000, "the last sends");
      assert.deepEqual(load.problems, [], "every answer was expected");
      assert.equal(server.child.exitCode, null, "the server survived the outages");
      step(`load done: ${load.summary()}`);

      const report = await settleAndCheck(db, servers, { accountId, load, receiver, webhook, ms: 20_000 });
      process.stdout.write(
        `# faults-postgres: ${load.issued} messages; answers ${load.summary()}; slowest ${load.slowestMs.toFixed(0)} ms; ${report.reclaimed} claimed again; ` +
          `${report.events} events, ${report.deliveries} deliveries (${report.duplicateDeliveries} repeats); ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
      );
    } finally {
      await db?.close().catch(() => {});
      load?.abort();
      await servers.killAll();
      await dropCluster(name);
      step("cluster dropped");
    }
  }

  it("503 unavailable while it is down, then recovery by itself with nothing lost", { timeout: 58_000 }, () => bounded(55_000, body));
});

// Regression (found by the test above): a pooled client checked out by a transaction that is
// awaiting other work (not a query) when its server goes away emitted 'error' with no listener,
// and the process died. Now the transaction fails with an error the API answers 503 for, and the
// pool serves the next query on a fresh connection.
describe("PostgreSQL: a connection lost mid-transaction", { skip: DATABASE_URL ? false : "PostgreSQL only: set DATABASE_URL" }, () => {
  it("fails that transaction as unavailable; the process lives and the next query works", async () => {
    const db = await freshDb();
    try {
      const outcome = await db
        .transaction(async (trx) => {
          const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
          const pid = rows[0]?.pid;
          await sql`select pg_terminate_backend(${pid})`.execute(db.kysely);
          // The connection is cut while this transaction awaits something else: the FATAL
          // message arrives with no query running on the client.
          for (let i = 0; i < 100; i++) {
            const { rows: left } = await sql`select 1 from pg_stat_activity where pid = ${pid}`.execute(db.kysely);
            if (left.length === 0) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          await new Promise((r) => setTimeout(r, 50));
          await sql`select 1`.execute(trx);
        })
        .then(
          () => "committed",
          (err: unknown) => err,
        );
      assert.notEqual(outcome, "committed", "the transaction on the lost connection cannot commit");
      assert.ok(isUnavailable(outcome), `answered as 503 unavailable: ${String(outcome)}`);
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.kysely);
      assert.equal(rows[0]?.one, 1);
    } finally {
      await db.drop();
    }
  });
});
