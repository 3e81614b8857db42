import type { Kysely } from "kysely";

// An endpoint's own due deliveries, oldest first: the webhook claim looks there for endpoints
// whose rows sit behind a saturated endpoint's backlog on the global due index.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex("webhook_deliveries_endpoint_due").on("webhook_deliveries").columns(["endpoint_id", "next_attempt_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("webhook_deliveries_endpoint_due").execute();
}
