/**
 * Webhook fan-out benchmark (issue 4): the real server (bench/server.ts "app" with
 * BENCH_WORKERS=1: dispatcher, simulator and webhook worker running, as under `serve`) accepts
 * sends at a steady rate while the account's endpoints (BENCH_WEBHOOK_ENDPOINTS, default 2, all
 * on one local receiver in this process) each get every event of every message
 * (message.created, .sent, .delivered, .read). Reported: deliveries per second
 * at the receiver, p50/p99 from an event's `created_at` to its arrival, and the API's own
 * throughput and p99 while it all runs ("the API keeps serving"). Each delivery is checked for
 * the Standard Webhooks headers; none may arrive twice.
 *
 * Baseline, same run: the same receiver fed by a plain undici client posting the same bodies as
 * fast as it can (the most deliveries this receiver and loopback take).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { Agent, request } from "undici";
import type { EngineResult } from "./engine.js";
import { need, startServer, stopChild } from "./lib.js";

export const WEBHOOKS_NAME = "webhooks";

const SENDS_PER_SECOND = Number(process.env.BENCH_WEBHOOK_SENDS_PER_SECOND ?? 400);
const SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 10);
/** Like the HTTP benches: the first seconds (JIT, caches, the pipeline filling) are not measured. */
const WARMUP_SECONDS = Number(process.env.BENCH_WEBHOOK_WARMUP_SECONDS ?? 2);
const EVENTS_PER_MESSAGE = 4;
const ENDPOINTS = Number(process.env.BENCH_WEBHOOK_ENDPOINTS ?? 2);

interface Receiver {
  url: string;
  count: number;
  duplicates: number;
  unsigned: number;
  latencies: number[];
  /** Arrival times (ms), for the per-second rate. */
  arrivals: number[];
  /** Events created before this (ms) count as delivered but not in the rate and latencies. */
  measureFrom: number;
  first: number;
  last: number;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const seen = new Set<string>();
  const r: Omit<Receiver, "url" | "close"> = { count: 0, duplicates: 0, unsigned: 0, latencies: [], arrivals: [], measureFrom: Number.POSITIVE_INFINITY, first: 0, last: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const now = Date.now();
      // One event reaches each endpoint once: the same webhook-id on two paths is not a duplicate.
      const id = `${req.url} ${String(req.headers["webhook-id"] ?? "")}`;
      if (!req.headers["webhook-id"] || !req.headers["webhook-signature"] || !req.headers["webhook-timestamp"]) r.unsigned++;
      if (seen.has(id)) r.duplicates++;
      seen.add(id);
      const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { created_at: string };
      const created = Date.parse(event.created_at);
      if (created >= r.measureFrom) {
        r.latencies.push(now - created);
        r.arrivals.push(now);
      }
      r.count++;
      if (r.first === 0) r.first = now;
      r.last = now;
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("receiver: no TCP address");
  return Object.assign(r as Receiver, {
    url: `http://127.0.0.1:${address.port}/hooks`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

export async function webhookBenchmark(): Promise<EngineResult> {
  const dir = await mkdtemp(join(tmpdir(), "mb-webhooks-"));
  const sink = await receiver();
  const server = await startServer(
    { label: "MsgBubbles with workers", server: "app", request: () => ({ path: "/" }) },
    { BENCH_DB: "sqlite", BENCH_DATA_DIR: dir, BENCH_WORKERS: "1" },
    process.env.BENCH_WEBHOOK_PROFILE_DIR,
  );
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const key = need(server.fixture, "apiKey");
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    // Fan-out: every event goes to each of the account's endpoints (here all on one receiver).
    for (let e = 0; e < ENDPOINTS; e++) {
      const created = await fetch(`${base}/v1/webhooks`, { method: "POST", headers, body: JSON.stringify({ url: `${sink.url}/${e}` }) });
      if (created.status !== 201) throw new Error(`webhook registration answered ${created.status}: ${await created.text()}`);
    }

    // Sends spread over the bench's numbers, at a steady overall rate.
    const froms = need(server.fixture, "froms").split(",");
    const api: number[] = [];
    sink.measureFrom = Date.now() + WARMUP_SECONDS * 1000;
    let i = 0;
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        {
          url: `${base}/v1/messages`,
          connections: 10,
          overallRate: SENDS_PER_SECOND,
          duration: WARMUP_SECONDS + SECONDS,
          requests: [
            {
              method: "POST",
              headers,
              setupRequest: (req) => ({ ...req, body: JSON.stringify({ from_handle: froms[i++ % froms.length], to: "+15555551234", text: "webhook bench" }) }),
            },
          ],
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      instance.on("response", (_c, _s, _b, ms) => {
        if (Date.now() >= sink.measureFrom) api.push(ms);
      });
    });
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`sends: ${result.non2xx} non-2xx, ${result.errors} errors`);
    const expected = result.requests.total * EVENTS_PER_MESSAGE * ENDPOINTS;
    const deadline = Date.now() + 60_000;
    while (sink.count < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const delivered = sink.count;
    const rate = sustainedRate(sink.arrivals);
    const measured = sink.arrivals;
    const overall = measured.length / Math.max(0.001, ((measured[measured.length - 1] ?? 0) - (measured[0] ?? 0)) / 1000);
    const sorted = Float64Array.from(sink.latencies).sort();
    const apiSorted = Float64Array.from(api).sort();
    const baseline = await bareDeliveries(sink, 5_000);
    return {
      name: `webhook fan-out: ${SENDS_PER_SECOND} sends/s for ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured, every event to ${ENDPOINTS} endpoints`,
      figure: `${Math.round(rate).toLocaleString("en-US")} deliveries/s sustained, p50 ${pct(sorted, 50)} ms, p99 ${pct(sorted, 99)} ms`,
      baseline: `${Math.round(baseline).toLocaleString("en-US")} deliveries/s (bare undici POSTs to the same receiver)`,
      ratio: (rate / baseline).toFixed(2),
      value: rate,
      note:
        `sustained = median of the whole seconds of deliveries of events created after the warm-up (first to last: ${Math.round(overall).toLocaleString("en-US")}/s); ` +
        `${delivered.toLocaleString("en-US")} of ${expected.toLocaleString("en-US")} delivered, ${sink.duplicates} twice, ${sink.unsigned} unsigned; ` +
        `API meanwhile ${Math.round(result.requests.average)} req/s, p99 ${pct(apiSorted, 99)} ms; goal ≥ 2,000 deliveries/s with p99 < 100 ms`,
    };
  } finally {
    await stopChild(server.child);
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The same receiver fed by a plain client, 64 requests in flight: its ceiling. */
async function bareDeliveries(sink: Receiver, n: number): Promise<number> {
  const agent = new Agent({ connections: 64 });
  const body = JSON.stringify({ id: "x", type: "message.sent", created_at: new Date().toISOString(), livemode: false, data: {} });
  const before = sink.count;
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        next++;
        const res = await request(sink.url, {
          method: "POST",
          dispatcher: agent,
          body,
          headers: { "content-type": "application/json", "webhook-id": `bare-${next}`, "webhook-timestamp": "1", "webhook-signature": "v1,x" },
        });
        await res.body.dump();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await agent.close();
  return (sink.count - before) / seconds;
}

/** The median of per-second delivery counts, leaving out the partial first and last seconds. */
function sustainedRate(arrivals: number[]): number {
  if (arrivals.length === 0) return 0;
  const start = arrivals[0] ?? 0;
  const counts = new Map<number, number>();
  for (const t of arrivals) {
    const s = Math.floor((t - start) / 1000);
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const last = Math.max(...counts.keys());
  const whole = [...counts].filter(([s]) => s > 0 && s < last).map(([, n]) => n).sort((a, b) => a - b);
  if (whole.length === 0) return arrivals.length;
  return whole[Math.floor(whole.length / 2)] ?? 0;
}

function pct(sorted: Float64Array, p: number): string {
  if (sorted.length === 0) return "n/a";
  const v = sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  return v.toFixed(0);
}
