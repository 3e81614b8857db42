import { randomBytes } from "node:crypto";

/**
 * Resource ids are UUIDv7 (api.md §1: "Ids are UUIDs; use time-ordered UUIDv7"), so ids sort by
 * creation time and make exact pagination cursors. Request ids carry the documented `req_` prefix.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const b = randomBytes(16);
  let ms = nowMs;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x70; // version 7
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function requestId(): string {
  return `req_${uuidv7().replaceAll("-", "")}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}
