import type { FastifyBaseLogger } from "fastify";
import type { Clock } from "./clock.js";
import type { Config } from "./config.js";
import type { Db } from "./db/client.js";
import { expireAttachments } from "./attachments/expiry.js";
import { storageFromConfig } from "./attachments/storage.js";
import { purgeOldDeliveries } from "./webhooks/retention.js";

/**
 * Background housekeeping: forgets idempotency keys past their TTL and rate-limit buckets that
 * are full again, and removes unclaimed attachments past their expiry (rows and bytes). Each pass
 * is one indexed delete per table (attachments in batches); a failed pass is logged and retried
 * on the next tick.
 */
export async function runMaintenance(db: Db, clock: Clock, config: Config): Promise<{ idempotencyKeys: number; rateLimits: number; attachments: number; webhookDeliveries: number }> {
  const now = clock.now();
  const cutoff = new Date(now - config.IDEMPOTENCY_TTL_HOURS * 3_600_000).toISOString();
  const keys = await db.kysely.deleteFrom("idempotency_keys").where("created_at", "<", cutoff).executeTakeFirst();
  const limits = await db.kysely.deleteFrom("rate_limits").where("tat", "<", now).executeTakeFirst();
  const attachments = await expireAttachments(db, clock, storageFromConfig(config));
  // Finished webhook deliveries older than 30 days (webhooks/retention.ts).
  const webhookDeliveries = await purgeOldDeliveries(db, clock);
  return { idempotencyKeys: Number(keys.numDeletedRows), rateLimits: Number(limits.numDeletedRows), attachments, webhookDeliveries };
}

export function startMaintenance(deps: { db: Db; clock: Clock; config: Config; log: FastifyBaseLogger }, everyMs = 10 * 60_000): { stop(): void } {
  const timer = setInterval(() => {
    runMaintenance(deps.db, deps.clock, deps.config).catch((err: unknown) => deps.log.warn({ err }, "maintenance pass failed"));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
