import type { Kysely } from "kysely";

// Real device back-ends (BlueBubbles, WAHA). A number may be served by two of them (iMessage/SMS
// through a Mac, WhatsApp through WAHA), so the device state is kept per (number, back-end):
// - `status`: the last health check's answer; the number is online while any of its back-ends is.
// - `cursor`: the reconciliation poller's "last seen" time on the device (epoch ms).
// - `subscribed_url`: the ingest URL the device was last told to post its events to.
// `offline_channels` on the number lists the channels whose back-end is down, so a send forced
// onto one is refused at accept time without asking the device.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("device_links")
    .addColumn("number_id", "text", (c) => c.notNull().references("numbers.id").onDelete("cascade"))
    .addColumn("backend", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().defaultTo("online"))
    .addColumn("cursor", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("subscribed_url", "text")
    .addColumn("checked_at", "bigint", (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint("device_links_pk", ["number_id", "backend"])
    .execute();
  await db.schema.alterTable("numbers").addColumn("offline_channels", "text", (c) => c.notNull().defaultTo("")).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("numbers").dropColumn("offline_channels").execute();
  await db.schema.dropTable("device_links").execute();
}
