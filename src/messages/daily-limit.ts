import type { Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { Mode } from "../db/schema.js";
import { ApiError } from "../errors.js";

const DAY_MS = 86_400_000;

/**
 * The per-account daily cap on sends (reliability.md API6, SEC-T19): counts this send into its
 * account's UTC day, in the accept's transaction, and refuses it (rolling the count back with it)
 * beyond the account's limit — its own, or the server's DAILY_SEND_LIMIT; 0 means none.
 */
export async function countDailySend(trx: Tx, clock: Clock, scope: { accountId: string; mode: Mode }, accountLimit: number | null, serverLimit: number): Promise<void> {
  const limit = accountLimit ?? serverLimit;
  if (limit <= 0) return;
  const now = clock.now();
  const day = new Date(now).toISOString().slice(0, 10);
  const row = await trx
    .insertInto("daily_send_counts")
    .values({ account_id: scope.accountId, mode: scope.mode, day, count: 1 })
    .onConflict((oc) => oc.columns(["account_id", "mode", "day"]).doUpdateSet((eb) => ({ count: eb("daily_send_counts.count", "+", 1) })))
    .returning("count")
    .executeTakeFirstOrThrow();
  if (row.count > limit) {
    const nextDay = Math.floor(now / DAY_MS) * DAY_MS + DAY_MS;
    throw new ApiError("daily_limit_exceeded", `This account may send ${limit} messages per day (UTC); the count starts again at ${new Date(nextDay).toISOString()}.`, {
      "retry-after": String(Math.ceil((nextDay - now) / 1000)),
    });
  }
}
