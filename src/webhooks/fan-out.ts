import { CompiledQuery, PostgresAdapter } from "kysely";
import type { Tx } from "../db/client.js";
import type { EventsTable } from "../db/schema.js";

/**
 * The webhook outbox. Writes event rows and, in the same statement or transaction, one delivery
 * row for every event and every enabled endpoint of the event's account and mode that subscribes
 * to its type. Called by emitEvents inside the transaction of the change the events report, so a
 * delivery exists exactly when its event does: nothing to lose across a crash, nothing to send
 * for a change that was rolled back.
 *
 * The fan-out is one set-based INSERT … SELECT: an account without endpoints costs one index
 * probe per event and nothing else (the messaging pipeline emits thousands of events a second).
 * On PostgreSQL the event INSERT and the fan-out are one statement (a data-modifying CTE), so
 * webhooks add no round trip; on SQLite, in process, they are two. The SQL depends only on the
 * dialect and the number of events, and is cached.
 *
 * Delivery ids are UUIDv7 made in SQL: the event id's millisecond timestamp, version and
 * sub-millisecond counter (so an endpoint's deliveries sort exactly as their events), then random
 * bits from the database.
 */
export async function writeEvents(trx: Tx, rows: readonly EventsTable[], nowMs: number): Promise<void> {
  if (rows.length === 0) return;
  if (isPostgres(trx)) {
    const params: unknown[] = [nowMs];
    for (const r of rows) params.push(r.id, r.account_id, r.mode, r.type, r.data, r.created_at);
    await trx.executeQuery(CompiledQuery.raw(sqlFor("pg", rows.length), params));
    return;
  }
  await trx.insertInto("events").values(rows).execute();
  await trx.executeQuery(CompiledQuery.raw(sqlFor("sqlite", rows.length), [nowMs, ...rows.map((r) => r.id)]));
}

const dialectOf = new WeakMap<object, boolean>();

function isPostgres(trx: Tx): boolean {
  const adapter = trx.getExecutor().adapter;
  let pg = dialectOf.get(adapter);
  if (pg === undefined) {
    pg = adapter instanceof PostgresAdapter;
    dialectOf.set(adapter, pg);
  }
  return pg;
}

const COLUMNS = "id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, created_at, updated_at";
const texts = new Map<string, string>();

function sqlFor(dialect: "pg" | "sqlite", n: number): string {
  const key = `${dialect}:${n}`;
  let text = texts.get(key);
  if (text) return text;
  text = dialect === "pg" ? pgSql(n) : sqliteSql(n);
  // Calls carry 1 to a batch of events: a bounded set of texts.
  if (texts.size < 2_000) texts.set(key, text);
  return text;
}

/** `$1` is now (ms); then six values per event. */
function pgSql(n: number): string {
  const values = Array.from({ length: n }, (_, i) => {
    const b = 2 + i * 6;
    return `($${b}, $${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5})`;
  }).join(", ");
  // "tttttttt-tttt-7ccc" from the event id (time and counter), then "-Vrrr-rrrrrrrrrrrr" from a
  // random UUID (V = the RFC 9562 variant).
  return `with e as (
  insert into events (id, account_id, mode, type, data, created_at) values ${values}
  returning id, account_id, mode, type, created_at
)
insert into webhook_deliveries (${COLUMNS})
select substr(e.id, 1, 18) || substr(gen_random_uuid()::text, 19), w.id, e.id, e.type, 'pending', 0, $1::bigint, e.created_at, e.created_at
from e
join webhook_endpoints w on w.account_id = e.account_id and w.mode = e.mode
where w.enabled = 1 and (w.events is null or strpos(w.events, ',' || e.type || ',') > 0)`;
}

/** `?` 1 is now (ms); then the event ids (their rows were just inserted). */
function sqliteSql(n: number): string {
  const ids = Array.from({ length: n }, () => "?").join(", ");
  const newId = "substr(e.id, 1, 18) || '-' || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))";
  return `insert into webhook_deliveries (${COLUMNS})
select ${newId}, w.id, e.id, e.type, 'pending', 0, ?, e.created_at, e.created_at
from events e
join webhook_endpoints w on w.account_id = e.account_id and w.mode = e.mode
where e.id in (${ids}) and w.enabled = 1 and (w.events is null or instr(w.events, ',' || e.type || ',') > 0)`;
}
