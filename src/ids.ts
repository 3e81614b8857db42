import { randomFillSync } from "node:crypto";

/**
 * Resource ids are UUIDv7 (api.md §1: "Ids are UUIDs; use time-ordered UUIDv7"), so ids sort by
 * creation time and make exact pagination cursors and FIFO queue keys. Within one millisecond a
 * 12-bit counter in `rand_a` keeps ids of this process strictly increasing (RFC 9562 §6.2,
 * method 1); a clock that steps back reuses the last timestamp rather than going backwards.
 *
 * Two generators keep their own order: `uuidv7` for ids minted from the injected clock (resources,
 * queue keys, lease tokens), `wallClockUuidv7` for ids that only need to be unique and read off the
 * wall clock (request ids, storage keys) — so those never push the first one's timestamps ahead
 * of its clock (a lease token's time is when its attempt began).
 */

// Entropy is drawn 4 KiB at a time: one getrandom() call per 256 ids instead of one per id
// (ids are minted on every request).
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function random16(): Buffer {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  poolOffset += 16;
  return out;
}

function uuidv7Generator(): (nowMs?: number) => string {
  let lastMs = 0;
  let counter = 0;
  return (nowMs = Date.now()) => {
  let ms = Math.max(Math.floor(nowMs), lastMs);
  if (ms === lastMs) {
    counter++;
    if (counter > 0xfff) {
      ms = lastMs + 1;
      counter = 0;
    }
  } else {
    counter = 0;
  }
  lastMs = ms;
  const b = random16();
  let t = ms;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = 0x70 | (counter >> 8); // version 7 + counter high bits
  b[7] = counter & 0xff;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
}

export const uuidv7 = uuidv7Generator();
export const wallClockUuidv7 = uuidv7Generator();

export function requestId(): string {
  return `req_${wallClockUuidv7().replaceAll("-", "")}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** The millisecond timestamp a uuidv7 was made at (its first 48 bits); null for anything else. */
export function timeOfUuidv7(id: string | null): number | null {
  if (id?.[14] !== "7") return null;
  const ms = Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);
  return Number.isFinite(ms) ? ms : null;
}
