/**
 * Upload benchmarks (issue 5), each against a baseline measured in the same run, on the same disk:
 *
 * - throughput: 10 MB files through `POST /v1/attachments` (multipart, streamed to storage,
 *   type-sniffed, fsynced, recorded) against plain copies of the same file into the same temp
 *   folder (stream copy + fsync: the durability an upload gets). MB/s; goal ≥ 0.5 of the copy.
 *   Rounds alternate so background load hits every side; each reports its median. The note adds
 *   two floors: a bare Fastify + @fastify/multipart route that only writes the files
 *   (bench/server.ts "bare-upload"), the ceiling of HTTP multipart on this machine, so the app's
 *   own cost shows; and a route that pipes the raw body to a file ("bare-body"), what the HTTP
 *   transfer alone allows (client and server share the machine's cores with the disk's writes).
 * - memory: the server's peak RSS (VmHWM) while 20 uploads of 50 MB stream at once, against 20
 *   of 5 MB, each on a freshly started server. Streaming means the peak must not grow with the
 *   file size: goal ratio ≤ 1.25. Linux only (/proc); elsewhere it is reported as n/a.
 *
 * The server is bench/server.ts's "app" (its own process, SQLite in a temp dir, attachments under
 * it); the client is this process, streaming each file from disk (node:http).
 */
import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { EngineResult } from "./engine.js";
import { need, type Server, startServer, stopChild } from "./lib.js";

export const UPLOADS_NAME = "uploads";

const MB = 1_000_000;
const ROUNDS = 5;
const FILES_PER_ROUND = 20;
const CONCURRENCY = 4;

export async function uploadBenchmarks(): Promise<EngineResult[]> {
  const dir = await mkdtemp(join(tmpdir(), "mb-uploads-"));
  try {
    const file10 = await randomFile(dir, "ten.bin", 10 * MB);
    return [await throughput(dir, file10), await memory(dir)];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function throughput(dir: string, file: string): Promise<EngineResult> {
  const copies: number[] = [];
  const uploads: number[] = [];
  const floors: number[] = [];
  const raws: number[] = [];
  const server = await boot(join(dir, "server-throughput"));
  const floor = await boot(join(dir, "server-floor"), "bare-upload");
  const raw = await boot(join(dir, "server-raw"), "bare-body");
  const bytes = FILES_PER_ROUND * 10 * MB;
  try {
    const sides: [number[], (round: number) => Promise<void>][] = [
      [copies, (round) => copyRound(file, join(dir, `copies-${round}`))],
      [floors, () => inParallel(FILES_PER_ROUND, CONCURRENCY, () => upload(floor, file))],
      [raws, () => inParallel(FILES_PER_ROUND, CONCURRENCY, () => upload(raw, file))],
      [uploads, () => inParallel(FILES_PER_ROUND, CONCURRENCY, () => upload(server, file))],
    ];
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts with another side, and each side with no dirty pages left by the one
      // before it: the disk's background writeback would otherwise slow whoever comes last.
      for (let k = 0; k < sides.length; k++) {
        const [results, run] = sides[(round + k) % sides.length] as (typeof sides)[number];
        flushDisk();
        results.push(await rate(bytes, () => run(round)));
      }
    }
  } finally {
    await Promise.all([stopChild(server.child), stopChild(floor.child), stopChild(raw.child)]);
  }
  const copyRate = median(copies);
  const uploadRate = median(uploads);
  const floorRate = median(floors);
  const rawRate = median(raws);
  const ofCopy = (r: number) => `${r.toFixed(0)} MB/s (${(r / copyRate).toFixed(2)} of the copy)`;
  return {
    name: `upload 10 MB files (${CONCURRENCY} at a time)`,
    figure: `${uploadRate.toFixed(0)} MB/s`,
    baseline: `${copyRate.toFixed(0)} MB/s (file copy + fsync)`,
    ratio: (uploadRate / copyRate).toFixed(2),
    value: uploadRate,
    note: `median of ${ROUNDS} rounds × ${FILES_PER_ROUND} files; goal ≥ 0.5; floors: bare Fastify + multipart + fsync ${ofCopy(floorRate)}; raw body piped to a file + fsync ${ofCopy(rawRate)}`,
  };
}

async function memory(dir: string): Promise<EngineResult> {
  const small = await peakDuring(dir, 5);
  const large = await peakDuring(dir, 50);
  if (small === null || large === null) {
    return { name: "server peak RSS, 20 concurrent uploads: 50 MB vs 5 MB", figure: "n/a", baseline: "n/a", ratio: "n/a", note: "needs Linux /proc" };
  }
  const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;
  return {
    name: "server peak RSS, 20 concurrent uploads: 50 MB vs 5 MB",
    figure: `${mib(large.peak)} (idle ${mib(large.idle)})`,
    baseline: `${mib(small.peak)} (idle ${mib(small.idle)})`,
    ratio: (large.peak / small.peak).toFixed(2),
    value: large.peak,
    note: "fresh server each; 1 GB vs 100 MB streamed; goal ≤ 1.25 (no growth with file size)",
  };
}

/** A fresh server's idle RSS and its high-water mark after 20 concurrent uploads of `sizeMb`. */
async function peakDuring(dir: string, sizeMb: number): Promise<{ idle: number; peak: number } | null> {
  const file = await randomFile(dir, `f${sizeMb}.bin`, sizeMb * MB);
  const server = await boot(join(dir, `server-${sizeMb}`));
  try {
    const pid = server.child.pid;
    const idle = pid === undefined ? null : await procKb(pid, "VmRSS");
    await inParallel(20, 20, () => upload(server, file));
    const peak = pid === undefined ? null : await procKb(pid, "VmHWM");
    return idle === null || peak === null ? null : { idle, peak };
  } finally {
    await stopChild(server.child);
    await rm(file, { force: true });
  }
}

async function boot(dataDir: string, kind: "app" | "bare-upload" | "bare-body" = "app"): Promise<Server> {
  await mkdir(dataDir, { recursive: true });
  return startServer({ label: `uploads (${kind})`, server: kind, request: () => ({ path: "/" }) }, { BENCH_DB: "sqlite", BENCH_DATA_DIR: dataDir }, undefined);
}

/**
 * One multipart upload of `file`, streamed from disk in 1 MiB chunks with node:http. A lean
 * client on purpose: fetch with a FormData Blob costs more CPU than the server's whole upload
 * path, and on a 2-core machine the client's CPU is taken from the server being measured.
 */
async function upload(server: Server, file: string): Promise<void> {
  const boundary = `----msgbubbles-bench-${randomBytes(8).toString("hex")}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const size = (await stat(file)).size;
  const req = request({
    host: "127.0.0.1",
    port: server.port,
    path: "/v1/attachments",
    method: "POST",
    headers: {
      authorization: `Bearer ${need(server.fixture, "apiKey")}`,
      "content-type": `multipart/form-data; boundary=${boundary}`,
      "content-length": String(head.length + size + tail.length),
    },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once("error", reject);
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => {
        body += c;
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
  req.write(head);
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), req, { end: false });
  req.end(tail);
  const { status, body } = await answer;
  if (status !== 201) throw new Error(`upload answered ${status}: ${body.slice(0, 300)}`);
}

async function copyRound(file: string, out: string): Promise<void> {
  await mkdir(out);
  await inParallel(FILES_PER_ROUND, CONCURRENCY, (i) => copy(file, join(out, `c${i}`)));
  await rm(out, { recursive: true, force: true });
}

/** sync(1): writes every dirty page of the machine back to disk. Where it is missing, nothing. */
function flushDisk(): void {
  try {
    execFileSync("sync", { stdio: "ignore" });
  } catch {}
}

async function copy(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from, { highWaterMark: 1024 * 1024 }), createWriteStream(to, { highWaterMark: 1024 * 1024, flush: true }));
}

async function randomFile(dir: string, name: string, bytes: number): Promise<string> {
  const path = join(dir, name);
  const out = createWriteStream(path);
  for (let left = bytes; left > 0; left -= MB) {
    if (!out.write(randomBytes(Math.min(MB, left)))) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return path;
}

async function inParallel(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function rate(bytes: number, run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return bytes / MB / ((performance.now() - started) / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

/** A line of /proc/<pid>/status in kB (VmRSS: now; VmHWM: the peak so far), or null off Linux. */
async function procKb(pid: number, field: "VmRSS" | "VmHWM"): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
