/**
 * `npm run bench`: runs every scenario in bench/scenarios.ts, prints a table and writes it to
 * bench/results/latest.md. Performance is reported, never asserted; only a failed request
 * (non-2xx or connection error) makes the bench fail.
 *
 * Environment:
 *   BENCH_SECONDS=10          measured seconds per server and round
 *   BENCH_ROUNDS=3            alternating baseline/target rounds; each side reports its median
 *   BENCH_WARMUP_SECONDS=2    warm-up seconds per server (not measured)
 *   BENCH_CONNECTIONS=10      concurrent connections
 *   BENCH_ONLY=text           run only scenarios whose name contains text
 *   BENCH_DATABASE_URL=postgres://…   also run the app on PostgreSQL (a throwaway schema)
 *   BENCH_CPU_PROF=1          run servers under `node --cpu-prof` and print where the targets spend
 *                             CPU (a profiled run is slower, so latest.md is not written)
 *   BENCH_UPLOADS=0           skip the upload benchmarks (bench/uploads.ts); BENCH_ONLY=uploads runs only them
 *   BENCH_WEBHOOKS=0          skip the webhook fan-out benchmark (bench/webhooks.ts); BENCH_ONLY=webhooks runs only it
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type LoadOptions, type Measurement, measureTarget } from "./lib.js";
import { summariseProfiles } from "./profile.js";
import { consoleTable, markdown, type ScenarioResult } from "./report.js";
import { scenarios } from "./scenarios.js";
import { claimScaling, type EngineResult, engineMarkdown, engineTable, pipeline } from "./engine.js";
import { UPLOADS_NAME, uploadBenchmarks } from "./uploads.js";
import { WEBHOOKS_NAME, webhookBenchmark } from "./webhooks.js";

function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (Number.isInteger(n) && n > 0) return n;
  console.error(`bench: ${name} must be a positive whole number, got "${raw}"`);
  return process.exit(2);
}

process.once("SIGINT", () => process.exit(130));

const databaseUrl = process.env.BENCH_DATABASE_URL || undefined;
const profiling = process.env.BENCH_CPU_PROF === "1";
const opts: LoadOptions = {
  seconds: numberEnv("BENCH_SECONDS", 10),
  warmupSeconds: numberEnv("BENCH_WARMUP_SECONDS", 2),
  connections: numberEnv("BENCH_CONNECTIONS", 10),
  databaseUrl,
  cpuProfDir: profiling ? mkdtempSync(join(tmpdir(), "msgbubbles-prof-")) : undefined,
};
const only = process.env.BENCH_ONLY ?? "";
const runUploads = process.env.BENCH_UPLOADS !== "0" && UPLOADS_NAME.includes(only);
const runWebhooks = process.env.BENCH_WEBHOOKS !== "0" && WEBHOOKS_NAME.includes(only);
const rounds = numberEnv("BENCH_ROUNDS", 3);

/** The run with the median throughput (its own p50/p99 with it). */
function median(runs: Measurement[]): Measurement {
  const sorted = [...runs].sort((a, b) => a.reqPerSec - b.reqPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? (runs[0] as Measurement);
}
const selected = scenarios({ postgres: databaseUrl !== undefined }).filter((s) => s.name.includes(only));
if (selected.length === 0 && !runUploads && !runWebhooks) {
  console.error(`bench: no scenario name contains "${only}"`);
  process.exit(2);
}

const loadBefore = loadavg();
const results: ScenarioResult[] = [];
try {
  // Baseline and target alternate, `rounds` times each, and each side reports its median run:
  // on a shared 2-core machine one run can be off by ±30 %, and alternating spreads any
  // background load over both sides instead of one.
  for (const scenario of selected) {
    const baselines: Measurement[] = [];
    const targets: Measurement[] = [];
    const load = { ...opts, connections: scenario.connections ?? opts.connections };
    for (let round = 1; round <= rounds; round++) {
      console.error(`${scenario.name}: ${scenario.baseline.label} (round ${round}/${rounds}) …`);
      baselines.push(await measureTarget(scenario.baseline, load));
      console.error(`${scenario.name}: ${scenario.target.label} (round ${round}/${rounds}) …`);
      targets.push(await measureTarget(scenario.target, load));
    }
    results.push({ scenario, baseline: median(baselines), target: median(targets) });
  }
} catch (err) {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exit(1);
}

// The engine benchmarks run in-process; BENCH_ENGINE=0 skips them (they take a minute or two).
const engine: EngineResult[] = [];
if (process.env.BENCH_ENGINE !== "0" && only === "") {
  try {
    console.error("engine: pipeline …");
    // Like the HTTP scenarios: the median of `rounds` runs, each with its own baseline.
    const runs: EngineResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      runs.push(await pipeline(numberEnv("BENCH_PIPELINE_NUMBERS", 1000), numberEnv("BENCH_PIPELINE_PER_NUMBER", 5)));
    }
    const byRate = runs.sort((a, b) => (a.value ?? 0) - (b.value ?? 0));
    const mid = byRate[Math.floor(byRate.length / 2)];
    if (mid) engine.push({ ...mid, note: `${mid.note}; median of ${runs.length} runs (${byRate.map((r) => r.figure).join(", ")})` });
    console.error("engine: claim scaling …");
    engine.push(await claimScaling());
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack}`);
    process.exit(1);
  }
}

// The upload benchmarks boot their own servers (bench/uploads.ts); well under a minute.
const uploads: EngineResult[] = [];
if (runUploads) {
  try {
    console.error("uploads: throughput and peak memory …");
    uploads.push(...(await uploadBenchmarks()));
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack}`);
    process.exit(1);
  }
}

// The webhook fan-out benchmark boots its own server with the workers running; about 20 s.
const webhooks: EngineResult[] = [];
if (runWebhooks) {
  try {
    console.error("webhooks: fan-out to a local receiver …");
    webhooks.push(await webhookBenchmark());
  } catch (err) {
    console.error(`bench failed: ${(err as Error).stack}`);
    process.exit(1);
  }
}

console.log(`\n${consoleTable(results)}\n`);
if (engine.length > 0) console.log(`${engineTable(engine)}\n`);
if (uploads.length > 0) console.log(`${engineTable(uploads)}\n`);
if (webhooks.length > 0) console.log(`${engineTable(webhooks)}\n`);

if (profiling) {
  for (const { target } of results) {
    if (target.profileDir) console.log(`${target.label}: ${summariseProfiles(target.profileDir)}\n`);
  }
  console.log("Profiled run: bench/results/latest.md left unchanged.");
} else {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "latest.md"), `${markdown(results, opts, new Date(), loadBefore)}${engine.length > 0 ? `\n## Engine (in-process)\n\n${engineMarkdown(engine)}\n` : ""}${uploads.length > 0 ? `\n## Uploads\n\n${engineMarkdown(uploads)}\n` : ""}${webhooks.length > 0 ? `\n## Webhooks\n\n${engineMarkdown(webhooks)}\n` : ""}`);
  console.log(`Wrote ${join(dir, "latest.md")}`);
}
