import { createHash } from "node:crypto";

/**
 * Canonical JSON: object keys sorted recursively, no whitespace. Two requests that mean the same
 * thing (keys reordered, spacing changed) get the same fingerprint (reliability.md IDEM-R3).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/** sha256 of method, route template, query and body: what "the same request" means. */
export function fingerprint(method: string, route: string, query: unknown, body: unknown): string {
  return createHash("sha256")
    .update(`${method.toUpperCase()} ${route}\n${canonicalJson(query ?? {})}\n${canonicalJson(body ?? null)}`)
    .digest("hex");
}
