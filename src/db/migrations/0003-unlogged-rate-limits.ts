import { type Kysely, PostgresAdapter, sql } from "kysely";

// Rate-limit state is rebuilt by the next requests: on PostgreSQL it needs no WAL and no fsync
// per request. Losing it in a crash only resets the limits.
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`alter table rate_limits set unlogged`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) await sql`alter table rate_limits set logged`.execute(db);
}
