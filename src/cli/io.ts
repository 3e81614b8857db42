import { ApiError } from "../errors.js";

/** Where a command writes; tests pass buffers, the binary passes the process streams. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: Record<string, string | undefined>;
}

export const processIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
};

/** A mistake in what the operator typed: printed without a stack, exit code 1. */
export class UsageError extends Error {}

/** Prints a result: JSON for scripts (`--json`), or aligned `key: value` lines / a table for people. */
export function print(io: Io, json: boolean, value: unknown): void {
  if (json) {
    io.out(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (Array.isArray(value)) {
    io.out(value.length === 0 ? "(none)\n" : table(value as Record<string, unknown>[]));
    return;
  }
  const obj = value as Record<string, unknown>;
  const width = Math.max(...Object.keys(obj).map((k) => k.length));
  io.out(`${Object.entries(obj).map(([k, v]) => `${k.padEnd(width)}  ${show(v)}`).join("\n")}\n`);
}

function show(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (Array.isArray(v)) return v.join(",");
  return String(v);
}

function table(rows: Record<string, unknown>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const cells = rows.map((r) => cols.map((c) => show(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] ?? "").length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return `${[line(cols), ...cells.map(line)].join("\n")}\n`;
}

/** Prints an error in the same shape as the API's and returns the exit code. */
export function printError(io: Io, json: boolean, err: unknown): number {
  const code = err instanceof ApiError ? err.code : "invalid_request";
  const message = err instanceof Error ? err.message : String(err);
  io.err(json ? `${JSON.stringify({ error: code, message })}\n` : `error: ${message}\n`);
  return 1;
}
