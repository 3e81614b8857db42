import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { WebhookDisabledReason, WebhookEndpointsTable } from "../db/schema.js";
import { emitEvents } from "../events/catalog.js";
import { toWebhook } from "./store.js";

/**
 * Disabling and re-enabling an endpoint, shared by PATCH and the delivery worker (410, five days
 * of failures). A disabled endpoint gets no new deliveries (the fan-out skips it) and its pending
 * ones are paused (no due time), so they neither clog the claim index nor get lost: re-enabling
 * sends them at once.
 */

/**
 * Disables an enabled endpoint; false when it already was (another worker got there first).
 * Writes `webhook.disabled` to the account's other endpoints of the mode (this one is disabled
 * by then, so the fan-out skips it): the notification that an integration stopped receiving.
 */
export async function disableEndpoint(trx: Tx, clock: Clock, row: WebhookEndpointsTable, reason: WebhookDisabledReason): Promise<boolean> {
  const now = iso(clock.now());
  const res = await trx
    .updateTable("webhook_endpoints")
    .set({ enabled: 0, disabled_reason: reason, updated_at: now })
    .where("id", "=", row.id)
    .where("enabled", "=", 1)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return false;
  await trx.updateTable("webhook_deliveries").set({ next_attempt_at: null, updated_at: now }).where("endpoint_id", "=", row.id).where("status", "=", "pending").execute();
  const disabled = { ...row, enabled: 0, disabled_reason: reason, updated_at: now };
  await emitEvents(trx, clock, [{ accountId: row.account_id, mode: row.mode, type: "webhook.disabled", data: toWebhook(disabled) }]);
  return true;
}

/** Re-enables a disabled endpoint: the failure clock starts afresh and paused deliveries are due now. */
export async function enableEndpoint(trx: Tx, clock: Clock, row: WebhookEndpointsTable): Promise<void> {
  const now = clock.now();
  await trx
    .updateTable("webhook_endpoints")
    .set({ enabled: 1, disabled_reason: null, failing_since: null, updated_at: iso(now) })
    .where("id", "=", row.id)
    .execute();
  await trx
    .updateTable("webhook_deliveries")
    .set({ next_attempt_at: now, updated_at: iso(now) })
    .where("endpoint_id", "=", row.id)
    .where("status", "=", "pending")
    .where("next_attempt_at", "is", null)
    .execute();
}
