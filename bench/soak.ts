/**
 * Soak (issue 7): `npm run soak`. Mixed traffic against the real server in its own process
 * (bench/server.ts "app" with BENCH_WORKERS=1: API, dispatcher, simulator and webhook worker, as
 * under `serve`) for SOAK_SECONDS (default 60), at steady rates:
 *
 * - sends: POST /v1/messages with an Idempotency-Key, over the server's ten numbers;
 * - reads: GET /v1/messages?limit=10;
 * - uploads: POST /v1/attachments, one 32 KB file (multipart);
 * - webhook deliveries: every event of those messages, to a receiver in this process.
 *
 * Prints per operation: throughput, p50/p99 latency (webhooks: from the event's created_at to its
 * arrival), errors by status and code; and the server's RSS at start, after the warm-up and at
 * the end. PASS when nothing failed but 429s and the RSS stayed flat (end ≤ 1.2 × after warm-up).
 *
 * Settings: SOAK_SECONDS, SOAK_WARMUP_SECONDS (default a quarter, at most 10), SOAK_SENDS_PER_SECOND
 * (20), SOAK_READS_PER_SECOND (40), SOAK_UPLOADS_PER_SECOND (4); SOAK_DATABASE_URL=postgres://…
 * to soak on PostgreSQL (a schema of its own, dropped afterwards) instead of SQLite in a temp dir.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { dropPostgresSchema } from "../src/db/client.js";
import { need, type Server, startServer, stopChild } from "./lib.js";

const num = (name: string, fallback: number) => {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number ≥ 0`);
  return v;
};
const SECONDS = num("SOAK_SECONDS", 60);
const WARMUP = num("SOAK_WARMUP_SECONDS", Math.min(10, SECONDS / 4));
const RATES = { send: num("SOAK_SENDS_PER_SECOND", 20), read: num("SOAK_READS_PER_SECOND", 40), upload: num("SOAK_UPLOADS_PER_SECOND", 4) };
/** A request still unanswered after this long counts as an error (a hang). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Requests in flight per operation at most: beyond it the client skips (and counts) a slot. */
const MAX_IN_FLIGHT = 64;
/** RSS may grow by this factor between the warm-up and the end. */
const RSS_GOAL = 1.2;

type Op = keyof typeof RATES | "webhook";

class Stats {
  readonly latencies: number[] = [];
  readonly errors = new Map<string, number>();
  ok = 0;
  /** Slots skipped because MAX_IN_FLIGHT requests were still waiting. */
  skipped = 0;
  inFlight = 0;

  error(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }
}

const stats: Record<Op, Stats> = { send: new Stats(), read: new Stats(), upload: new Stats(), webhook: new Stats() };
let measuring = false;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** The local webhook receiver: counts deliveries, their latency, duplicates (same webhook-id). */
async function startReceiver(): Promise<{ url: string; seen: Set<string>; duplicates: () => number; close(): Promise<void> }> {
  const seen = new Set<string>();
  let duplicates = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const id = String(req.headers["webhook-id"] ?? "");
      if (seen.has(id)) duplicates++;
      seen.add(id);
      if (measuring) {
        const s = stats.webhook;
        s.ok++;
        const created = Date.parse((JSON.parse(Buffer.concat(chunks).toString("utf8")) as { created_at: string }).created_at);
        s.latencies.push(Date.now() - created);
      }
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    seen,
    duplicates: () => duplicates,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Call {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

async function main(): Promise<void> {
  const pgUrl = process.env.SOAK_DATABASE_URL;
  const schema = `soak_${randomBytes(6).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "msgbubbles-soak-"));
  const env: Record<string, string> = pgUrl
    ? { BENCH_DB: "postgres", BENCH_DATABASE_URL: pgUrl, BENCH_SCHEMA: schema, BENCH_DATA_DIR: dir, BENCH_WORKERS: "1" }
    : { BENCH_DB: "sqlite", BENCH_DATA_DIR: dir, BENCH_WORKERS: "1" };
  const receiver = await startReceiver();
  let server: Server | undefined;
  const client = new Agent({ connections: 128, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  try {
    server = await startServer({ label: "soak", server: "app", request: () => ({ path: "/" }) }, env, undefined);
    const pid = server.child.pid ?? 0;
    const base = `http://127.0.0.1:${server.port}`;
    const auth = { authorization: `Bearer ${need(server.fixture, "apiKey")}` };
    const froms = need(server.fixture, "froms").split(",");
    const hook = await request(`${base}/v1/webhooks`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ url: receiver.url }),
      dispatcher: client,
    });
    if (hook.statusCode !== 201) throw new Error(`POST /v1/webhooks answered ${hook.statusCode}: ${await hook.body.text()}`);
    await hook.body.dump();
    const rssStart = rssMb(pid);

    // The upload body: one 32 KB file of random bytes (application/octet-stream once sniffed).
    const boundary = `----msgbubbles-soak-${randomBytes(8).toString("hex")}`;
    const upload = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="soak.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      randomBytes(32 * 1024),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    let n = 0;
    const calls: Record<keyof typeof RATES, () => Call> = {
      send: () => {
        n++;
        return {
          method: "POST",
          path: "/v1/messages",
          headers: { ...auth, "content-type": "application/json", "idempotency-key": `soak-${n}` },
          body: JSON.stringify({ from_handle: froms[n % froms.length], to: `+1555555${String(2000 + (n % 50)).padStart(4, "0")}`, text: `soak ${n}` }),
        };
      },
      read: () => ({ method: "GET", path: "/v1/messages?limit=10", headers: auth }),
      upload: () => ({ method: "POST", path: "/v1/attachments", headers: { ...auth, "content-type": `multipart/form-data; boundary=${boundary}` }, body: upload }),
    };

    const fire = async (op: keyof typeof RATES): Promise<void> => {
      const s = stats[op];
      if (s.inFlight >= MAX_IN_FLIGHT) {
        if (measuring) s.skipped++;
        return;
      }
      const c = calls[op]();
      const counted = measuring;
      s.inFlight++;
      const started = performance.now();
      try {
        const res = await request(base + c.path, { method: c.method, headers: c.headers, body: c.body ?? null, dispatcher: client });
        const text = await res.body.text();
        const ms = performance.now() - started;
        if (!counted) return;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          s.ok++;
          s.latencies.push(ms);
        } else {
          let code = "";
          try {
            code = (JSON.parse(text) as { error?: string }).error ?? "";
          } catch {
            code = "non-JSON";
          }
          s.error(`${res.statusCode} ${code}`.trim());
        }
      } catch (err) {
        if (counted) s.error((err as { code?: string }).code ?? "connection error");
      } finally {
        s.inFlight--;
      }
    };

    // Open loop: each operation fires at its own steady rate whatever the latency, like clients
    // that do not wait for each other.
    const started = performance.now();
    const fired: Record<keyof typeof RATES, number> = { send: 0, read: 0, upload: 0 };
    let rssWarm = Number.NaN;
    let rssPeak = rssStart;
    const rssSamples: number[] = [];
    let lastSample = 0;
    const pending = new Set<Promise<void>>();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = (performance.now() - started) / 1000;
        if (!measuring && elapsed >= WARMUP) {
          measuring = true;
          rssWarm = rssMb(pid);
        }
        if (elapsed - lastSample >= 1) {
          lastSample = elapsed;
          const rss = rssMb(pid);
          rssSamples.push(rss);
          rssPeak = Math.max(rssPeak, rss);
        }
        if (elapsed >= SECONDS) {
          clearInterval(timer);
          resolve();
          return;
        }
        for (const op of Object.keys(RATES) as (keyof typeof RATES)[]) {
          const due = Math.floor(elapsed * RATES[op]);
          for (; fired[op] < due; fired[op]++) {
            const p = fire(op).finally(() => pending.delete(p));
            pending.add(p);
          }
        }
      }, 5);
    });
    const measured = SECONDS - WARMUP;
    // The answers still on their way belong to the run; then the server's RSS at the end.
    await Promise.all([...pending]);
    const rssEnd = rssMb(pid);
    measuring = false;
    // Informational: how far the webhook worker is behind when the traffic stops.
    const backlogStart = performance.now();
    const expectDelivered = async () => {
      const res = await request(`${base}/metrics`, { dispatcher: client });
      const text = await res.body.text();
      return Number(/^msgbubbles_webhook_due_deliveries (\S+)/m.exec(text)?.[1] ?? Number.NaN);
    };
    let due = await expectDelivered();
    while (due > 0 && performance.now() - backlogStart < 30_000) {
      await new Promise((r) => setTimeout(r, 500));
      due = await expectDelivered();
    }
    const drainS = (performance.now() - backlogStart) / 1000;

    // The report.
    const fmt = (v: number) => (Number.isNaN(v) ? "n/a" : v < 10 ? v.toFixed(2) : v.toFixed(1));
    const lines: string[] = [];
    lines.push(`# Soak: ${SECONDS} s (${WARMUP} s warm-up, ${measured} s measured), ${pgUrl ? "PostgreSQL" : "SQLite"}`);
    lines.push(`target rates/s: sends ${RATES.send}, reads ${RATES.read}, uploads ${RATES.upload}`);
    lines.push("");
    lines.push("| operation | ok | per second | p50 ms | p99 ms | errors | skipped (client) |");
    lines.push("|---|---|---|---|---|---|---|");
    let unexpected = 0;
    for (const op of ["send", "read", "upload", "webhook"] as Op[]) {
      const s = stats[op];
      const errs = [...s.errors].map(([k, v]) => `${k} ×${v}`).join(", ") || "none";
      for (const [k, v] of s.errors) if (!k.startsWith("429 ")) unexpected += v;
      unexpected += s.skipped;
      const label = op === "webhook" ? "webhook delivery (event → receiver)" : op;
      lines.push(`| ${label} | ${s.ok} | ${fmt(s.ok / measured)} | ${fmt(percentile(s.latencies, 50))} | ${fmt(percentile(s.latencies, 99))} | ${errs} | ${s.skipped} |`);
    }
    lines.push("");
    lines.push(`webhooks: ${receiver.seen.size} distinct events received in all, ${receiver.duplicates()} repeats; backlog ${fmt(due)} due deliveries ${fmt(drainS)} s after the traffic stopped`);
    const rssOk = rssEnd <= RSS_GOAL * rssWarm;
    lines.push(
      `server RSS (MB): start ${fmt(rssStart)}, after warm-up ${fmt(rssWarm)}, end ${fmt(rssEnd)} (peak ${fmt(rssPeak)}; end/warm-up ${fmt(rssEnd / rssWarm)}, goal ≤ ${RSS_GOAL})`,
    );
    lines.push(`RSS every 10 s: ${rssSamples.filter((_, i) => i % 10 === 0).map((v) => v.toFixed(0)).join(" → ")}`);
    // Garbage collection makes RSS a sawtooth (±20 % over tens of seconds in a 180 s run), so a
    // single end sample can land on a peak: the floor of the last third says whether the base grows.
    const lastThird = rssSamples.slice(Math.floor((rssSamples.length * 2) / 3));
    const floor = Math.min(...lastThird);
    lines.push(`RSS floor of the last third: ${fmt(floor)} (${fmt(floor / rssWarm)} × after warm-up; a leak raises the floor)`);
    lines.push("");
    lines.push(`errors beyond 429s: ${unexpected === 0 ? "none — PASS" : `${unexpected} — FAIL`}`);
    lines.push(`RSS flat: ${rssOk ? "PASS" : "FAIL"}`);
    const pass = unexpected === 0 && rssOk;
    lines.push(`soak: ${pass ? "PASS" : "FAIL"}`);
    process.stdout.write(`${lines.join("\n")}\n`);
    process.exitCode = pass ? 0 : 1;
  } finally {
    if (server) await stopChild(server.child);
    await receiver.close();
    await client.close();
    rmSync(dir, { recursive: true, force: true });
    if (pgUrl) await dropPostgresSchema(pgUrl, schema);
  }
}

await main();
