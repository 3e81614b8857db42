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

/**
 * sha256 of method, route template, path parameters, query and body: what "the same request"
 * means. The parameters name the resource acted on (`:id`), so one key sent to another message or
 * chat is another request (422), never a replay of the first one's answer; ids compare in lower
 * case. A route without parameters hashes exactly as before they were added.
 */
export function fingerprint(method: string, route: string, query: unknown, body: unknown, params?: Record<string, string>): string {
  const named = params && Object.keys(params).length > 0 ? `\n${canonicalJson(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.toLowerCase()])))}` : "";
  return createHash("sha256")
    .update(`${method.toUpperCase()} ${route}\n${canonicalJson(query ?? {})}\n${canonicalJson(body ?? null)}${named}`)
    .digest("hex");
}
