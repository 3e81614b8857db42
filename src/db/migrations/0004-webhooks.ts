import { type Kysely, sql } from "kysely";

// Webhooks: the endpoints an account registers, and one delivery row per (endpoint, event) — the
// queue the delivery worker claims from. Delivery rows are written by emitEvents in the same
// transaction as their event (the outbox), so nothing is lost across a crash.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("webhook_endpoints")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull().check(sql<boolean>`mode in ('live', 'test')`))
    .addColumn("url", "text", (c) => c.notNull())
    // NULL = every event type; else ",type,type," so the fan-out can match a type with one
    // substring test in SQL.
    .addColumn("events", "text")
    .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
    // manual | gone (the endpoint answered 410) | failing (5 days without a success)
    .addColumn("disabled_reason", "text")
    // Signing secrets must be stored as they are (an HMAC needs the key itself, not a hash).
    .addColumn("secret", "text", (c) => c.notNull())
    .addColumn("previous_secret", "text")
    .addColumn("previous_secret_until", "bigint")
    // First failure of the current run of failures (ms); NULL after any success.
    .addColumn("failing_since", "bigint")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  // Serves the list (newest first) and the fan-out's probe by (account, mode).
  await db.schema.createIndex("webhook_endpoints_account").on("webhook_endpoints").columns(["account_id", "mode", "created_at", "id"]).execute();

  await db.schema
    .createTable("webhook_deliveries")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("endpoint_id", "text", (c) => c.notNull())
    .addColumn("event_id", "text", (c) => c.notNull())
    .addColumn("event_type", "text", (c) => c.notNull())
    // pending | delivering | delivered | failed | blocked
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    // When the worker should next pick it up (ms): the next attempt while pending, the lease's
    // end while delivering (an expired lease is simply due again), NULL when nothing is planned
    // (terminal, or paused while its endpoint is disabled). Claims scan this index only.
    .addColumn("next_attempt_at", "bigint")
    .addColumn("lease_token", "text")
    .addColumn("last_status_code", "integer")
    .addColumn("last_error", "text")
    .addColumn("last_attempt_at", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("webhook_deliveries_event").on("webhook_deliveries").columns(["endpoint_id", "event_id"]).unique().execute();
  await db.schema.createIndex("webhook_deliveries_due").on("webhook_deliveries").column("next_attempt_at").execute();
  await db.schema.createIndex("webhook_deliveries_list").on("webhook_deliveries").columns(["endpoint_id", "created_at", "id"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ["webhook_deliveries", "webhook_endpoints"]) await db.schema.dropTable(t).execute();
}
