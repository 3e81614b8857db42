/**
 * In-process benchmarks of the outbound engine (no HTTP), each against a baseline measured in the
 * same run:
 *
 * - pipeline: 1,000 simulator numbers with queued messages, paced fast enough that the
 *   dispatcher, not the pace, is the limit; wall-clock time until every message is sent,
 *   delivered and read with its events written (simulated time runs on a ManualClock). Baseline:
 *   the bare SQLite writes such a lifecycle needs at least — one insert and three updates per
 *   message plus three event inserts — in batched transactions. Also checks that no number
 *   exceeded its pace (simulator history, simulated time).
 * - claim: the time of a dispatcher pass that claims and sends the next message, with 1,000 and
 *   with 1,000,000 messages queued; the ratio shows whether claims grow with the queue.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { createAccount } from "../src/accounts/store.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import { ManualClock } from "../src/clock.js";
import { defaultConfig } from "../src/config.js";
import { openDb } from "../src/db/client.js";
import { Dispatcher } from "../src/dispatch/dispatcher.js";
import { acceptMessage } from "../src/messages/service.js";
import { addNumber } from "../src/numbers/store.js";

export interface EngineResult {
  name: string;
  figure: string;
  baseline: string;
  ratio: string;
  note: string;
  /** The figure as a number, for taking medians. */
  value?: number;
}

const PACE_PER_MINUTE = 6000; // 10 ms apart: 100/s per number, 100,000/s over 1,000 numbers

async function seed(dir: string, numbers: number) {
  const db = await openDb({ dataDir: dir });
  const clock = new ManualClock();
  const account = await createAccount(db.kysely, clock, "Bench");
  const handles: string[] = [];
  await db.transaction(async (trx) => {
    for (let i = 0; i < numbers; i++) {
      const handle = `+1555${String(2_000_000 + i).padStart(7, "0")}`;
      handles.push(handle);
      await addNumber(trx, clock, { accountId: account.id, handle, channels: "imessage,sms", backend: "simulator", pace: PACE_PER_MINUTE });
    }
  });
  return { db, clock, accountId: account.id, handles };
}

export async function pipeline(numbers = 1000, perNumber = 5): Promise<EngineResult> {
  const dir = mkdtempSync(join(tmpdir(), "mb-pipeline-"));
  const { db, clock, accountId, handles } = await seed(dir, numbers);
  const config = defaultConfig({ DISPATCH_BATCH: numbers, SIMULATOR_DELIVERY_MS: 300, SIMULATOR_READ_MS: 700 });
  const deps = { db, clock, config };
  const scope = { accountId, mode: "test" as const };
  for (let round = 0; round < perNumber; round++) {
    await Promise.all(handles.map((from, i) => db.transaction((trx) => acceptMessage(trx, deps, scope, { from_handle: from, to: `+1555${String(3_000_000 + i).padStart(7, "0")}`, text: `m${round}` }))));
  }
  const total = numbers * perNumber;
  const backends = new Backends(new SimulatorBackend(db, clock, { deliveryMs: 300, readMs: 700 }));
  const dispatcher = new Dispatcher({ db, clock, config, backends });
  const started = performance.now();
  for (let guard = 0; guard < 100_000; guard++) {
    await dispatcher.runUntilIdle();
    const left = await db.kysely.selectFrom("messages").select((eb) => eb.fn.countAll<number>().as("n")).where("status", "!=", "read").executeTakeFirstOrThrow();
    if (Number(left.n) === 0) break;
    clock.advance(10);
  }
  const seconds = (performance.now() - started) / 1000;
  const history = await db.kysely.selectFrom("simulator_history").select(["from_handle", "sent_at", "sends"]).orderBy("from_handle").orderBy("sent_at").execute();
  let tooFast = 0;
  let duplicates = 0;
  for (let i = 0; i < history.length; i++) {
    const h = history[i];
    const prev = history[i - 1];
    if (h && h.sends !== 1) duplicates++;
    if (h && prev && prev.from_handle === h.from_handle && h.sent_at - prev.sent_at < 60_000 / PACE_PER_MINUTE) tooFast++;
  }
  const events = await db.kysely.selectFrom("events").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  await db.close();
  const base = bareLifecycle(dir, total);
  rmSync(dir, { recursive: true, force: true });
  const rate = total / seconds;
  return {
    name: `pipeline: ${numbers.toLocaleString("en-US")} numbers × ${perNumber}, sent → delivered → read`,
    figure: `${Math.round(rate).toLocaleString("en-US")} msg/s`,
    baseline: `${Math.round(base).toLocaleString("en-US")} msg/s (bare SQLite writes)`,
    ratio: (rate / base).toFixed(2),
    value: rate,
    note: `${history.length} sent, ${Number(events.n)} events, ${tooFast} sends faster than the pace, ${duplicates} duplicates; goal ≥ 2,000 msg/s`,
  };
}

/** The least SQLite work one message's lifecycle needs, in batches of 1,000: the baseline. */
function bareLifecycle(dir: string, total: number): number {
  const raw = new SQLite(join(dir, "bare.sqlite"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = FULL");
  raw.exec("create table m (id integer primary key, status text, t1 integer, t2 integer, t3 integer); create table e (id integer primary key autoincrement, mid integer, type text, data text)");
  const ins = raw.prepare("insert into m (id, status) values (?, 'queued')");
  const upd = raw.prepare("update m set status = ?, t1 = ? where id = ?");
  const ev = raw.prepare("insert into e (mid, type, data) values (?, ?, ?)");
  const started = performance.now();
  for (let start = 0; start < total; start += 1000) {
    raw.transaction(() => {
      for (let id = start; id < Math.min(total, start + 1000); id++) ins.run(id);
    })();
    for (const status of ["sent", "delivered", "read"]) {
      raw.transaction(() => {
        for (let id = start; id < Math.min(total, start + 1000); id++) {
          upd.run(status, id, id);
          ev.run(id, `message.${status}`, '{"id":"x"}');
        }
      })();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  raw.close();
  return total / seconds;
}

/** Time per dispatcher pass that claims and sends one message, with `queued` messages waiting. */
async function claimTime(queued: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "mb-claim-"));
  const { db, clock, accountId } = await seed(dir, 100);
  const numberIds = await db.kysely.selectFrom("numbers").select(["id", "handle"]).execute();
  await db.close();
  // Bulk-load the queue straight into SQLite: a million accepts through the API would take minutes.
  const raw = new SQLite(join(dir, "msgbubbles.sqlite"));
  const chat = raw.prepare("insert into chats (id, account_id, mode, number_id, from_handle, remote_handle, is_group, participants, created_at, updated_at) values (?, ?, 'test', ?, ?, ?, 0, '[]', ?, ?)");
  const msg = raw.prepare(
    `insert into messages (id, account_id, mode, chat_id, number_id, lane_id, direction, status, from_handle, to_handle, text, queue_key, expires_at, created_at, updated_at)
     values (?, ?, 'test', ?, ?, ?, 'outbound', 'queued', ?, '+15553000000', 'x', ?, ?, ?, ?)`,
  );
  const now = new Date(clock.now()).toISOString();
  raw.transaction(() => {
    for (const [i, n] of numberIds.entries()) chat.run(`c-${i}`, accountId, n.id, n.handle, "+15553000000", now, now);
    for (let i = 0; i < queued; i++) {
      const n = numberIds[i % numberIds.length];
      if (!n) continue;
      const key = `q-${String(i).padStart(9, "0")}`;
      msg.run(`m-${key}`, accountId, `c-${i % numberIds.length}`, n.id, `${n.id}:test`, n.handle, key, clock.now() + 36_000_000, now, now);
    }
    const lane = raw.prepare("insert into sender_lanes (id, number_id, mode, tat, paused_until, pending, ready_at) values (?, ?, 'test', 0, 0, ?, 0)");
    for (const n of numberIds) lane.run(`${n.id}:test`, n.id, Math.ceil(queued / numberIds.length));
  })();
  raw.close();
  const db2 = await openDb({ dataDir: dir });
  const config = defaultConfig({ DISPATCH_BATCH: 1 });
  const dispatcher = new Dispatcher({ db: db2, clock, config, backends: new Backends(new SimulatorBackend(db2, clock, { deliveryMs: 3_600_000, readMs: 0 })) });
  for (let i = 0; i < 50; i++) await dispatcher.tick(); // warm up
  const passes = 500;
  const started = performance.now();
  for (let i = 0; i < passes; i++) {
    clock.advance(1);
    await dispatcher.tick();
  }
  const perPass = (performance.now() - started) / passes;
  await db2.close();
  rmSync(dir, { recursive: true, force: true });
  return perPass;
}

export async function claimScaling(): Promise<EngineResult> {
  const small = await claimTime(1_000);
  const large = await claimTime(Number(process.env.BENCH_CLAIM_LARGE ?? 1_000_000));
  return {
    name: "claim the next message: 1,000,000 vs 1,000 queued",
    figure: `${(large * 1000).toFixed(0)} µs per pass`,
    baseline: `${(small * 1000).toFixed(0)} µs per pass (1,000 queued)`,
    ratio: (large / small).toFixed(2),
    note: "goal ratio ≤ 1.5",
  };
}

const ENGINE_HEADER = ["Benchmark", "Figure", "Baseline (same run)", "Ratio", "Notes"];
const cells = (r: EngineResult) => [r.name, r.figure, r.baseline, r.ratio, r.note];

export function engineTable(results: EngineResult[]): string {
  const all = [ENGINE_HEADER, ...results.map(cells)];
  const widths = ENGINE_HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(ENGINE_HEADER), widths.map((w) => "-".repeat(w)).join("  "), ...results.map((r) => line(cells(r)))].join("\n");
}

export function engineMarkdown(results: EngineResult[]): string {
  return [`| ${ENGINE_HEADER.join(" | ")} |`, "|:---|---:|---:|---:|:---|", ...results.map((r) => `| ${cells(r).join(" | ")} |`)].join("\n");
}
