import type { FastifyReply, FastifyRequest } from "fastify";
import type { Clock } from "../clock.js";
import type { Db } from "../db/client.js";
import type { Mode } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { findKeyOwner, type KeyOwner } from "../keys/store.js";
import { VersionedCache } from "../db/versioned-cache.js";
import { type ParsedKey, parseKey, safeEqual } from "../keys/secret.js";
import type { GcraDecision, GcraPolicy } from "./gcra.js";
import type { RateLimiter } from "./rate-limiter.js";

export interface AuthContext {
  accountId: string;
  mode: Mode;
  keyId: string;
  /** The account's own daily send cap (null: the server's DAILY_SEND_LIMIT). */
  dailySendLimit: number | null;
}

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the auth hook on every /v1 route; routes scope every query by it. */
    auth: AuthContext;
  }
}

export interface AuthDeps {
  db: Db;
  clock: Clock;
  limiter: RateLimiter;
  /** Default requests per minute per key. */
  rateLimitPerMinute: number;
  /** Failed authentications per client IP per minute. */
  authFailuresPerMinute: number;
}

const MINUTE = 60_000;
const IP_LIMITED = "Too many failed authentication attempts from this address.";

/**
 * onRequest hook for /v1: the per-IP failed-auth limit, then the key (401/403), then the per-key
 * rate limit (429). It runs before the body is read, validated or claimed by idempotency, so
 * none of these answers can burn an Idempotency-Key (reliability.md IDEM-R4).
 */
export function authenticate(deps: AuthDeps) {
  const failPolicy: GcraPolicy = { limit: deps.authFailuresPerMinute, periodMs: MINUTE };
  // Exact, not stale: revalidated against the database's change token on every request, so a
  // revocation or deactivation (even by the CLI in another process) counts on the next request.
  const owners = new VersionedCache<KeyOwner | null>(deps.db);

  return async function authHook(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const now = deps.clock.now();
    const ipBucket = `authfail:${req.ip}`;
    const ipState = await deps.limiter.peek(ipBucket, failPolicy, now);
    if (!ipState.allowed) throw tooMany(ipState, IP_LIMITED);

    const parsed = parseKnownKey(bearerToken(req.headers.authorization) ?? "");
    const owner = parsed ? await owners.get(parsed.hash, () => findKeyOwner(deps.db.kysely, parsed.hash)) : null;
    if (!parsed || !owner || !safeEqual(owner.keyHash, parsed.hash) || owner.revoked) {
      // Concurrent attempts all pass the peek above; the take is what counts, so a failure that
      // finds the budget already spent gets the 429 a later attempt would get.
      const spent = await deps.limiter.take(ipBucket, failPolicy, now);
      if (!spent.allowed) throw tooMany(spent, IP_LIMITED);
      throw new ApiError("unauthorized");
    }
    if (!owner.accountActive) throw new ApiError("forbidden", "This account is inactive.");

    const limit = owner.rateLimit ?? deps.rateLimitPerMinute;
    const d = await deps.limiter.take(`key:${owner.keyId}`, { limit, periodMs: MINUTE }, now);
    setRateLimitHeaders(reply, limit, d, now);
    if (!d.allowed) throw tooMany(d);
    req.auth = { accountId: owner.accountId, mode: owner.mode, keyId: owner.keyId, dailySendLimit: owner.dailySendLimit };
  };
}

// Checking a key's checksum and hashing it cost more than the rest of authentication; well-formed
// keys seen recently are remembered (bounded; only keys that passed the checksum, so garbage
// cannot evict them). The hash still goes through the database check on every request.
const knownKeys = new Map<string, ParsedKey>();

function parseKnownKey(token: string): ParsedKey | null {
  const hit = knownKeys.get(token);
  if (hit) return hit;
  const parsed = parseKey(token);
  if (parsed) {
    if (knownKeys.size >= 10_000) knownKeys.clear();
    knownKeys.set(token, parsed);
  }
  return parsed;
}

/** The key from `Authorization: Bearer <key>` or `Basic base64(<key>:)`; never from the query. */
function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const parts = header.trim().split(/\s+/);
  if (parts.length !== 2) return null;
  const [scheme, value] = parts as [string, string];
  if (scheme.toLowerCase() === "bearer") return value;
  if (scheme.toLowerCase() === "basic") {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    return decoded.split(":")[0] ?? null;
  }
  return null;
}

/** The draft's `t`: while quota remains, seconds until it is whole again; at zero, until the next unit. */
function secondsUntilMore(d: GcraDecision): number {
  return Math.max(1, Math.ceil((d.remaining > 0 ? d.resetMs : d.nextMs) / 1000));
}

/** IETF draft-10 RateLimit / RateLimit-Policy plus the GitHub-style X-RateLimit-* trio. */
function setRateLimitHeaders(reply: FastifyReply, limit: number, d: GcraDecision, now: number): void {
  const t = secondsUntilMore(d);
  reply.header("ratelimit-policy", `"default";q=${limit};w=60`);
  reply.header("ratelimit", `"default";r=${d.remaining};t=${t}`);
  reply.header("x-ratelimit-limit", String(limit));
  reply.header("x-ratelimit-remaining", String(d.remaining));
  reply.header("x-ratelimit-reset", String(Math.ceil((now + t * 1000) / 1000)));
}

function tooMany(d: GcraDecision, message?: string): ApiError {
  return new ApiError("rate_limited", message, { "retry-after": String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))) });
}
