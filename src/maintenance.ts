import type { FastifyBaseLogger } from "fastify";
import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import type { Db } from "./db/client.js";

/**
 * Background housekeeping: forgets idempotency keys past their TTL and rate-limit buckets that
 * are full again. Each pass is one indexed delete per table; a failed pass is logged and retried
 * on the next tick.
 */
export async function runMaintenance(db: Db, clock: Clock, config: Config): Promise<{ idempotencyKeys: number; rateLimits: number }> {
  const now = clock.now();
  const cutoff = new Date(now - config.IDEMPOTENCY_TTL_HOURS * 3_600_000).toISOString();
  const keys = await db.kysely.deleteFrom("idempotency_keys").where("created_at", "<", cutoff).executeTakeFirst();
  const limits = await db.kysely.deleteFrom("rate_limits").where("tat", "<", now).executeTakeFirst();
  return { idempotencyKeys: Number(keys.numDeletedRows), rateLimits: Number(limits.numDeletedRows) };
}

export function startMaintenance(deps: { db: Db; clock: Clock; config: Config; log: FastifyBaseLogger }, everyMs = 10 * 60_000): { stop(): void } {
  const timer = setInterval(() => {
    runMaintenance(deps.db, deps.clock, deps.config).catch((err: unknown) => deps.log.warn({ err }, "maintenance pass failed"));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
