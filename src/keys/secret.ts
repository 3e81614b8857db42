import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import type { Mode } from "../db/schema.js";

/**
 * API key format: `sk_<mode>_` + 43 base62 characters (32 random bytes) + a 6-character base62
 * CRC32 checksum of everything before it, GitHub-style: scanners can spot leaked keys, and a
 * mistyped or made-up key is refused without touching the database. Only SHA-256(key) is stored;
 * the key has 256 bits of entropy, so a slow hash would add latency and no safety.
 */
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_RE = /^sk_(live|test)_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

function base62(n: bigint, width: number): string {
  let out = "";
  let v = n;
  while (out.length < width) {
    out = ALPHABET[Number(v % 62n)] + out;
    v /= 62n;
  }
  return out;
}

function checksum(body: string): string {
  return base62(BigInt(crc32(body)), 6);
}

export function generateKey(mode: Mode): string {
  const random = base62(BigInt(`0x${randomBytes(32).toString("hex")}`), 43);
  const body = `sk_${mode}_${random}`;
  return body + checksum(body);
}

export interface ParsedKey {
  mode: Mode;
  hash: string;
}

/** The key's mode and hash, or null when it is not a well-formed key with a valid checksum. */
export function parseKey(key: string): ParsedKey | null {
  const m = KEY_RE.exec(key);
  if (!m) return null;
  const body = key.slice(0, key.length - 6);
  if (!safeEqual(checksum(body), key.slice(-6))) return null;
  return { mode: m[1] as Mode, hash: hashKey(key) };
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Constant-time string comparison (length is not secret here: both sides are fixed-size). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** What a listing shows of a key: enough to tell keys apart, never enough to use one. */
export function keyPrefix(key: string): string {
  return `${key.slice(0, 12)}…`;
}
