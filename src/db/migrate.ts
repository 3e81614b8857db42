import { type Kysely, type Migration, sql } from "kysely";
import type { Database } from "./schema.js";
import * as m0001 from "./migrations/0001-init.js";
import * as m0002 from "./migrations/0002-messaging.js";
import * as m0003 from "./migrations/0003-unlogged-rate-limits.js";
import * as m0004 from "./migrations/0004-webhooks.js";
import * as m0005 from "./migrations/0005-attachments.js";
import * as m0006 from "./migrations/0006-groups.js";
import * as m0007 from "./migrations/0007-webhook-endpoint-due.js";
import * as m0008 from "./migrations/0008-device-links.js";
import * as m0009 from "./migrations/0009-daily-send-limit.js";

// Migrations are imported statically (not read from a folder at run time) so the compiled
// server and the tests see exactly the same list, in order.
const migrations: [string, Migration][] = [
  ["0001-init", m0001],
  ["0002-messaging", m0002],
  ["0003-unlogged-rate-limits", m0003],
  ["0004-webhooks", m0004],
  ["0005-attachments", m0005],
  ["0006-groups", m0006],
  ["0007-webhook-endpoint-due", m0007],
  ["0008-device-links", m0008],
  ["0009-daily-send-limit", m0009],
];

/**
 * Applies pending migrations, each in its own transaction, recorded in `schema_migrations`.
 *
 * Not Kysely's Migrator: it introspects the tables of every schema of the database, which fails
 * when another process drops a schema at that moment (parallel test runs each own one) and can
 * mistake another schema's migration table for ours. Here everything stays in the current schema.
 * Concurrent starters serialise on a PostgreSQL advisory lock, or on SQLite's write lock.
 */
export async function migrateToLatest(db: Kysely<Database>, dialect: "sqlite" | "postgres"): Promise<void> {
  const anyDb = db as unknown as Kysely<{ schema_migrations: { name: string; applied_at: string } }>;
  await sql`create table if not exists schema_migrations (name text primary key, applied_at text not null)`.execute(db);
  await db.connection().execute(async (conn) => {
    if (dialect === "postgres") await sql`select pg_advisory_lock(hashtext(current_schema() || '.msgbubbles_migrations'))`.execute(conn);
    try {
      for (const [name, migration] of migrations) {
        await conn.transaction().execute(async (trx) => {
          const done = await (trx as unknown as typeof anyDb).selectFrom("schema_migrations").select("name").where("name", "=", name).executeTakeFirst();
          if (done) return;
          try {
            await migration.up(trx);
          } catch (err) {
            throw new Error(`migration ${name} failed: ${err instanceof Error ? err.message : String(err)}`);
          }
          await (trx as unknown as typeof anyDb).insertInto("schema_migrations").values({ name, applied_at: new Date().toISOString() }).execute();
        });
      }
    } finally {
      if (dialect === "postgres") await sql`select pg_advisory_unlock(hashtext(current_schema() || '.msgbubbles_migrations'))`.execute(conn);
    }
  });
}
