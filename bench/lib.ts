/** Scenario types, server processes and load generation for bench/run.ts. */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { dropPostgresSchema } from "../src/db/client.js";

/** What a server process tells the bench after seeding (e.g. the API key to send). */
export type Fixture = Record<string, string>;

export interface RequestSpec {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface Target {
  /** Row label in the table. */
  label: string;
  /** A server kind from bench/server.ts. */
  server: string;
  /** Storage for servers that use one; default "sqlite" (an on-disk file in a temp dir). */
  db?: "sqlite" | "postgres";
  request: (fixture: Fixture) => RequestSpec;
}

export interface Scenario {
  name: string;
  baseline: Target;
  target: Target;
  /** Target req/s ÷ baseline req/s we aim for; reported, never asserted. None: a reference line. */
  goal?: number;
  /** Concurrent connections for both sides, when the scenario needs other than BENCH_CONNECTIONS. */
  connections?: number;
}

export interface LoadOptions {
  seconds: number;
  warmupSeconds: number;
  connections: number;
  /** When set, servers run under `node --cpu-prof`, each writing into its own folder in here. */
  cpuProfDir?: string | undefined;
  /** postgres://… for targets with db "postgres". */
  databaseUrl?: string | undefined;
}

export interface Measurement {
  label: string;
  reqPerSec: number;
  /** Milliseconds, from every response's own timing (autocannon's histogram rounds to whole ms). */
  p50: number;
  p99: number;
  /** The server's `--cpu-prof` folder, when profiling. */
  profileDir?: string | undefined;
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVER = fileURLToPath(new URL("./server.ts", import.meta.url));

/** Children still running and temp dirs still there, cleaned up if the bench exits early. */
const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGTERM");
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Reads `fixture[name]`, failing loudly when the server did not provide it. */
export function need(fixture: Fixture, name: string): string {
  const v = fixture[name];
  if (v === undefined) throw new Error(`fixture has no "${name}"`);
  return v;
}

/** Boots `target` in its own process, measures it (warm-up, then the measured run), stops it. */
export async function measureTarget(target: Target, opts: LoadOptions): Promise<Measurement> {
  const profileDir = opts.cpuProfDir ? mkdtempSync(join(opts.cpuProfDir, `${target.server}-`)) : undefined;
  const storage = prepareStorage(target, opts);
  try {
    const server = await startServer(target, storage.env, profileDir);
    try {
      const url = `http://127.0.0.1:${server.port}`;
      const req = target.request(server.fixture);
      await preflight(url, req, target.label);
      await load(url, req, opts.warmupSeconds, opts.connections, target.label, null);
      const latencies: number[] = [];
      const result = await load(url, req, opts.seconds, opts.connections, target.label, latencies);
      const sorted = Float64Array.from(latencies).sort();
      return { label: target.label, reqPerSec: result.requests.average, p50: percentile(sorted, 50), p99: percentile(sorted, 99), profileDir };
    } finally {
      await stopChild(server.child);
    }
  } finally {
    await storage.cleanup();
  }
}

function prepareStorage(target: Target, opts: LoadOptions): { env: Record<string, string>; cleanup(): Promise<void> } {
  if (target.db === "postgres") {
    const url = opts.databaseUrl;
    if (!url) throw new Error(`${target.label} needs BENCH_DATABASE_URL`);
    const schema = `bench_${randomBytes(6).toString("hex")}`;
    return { env: { BENCH_DB: "postgres", BENCH_DATABASE_URL: url, BENCH_SCHEMA: schema }, cleanup: () => dropPostgresSchema(url, schema) };
  }
  const dir = mkdtempSync(join(tmpdir(), "msgbubbles-bench-"));
  tempDirs.add(dir);
  const cleanup = async () => {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };
  return { env: { BENCH_DB: "sqlite", BENCH_DATA_DIR: dir }, cleanup };
}

export interface Server {
  child: ChildProcess;
  port: number;
  fixture: Fixture;
}

export async function startServer(target: Target, env: Record<string, string>, profileDir: string | undefined): Promise<Server> {
  const prof = profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [];
  const child = spawn(process.execPath, [...prof, "--import", "tsx", SERVER, target.server], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  try {
    const line = await firstLine(child, 60_000);
    const { port, fixture } = JSON.parse(line) as { port: number; fixture: Fixture };
    return { child, port, fixture };
  } catch (err) {
    await stopChild(child);
    throw new Error(`${target.label}: server did not start: ${(err as Error).message}`);
  }
}

function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error("no stdout"));
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`no port after ${timeoutMs} ms`)), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      lines.close();
    };
    lines.once("line", (line) => {
      done();
      resolve(line);
    });
    child.once("exit", (code) => {
      done();
      reject(new Error(`exited with code ${code}`));
    });
  });
}

/** SIGTERM (the server closes and exits, writing any CPU profile), then SIGKILL after 10 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** One request before the load, so a wrong setup fails with its status and body. */
async function preflight(url: string, req: RequestSpec, label: string): Promise<void> {
  const res = await fetch(url + req.path, { method: req.method ?? "GET", headers: req.headers ?? {}, body: req.body ?? null });
  const body = await res.text();
  if (!res.ok) throw new Error(`${label}: ${req.method ?? "GET"} ${req.path} answered ${res.status}: ${body.slice(0, 300)}`);
}

/** Runs autocannon; any non-2xx answer or connection error fails the bench. */
function load(url: string, req: RequestSpec, seconds: number, connections: number, label: string, latencies: number[] | null): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const opts: autocannon.Options = { url: url + req.path, connections, duration: seconds, pipelining: 1, method: req.method ?? "GET" };
    if (req.headers) opts.headers = req.headers;
    if (req.body !== undefined) opts.body = req.body;
    const instance = autocannon(opts, (err, result) => {
      if (err) return reject(err);
      const phase = latencies ? "measured run" : "warm-up";
      if (result.non2xx > 0 || result.errors > 0) {
        const codes = JSON.stringify(result.statusCodeStats ?? {});
        return reject(new Error(`${label} (${phase}): ${result.non2xx} non-2xx responses, ${result.errors} errors, status codes ${codes}`));
      }
      resolve(result);
    });
    if (latencies) instance.on("response", (_client, _status, _bytes, ms) => latencies.push(ms));
  });
}

/** Nearest-rank percentile of ascending values. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
