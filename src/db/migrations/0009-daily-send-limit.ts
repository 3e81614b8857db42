import type { Kysely } from "kysely";

// Per-account daily cap on sends (reliability.md API6, SEC-T19): an account's own limit (NULL:
// the server's DAILY_SEND_LIMIT; 0: none), and how many sends each account and mode was accepted
// on each UTC day — counted in the accept's own transaction, so a refused send counts nothing.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("accounts").addColumn("daily_send_limit", "integer").execute();
  await db.schema
    .createTable("daily_send_counts")
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id").onDelete("cascade"))
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("day", "text", (c) => c.notNull())
    .addColumn("count", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("daily_send_counts_pk", ["account_id", "mode", "day"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("daily_send_counts").execute();
  await db.schema.alterTable("accounts").dropColumn("daily_send_limit").execute();
}
