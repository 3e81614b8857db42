/** Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per package. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a script lives: a src/ file, an npm package, Node itself, or a V8 pseudo-frame. */
function area(url: string, name: string): string {
  if (!url) return name.startsWith("(") ? name : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] ?? url;
  if (url.startsWith("node:")) return "node internals";
  const src = /\/(src|bench)\/.*$/.exec(url);
  return src ? src[0].slice(1) : url;
}

function top(map: Map<string, number>, total: number, n: number): string[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
}

interface Summary {
  file: string;
  /** Non-idle microseconds. */
  total: number;
  fns: Map<string, number>;
  areas: Map<string, number>;
}

function analyse(file: string): Summary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const summary: Summary = { file, total: 0, fns: new Map(), areas: new Map() };
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const us = profile.timeDeltas[i] ?? 0;
    if (!frame || frame.functionName === "(idle)") return;
    const where = area(frame.url, frame.functionName);
    const fn = `${frame.functionName || "(anonymous)"}  ${where}${frame.url ? `:${frame.lineNumber + 1}` : ""}`;
    summary.fns.set(fn, (summary.fns.get(fn) ?? 0) + us);
    summary.areas.set(where, (summary.areas.get(where) ?? 0) + us);
    summary.total += us;
  });
  return summary;
}

/**
 * Top self-time functions and packages, as a share of non-idle time, for the busiest profile in
 * `dir`: Node writes one per thread, and tsx's module loader has a thread of its own.
 */
export function summariseProfiles(dir: string, n = 15): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  const s = files.map((f) => analyse(join(dir, f))).sort((a, b) => b.total - a.total)[0];
  if (!s) return `no .cpuprofile in ${dir}`;
  return [
    `${s.file}`,
    `Busy (non-idle) CPU time: ${(s.total / 1000).toFixed(0)} ms, including start-up`,
    "Top self time by function:",
    ...top(s.fns, s.total, n),
    "Self time by package / file:",
    ...top(s.areas, s.total, n),
  ].join("\n");
}
