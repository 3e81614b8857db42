/** Loose readers for request bodies, which arrive as untyped JSON. */
import { nest } from "./errors.js";
import type { Json } from "./types.js";

export const str = (v: unknown) => (typeof v === "string" ? v : undefined);
export const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});

export function need(body: Json, field: string): string {
  const v = str(body[field]);
  if (!v) throw nest(400, "Bad Request", [`${field} must be a string`]);
  return v;
}
