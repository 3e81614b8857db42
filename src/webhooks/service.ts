import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { WebhookDeliveriesTable, WebhookEndpointsTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import type { EventType } from "../events/catalog.js";
import { uuidv7 } from "../ids.js";
import type { Scope } from "../messages/store.js";
import { disableEndpoint, enableEndpoint } from "./endpoint-state.js";
import { newWebhookSecret } from "./signature.js";
import { countEndpoints, eventFilter, getDeliveryRow, getEndpointRow, toWebhook } from "./store.js";

/** Endpoints per account and mode: enough for any integration, and a bound on fan-out (OWASP API4). */
export const MAX_ENDPOINTS = 50;

/** How long the secret replaced by a rotation keeps signing (WH-R1). */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

/** `url` has passed checkWebhookUrl (before the transaction: DNS must not hold the write lock). */
export async function createEndpoint(trx: Tx, clock: Clock, scope: Scope, url: string, events: readonly EventType[] | undefined): Promise<WebhookEndpointsTable> {
  if ((await countEndpoints(trx, scope)) >= MAX_ENDPOINTS) {
    throw new ApiError("conflict", `An account has at most ${MAX_ENDPOINTS} webhook endpoints per mode; delete one first.`);
  }
  const now = clock.now();
  const row: WebhookEndpointsTable = {
    id: uuidv7(now),
    account_id: scope.accountId,
    mode: scope.mode,
    url,
    events: eventFilter(events),
    enabled: 1,
    disabled_reason: null,
    secret: newWebhookSecret(),
    previous_secret: null,
    previous_secret_until: null,
    failing_since: null,
    created_at: iso(now),
    updated_at: iso(now),
  };
  await trx.insertInto("webhook_endpoints").values(row).execute();
  return row;
}

export interface EndpointChanges {
  /** Already checked. */
  url?: string | undefined;
  events?: readonly EventType[] | null | undefined;
  enabled?: boolean | undefined;
}

export async function updateEndpoint(trx: Tx, clock: Clock, scope: Scope, id: string, changes: EndpointChanges): Promise<WebhookEndpointsTable> {
  const row = await getEndpointRow(trx, scope, id);
  const set: Partial<WebhookEndpointsTable> = {};
  if (changes.url !== undefined) set.url = changes.url;
  if (changes.events !== undefined) set.events = eventFilter(changes.events);
  if (Object.keys(set).length > 0) {
    await trx.updateTable("webhook_endpoints").set({ ...set, updated_at: iso(clock.now()) }).where("id", "=", row.id).execute();
  }
  const updated = { ...row, ...set };
  if (changes.enabled === false && row.enabled === 1) await disableEndpoint(trx, clock, updated, "manual");
  if (changes.enabled === true && row.enabled === 0) await enableEndpoint(trx, clock, updated);
  return getEndpointRow(trx, scope, row.id);
}

/** Deletes the endpoint and its delivery log; an attempt in flight finds nothing to record. */
export async function deleteEndpoint(trx: Tx, scope: Scope, id: string): Promise<WebhookEndpointsTable> {
  const row = await getEndpointRow(trx, scope, id);
  // Endpoint before deliveries, the order every writer locks them in (no deadlock).
  await trx.deleteFrom("webhook_endpoints").where("id", "=", row.id).execute();
  await trx.deleteFrom("webhook_deliveries").where("endpoint_id", "=", row.id).execute();
  return row;
}

/** A new secret signs from now on; the one it replaces keeps signing beside it for 24 hours. */
export async function rotateSecret(trx: Tx, clock: Clock, scope: Scope, id: string): Promise<WebhookEndpointsTable> {
  const row = await getEndpointRow(trx, scope, id);
  const now = clock.now();
  const set = { secret: newWebhookSecret(), previous_secret: row.secret, previous_secret_until: now + ROTATION_OVERLAP_MS, updated_at: iso(now) };
  await trx.updateTable("webhook_endpoints").set(set).where("id", "=", row.id).execute();
  return { ...row, ...set };
}

function requireEnabled(row: WebhookEndpointsTable): void {
  if (row.enabled !== 1) throw new ApiError("conflict", "The webhook is disabled; enable it first (PATCH enabled: true).");
}

/**
 * A `webhook.test` event for this endpoint only: the event row and one delivery, written
 * directly (emitEvents would fan it out to every subscribed endpoint). The worker sends it.
 */
export async function queueTestEvent(trx: Tx, clock: Clock, scope: Scope, id: string): Promise<WebhookDeliveriesTable> {
  const row = await getEndpointRow(trx, scope, id);
  requireEnabled(row);
  const now = clock.now();
  const eventId = uuidv7(now);
  await trx
    .insertInto("events")
    .values({ id: eventId, account_id: row.account_id, mode: row.mode, type: "webhook.test" satisfies EventType, data: JSON.stringify(toWebhook(row)), created_at: iso(now) })
    .execute();
  const delivery: WebhookDeliveriesTable = {
    id: uuidv7(now),
    endpoint_id: row.id,
    event_id: eventId,
    event_type: "webhook.test",
    status: "pending",
    attempts: 0,
    next_attempt_at: now,
    lease_token: null,
    last_status_code: null,
    last_error: null,
    last_attempt_at: null,
    created_at: iso(now),
    updated_at: iso(now),
  };
  await trx.insertInto("webhook_deliveries").values(delivery).execute();
  return delivery;
}

/**
 * Redeliver now, whatever the delivery's state (delivered, failed, blocked or waiting for a
 * retry), except while an attempt is running. It keeps its event id, so a receiver that already
 * has the event recognises it by webhook-id.
 */
export async function retryDelivery(trx: Tx, clock: Clock, scope: Scope, id: string, deliveryId: string): Promise<WebhookDeliveriesTable> {
  const endpoint = await getEndpointRow(trx, scope, id);
  const row = await getDeliveryRow(trx, endpoint.id, deliveryId);
  requireEnabled(endpoint);
  if (row.status === "delivering") throw new ApiError("conflict", "An attempt of this delivery is running; retry once it has finished.");
  const now = clock.now();
  const set = { status: "pending" as const, next_attempt_at: now, lease_token: null, updated_at: iso(now) };
  const res = await trx.updateTable("webhook_deliveries").set(set).where("id", "=", row.id).where("status", "=", row.status).executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new ApiError("conflict", "The delivery changed meanwhile; retry.");
  return { ...row, ...set };
}
