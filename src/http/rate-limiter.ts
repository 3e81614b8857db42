import { sql } from "kysely";
import type { Db } from "../db/client.js";
import { type GcraDecision, type GcraPolicy, gcra } from "./gcra.js";

/**
 * Where GCRA state lives. In memory for the single-process SQLite default (exact, no I/O); in the
 * database for PostgreSQL, so every process of a cluster shares one budget per key.
 */
export interface RateLimiter {
  /** Takes one request from `bucket` if the policy allows it. */
  take(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision>;
  /** What `take` would decide now, without consuming anything. */
  peek(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision>;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly tats = new Map<string, number>();
  private lastSweep = 0;

  async take(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    this.sweep(now);
    const d = gcra(this.tats.get(bucket), now, policy);
    if (d.allowed) this.tats.set(bucket, d.tat);
    return d;
  }

  async peek(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    return gcra(this.tats.get(bucket), now, policy);
  }

  // A bucket whose TAT is in the past is the same as no bucket: drop it so memory stays bounded
  // by the number of recently active keys and IPs.
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000 && this.tats.size < 100_000) return;
    this.lastSweep = now;
    for (const [k, tat] of this.tats) if (tat <= now) this.tats.delete(k);
  }
}

export class DatabaseRateLimiter implements RateLimiter {
  constructor(private readonly db: Db) {}

  /**
   * One atomic statement: the upsert moves the TAT only when the request is allowed, so
   * concurrent processes can never both spend the last token, and an allowed request costs one
   * round trip. A denied one reads the TAT to say how long to wait.
   */
  async take(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    const t = Math.max(1, Math.ceil(policy.periodMs / policy.limit));
    const tau = ((policy.burst ?? policy.limit) - 1) * t;
    const max = this.db.dialect === "postgres" ? sql`greatest` : sql`max`;
    for (let attempt = 0; ; attempt++) {
      const { rows } = await sql<{ tat: number }>`
        insert into rate_limits (bucket, tat) values (${bucket}, ${now + t})
        on conflict (bucket) do update set tat = ${max}(rate_limits.tat, ${now}) + ${t}
          where ${max}(rate_limits.tat, ${now}) + ${t} - ${now} <= ${tau + t}
        returning tat`.execute(this.db.kysely);
      const row = rows[0];
      if (row) return gcra(Number(row.tat) - t, now, policy);
      const d = await this.peek(bucket, policy, now);
      // Denied by the upsert; if the bucket drained in between, try again rather than report a
      // token we did not take.
      if (!d.allowed || attempt >= 2) return { ...d, allowed: false, remaining: 0, retryAfterMs: Math.max(1, d.retryAfterMs) };
    }
  }

  async peek(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    const row = await this.db.kysely.selectFrom("rate_limits").select("tat").where("bucket", "=", bucket).executeTakeFirst();
    return gcra(row?.tat, now, policy);
  }

}
