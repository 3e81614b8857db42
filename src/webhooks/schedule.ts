/**
 * The retry schedule (reliability.md WH-R4, the Standard Webhooks example): the delay before each
 * attempt, counted from the previous one's failure. Ten attempts over about 75.6 hours.
 */
export const RETRY_DELAYS_MS = [0, 5_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 5 * 3_600_000, 10 * 3_600_000, 14 * 3_600_000, 20 * 3_600_000, 24 * 3_600_000] as const;

export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length;

/** Each delay is spread by ±20 %, so receivers that failed together are not retried together. */
export const JITTER = 0.2;

/** An endpoint whose every attempt failed for this long (since its first failure) is disabled (WH-R5). */
export const DISABLE_AFTER_MS = 5 * 24 * 3_600_000;

/** Most of a response body kept for the delivery log; the rest is never read (WH-T19). */
export const RESPONSE_SNIPPET_BYTES = 4_096;

/**
 * When to try again after the `attempts`-th attempt failed, in ms from now; null when the
 * schedule is exhausted. A `Retry-After` (from a 429 or 503) delays the retry to at least that
 * long, but never past the slot after the next one: a receiver cannot park a delivery for days.
 */
export function nextDelay(attempts: number, retryAfterMs: number | null, random: () => number = Math.random): number | null {
  const base = RETRY_DELAYS_MS[attempts];
  if (base === undefined) return null;
  let delay = Math.round(base * (1 - JITTER + 2 * JITTER * random()));
  if (retryAfterMs !== null) {
    const cap = RETRY_DELAYS_MS[attempts + 1] ?? base;
    delay = Math.max(delay, Math.min(retryAfterMs, cap));
  }
  return delay;
}

/** A Retry-After header (delta-seconds or an HTTP date) in ms from `nowMs`; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return null;
  const text = v.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}
