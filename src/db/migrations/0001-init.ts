import { type Kysely, sql } from "kysely";

// Written with Kysely's schema builder so the same migration runs on SQLite and PostgreSQL.
// Types are kept to the common ground: text, integer, bigint.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("accounts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("active", "integer", (c) => c.notNull().defaultTo(1))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("api_keys")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
    .addColumn("mode", "text", (c) => c.notNull().check(modeCheck()))
    .addColumn("key_hash", "text", (c) => c.notNull().unique())
    .addColumn("key_prefix", "text", (c) => c.notNull())
    .addColumn("rate_limit", "integer")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text")
    .execute();
  await db.schema.createIndex("api_keys_account").on("api_keys").columns(["account_id", "created_at"]).execute();

  await db.schema
    .createTable("numbers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
    .addColumn("handle", "text", (c) => c.notNull().unique())
    .addColumn("channels", "text", (c) => c.notNull())
    .addColumn("label", "text")
    .addColumn("backend", "text", (c) => c.notNull())
    .addColumn("backend_config", "text", (c) => c.notNull().defaultTo("{}"))
    .addColumn("pace_per_minute", "integer")
    .addColumn("status", "text", (c) => c.notNull().defaultTo("online"))
    .addColumn("test_status", "text", (c) => c.notNull().defaultTo("online"))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("numbers_account").on("numbers").columns(["account_id", "handle"]).execute();

  await db.schema
    .createTable("idempotency_keys")
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull().check(modeCheck()))
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("method", "text", (c) => c.notNull())
    .addColumn("path", "text", (c) => c.notNull())
    .addColumn("fingerprint", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("locked_at", "text")
    .addColumn("resource_type", "text")
    .addColumn("resource_id", "text")
    .addColumn("response_status", "integer")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("idempotency_keys_pk", ["account_id", "mode", "key"])
    .execute();
  await db.schema.createIndex("idempotency_keys_created_at").on("idempotency_keys").column("created_at").execute();

  await db.schema
    .createTable("rate_limits")
    .addColumn("bucket", "text", (c) => c.primaryKey())
    .addColumn("tat", "bigint", (c) => c.notNull())
    .execute();
}

// A raw check keeps the allowed modes in the schema of both databases.
const modeCheck = () => sql<boolean>`mode in ('live', 'test')`;

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ["rate_limits", "idempotency_keys", "numbers", "api_keys", "accounts"]) {
    await db.schema.dropTable(t).execute();
  }
}
