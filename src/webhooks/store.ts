import type { Tx } from "../db/client.js";
import type { WebhookDeliveriesTable, WebhookEndpointsTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { type Cursor, page } from "../http/pagination.js";
import type { Scope } from "../messages/store.js";
import type { Webhook, WebhookDelivery } from "./schemas.js";

/** The endpoint as the API shows it: never its secrets (the create and rotate answers add `secret`). */
export function toWebhook(r: WebhookEndpointsTable): Webhook {
  return {
    id: r.id,
    url: r.url,
    events: eventList(r.events),
    enabled: r.enabled === 1,
    disabled_reason: r.disabled_reason,
    livemode: r.mode === "live",
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** The stored filter form: null for every type, else ",a,b," (deduplicated, in the given order). */
export function eventFilter(types: readonly string[] | null | undefined): string | null {
  if (!types) return null;
  return `,${[...new Set(types)].join(",")},`;
}

export function eventList(filter: string | null): string[] | null {
  return filter === null ? null : filter.split(",").filter(Boolean);
}

export async function getEndpointRow(db: Tx, scope: Scope, id: string): Promise<WebhookEndpointsTable> {
  const row = await db
    .selectFrom("webhook_endpoints")
    .selectAll()
    .where("id", "=", id.toLowerCase())
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .executeTakeFirst();
  if (!row) throw new ApiError("not_found", "No such webhook.");
  return row;
}

export async function countEndpoints(db: Tx, scope: Scope): Promise<number> {
  const r = await db
    .selectFrom("webhook_endpoints")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Newest first, by (created_at, id), like every list. */
export async function listEndpoints(db: Tx, scope: Scope, cursor: Cursor, limit: number) {
  let q = db.selectFrom("webhook_endpoints").selectAll().where("account_id", "=", scope.accountId).where("mode", "=", scope.mode);
  if (cursor) q = q.where((eb) => (cursor.id === null ? eb("created_at", "<", cursor.time) : eb.or([eb("created_at", "<", cursor.time), eb.and([eb("created_at", "=", cursor.time), eb("id", "<", cursor.id)])])));
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
  const { items, hasMore } = page(rows, limit);
  return { items: items.map(toWebhook), hasMore };
}

/** The delivery as the API shows it; an attempt in flight has no planned next attempt yet. */
export function toDelivery(r: WebhookDeliveriesTable): WebhookDelivery {
  return {
    id: r.id,
    webhook_id: r.endpoint_id,
    event_id: r.event_id,
    event_type: r.event_type,
    status: r.status,
    attempts: r.attempts,
    last_status_code: r.last_status_code,
    last_error: r.last_error,
    last_attempt_at: r.last_attempt_at,
    next_attempt_at: r.status === "pending" && r.next_attempt_at !== null ? new Date(r.next_attempt_at).toISOString() : null,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

export async function getDeliveryRow(db: Tx, endpointId: string, id: string): Promise<WebhookDeliveriesTable> {
  const row = await db.selectFrom("webhook_deliveries").selectAll().where("id", "=", id.toLowerCase()).where("endpoint_id", "=", endpointId).executeTakeFirst();
  if (!row) throw new ApiError("not_found", "No such delivery.");
  return row;
}

export async function listDeliveries(db: Tx, endpointId: string, status: WebhookDeliveriesTable["status"] | undefined, cursor: Cursor, limit: number) {
  let q = db.selectFrom("webhook_deliveries").selectAll().where("endpoint_id", "=", endpointId);
  if (status) q = q.where("status", "=", status);
  if (cursor) q = q.where((eb) => (cursor.id === null ? eb("created_at", "<", cursor.time) : eb.or([eb("created_at", "<", cursor.time), eb.and([eb("created_at", "=", cursor.time), eb("id", "<", cursor.id)])])));
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
  const { items, hasMore } = page(rows, limit);
  return { items: items.map(toDelivery), hasMore };
}
