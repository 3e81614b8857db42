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

  async take(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    // Read and write under one row lock so concurrent processes never both spend the last token.
    return this.db.transaction(async (trx) => {
      if (this.db.dialect === "postgres") {
        await sql`insert into rate_limits (bucket, tat) values (${bucket}, ${now}) on conflict (bucket) do nothing`.execute(trx);
        const row = await trx.selectFrom("rate_limits").select("tat").where("bucket", "=", bucket).forUpdate().executeTakeFirstOrThrow();
        return this.apply(trx, bucket, row.tat, policy, now);
      }
      const row = await trx.selectFrom("rate_limits").select("tat").where("bucket", "=", bucket).executeTakeFirst();
      if (!row) await trx.insertInto("rate_limits").values({ bucket, tat: now }).execute();
      return this.apply(trx, bucket, row?.tat, policy, now);
    });
  }

  async peek(bucket: string, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    const row = await this.db.kysely.selectFrom("rate_limits").select("tat").where("bucket", "=", bucket).executeTakeFirst();
    return gcra(row?.tat, now, policy);
  }

  private async apply(trx: Db["kysely"], bucket: string, tat: number | undefined, policy: GcraPolicy, now: number): Promise<GcraDecision> {
    const d = gcra(tat, now, policy);
    if (d.allowed) await trx.updateTable("rate_limits").set({ tat: d.tat }).where("bucket", "=", bucket).execute();
    return d;
  }
}
