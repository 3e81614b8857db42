/** Turns measurements into a console table and a markdown page. */
import { arch, cpus, loadavg, platform } from "node:os";
import type { LoadOptions, Measurement, Scenario } from "./lib.js";

export interface ScenarioResult {
  scenario: Scenario;
  baseline: Measurement;
  target: Measurement;
}

const HEADER = ["Scenario", "Server", "req/s", "p50 ms", "p99 ms", "ratio req/s", "ratio p99"];
const RIGHT = [false, false, true, true, true, true, true];

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => n.toFixed(2);

function rows(results: ScenarioResult[]): string[][] {
  return results.flatMap(({ scenario, baseline, target }) => {
    const ratio = target.reqPerSec / baseline.reqPerSec;
    const verdict = scenario.goal === undefined ? "(reference)" : `${ratio >= scenario.goal ? "✓" : "✗"} (goal ≥ ${scenario.goal})`;
    return [
      [scenario.name, baseline.label, int(baseline.reqPerSec), ms(baseline.p50), ms(baseline.p99), "—", "—"],
      ["", target.label, int(target.reqPerSec), ms(target.p50), ms(target.p99), `${ratio.toFixed(2)} ${verdict}`, `${(target.p99 / baseline.p99).toFixed(2)}×`],
    ];
  });
}

export function consoleTable(results: ScenarioResult[]): string {
  const all = [HEADER, ...rows(results)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (RIGHT[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join("  ");
  return [line(HEADER), widths.map((w) => "-".repeat(w)).join("  "), ...all.slice(1).map(line)].join("\n");
}

/** `loadBefore`: os.loadavg() when the bench started; other work on the machine skews the figures. */
export function markdown(results: ScenarioResult[], opts: LoadOptions, when: Date, loadBefore: number[]): string {
  const cpu = cpus();
  const load = (l: number[]) => l.map((n) => n.toFixed(2)).join(" / ");
  const table = [
    `| ${HEADER.join(" | ")} |`,
    `|${RIGHT.map((r) => (r ? "---:" : ":---")).join("|")}|`,
    ...rows(results).map((r) => `| ${r.join(" | ")} |`),
  ];
  return [
    "# Benchmark results",
    "",
    `Written by \`npm run bench\` on ${when.toISOString()}.`,
    "",
    `- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${platform()} ${arch()}, Node ${process.version}; load average (1/5/15 min) ${load(loadBefore)} before, ${load(loadavg())} after.`,
    `- Load: autocannon, ${opts.connections} connections (unless the scenario names another count), pipelining 1, ${opts.warmupSeconds} s warm-up then ${opts.seconds} s measured per server and round; each side is the median of alternating rounds (BENCH_ROUNDS, default 3), over loopback.`,
    "- Each server runs in its own process, one after another; autocannon runs in the bench process.",
    "- The app uses an on-disk SQLite file in a temp dir (the default deployment), or PostgreSQL when `BENCH_DATABASE_URL` is set.",
    "- req/s is autocannon's mean of per-second samples; p50/p99 are computed from every response's own timing.",
    "- ratio req/s = target ÷ baseline (higher is better); ratio p99 = target p99 ÷ baseline p99 (lower is better).",
    "",
    ...table,
    "",
  ].join("\n");
}
