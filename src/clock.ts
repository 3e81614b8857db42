/**
 * The one source of time. Pacing, rate limits, idempotency TTLs and timestamps read `clock.now()`,
 * so tests drive time with a ManualClock instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  private t: number;
  constructor(start = Date.parse("2026-06-11T18:21:04.000Z")) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/** ISO 8601 UTC with milliseconds, the only timestamp format on the wire and in storage. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
