/**
 * GCRA (generic cell rate algorithm): one number of state per bucket, the theoretical arrival time
 * (TAT), and no background drip. Emission interval T = period / limit; burst tolerance
 * τ = (burst − 1)·T. Pure, so tests drive it with any clock.
 *
 * T is rounded up to a whole millisecond (60 s / 9 → 6,667 ms; at least 1 ms), so with integer
 * clock readings every value is an exact integer: no floating-point drift can deny the last
 * request of a full burst, the TAT fits the database's bigint column, and a key never gets more
 * than its limit.
 */
export interface GcraPolicy {
  /** Requests allowed per period. */
  limit: number;
  periodMs: number;
  /** Largest burst; defaults to `limit` (a full period's quota at once). */
  burst?: number;
}

export interface GcraDecision {
  allowed: boolean;
  /** The bucket's TAT after this request (unchanged when denied). */
  tat: number;
  /** Requests still allowed right now. */
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
  /** Milliseconds until a denied request would be allowed; 0 when allowed. */
  retryAfterMs: number;
  /** Milliseconds until at least one more request will be allowed (0 while some remain). */
  nextMs: number;
}

export function gcra(previousTat: number | undefined, now: number, policy: GcraPolicy): GcraDecision {
  const t = Math.max(1, Math.ceil(policy.periodMs / policy.limit));
  const tau = ((policy.burst ?? policy.limit) - 1) * t;
  const base = Math.max(previousTat ?? now, now);
  const next = base + t;
  const wait = next - now;
  if (wait > tau + t) {
    const retryAfterMs = wait - tau - t;
    return { allowed: false, tat: base, remaining: 0, resetMs: base - now, retryAfterMs, nextMs: retryAfterMs };
  }
  return {
    allowed: true,
    tat: next,
    remaining: Math.max(0, Math.floor((tau + t - wait) / t)),
    resetMs: wait,
    retryAfterMs: 0,
    nextMs: Math.max(0, next - now - tau),
  };
}
