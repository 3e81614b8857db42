import { iso, type Clock } from "../clock.js";
import type { Db } from "../db/client.js";

/** Finished deliveries stay in the log, and can be retried by hand, for this long (WH-R4). */
export const DELIVERY_RETENTION_MS = 30 * 24 * 3_600_000;

/**
 * Forgets finished deliveries (delivered, failed, blocked) older than DELIVERY_RETENTION_MS;
 * pending ones stay, however old (a disabled endpoint's, waiting to be re-enabled). One delete per
 * endpoint, on the (endpoint_id, created_at) index, so the log's size never makes it a table scan.
 */
export async function purgeOldDeliveries(db: Db, clock: Clock): Promise<number> {
  const cutoff = iso(clock.now() - DELIVERY_RETENTION_MS);
  const endpoints = await db.kysely.selectFrom("webhook_endpoints").select("id").execute();
  let deleted = 0;
  for (const { id } of endpoints) {
    const res = await db.kysely
      .deleteFrom("webhook_deliveries")
      .where("endpoint_id", "=", id)
      .where("created_at", "<", cutoff)
      .where("status", "in", ["delivered", "failed", "blocked"])
      .executeTakeFirst();
    deleted += Number(res.numDeletedRows);
  }
  return deleted;
}
