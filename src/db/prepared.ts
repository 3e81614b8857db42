import type { Compilable, CompiledQuery, DialectAdapter, Kysely, QueryResult } from "kysely";
import type { Database } from "./schema.js";

/**
 * A hot query compiled once per SQL dialect instead of on every call: Kysely's builder and
 * compiler cost two to three times more than running a small indexed query. `build` receives
 * stand-in values; the compiled SQL is reused with the real values in their place (same order as
 * in the query; checked on first use). The cache is keyed by the dialect's adapter, which a transaction shares with its
 * database, so a query compiled outside a transaction is reused inside every later one.
 */
export function preparedQuery<R, P extends unknown[]>(build: (db: Kysely<Database>, ...params: P) => Compilable<R>, standIns: P) {
  const compiled = new WeakMap<DialectAdapter, CompiledQuery<R>>();
  return async (db: Kysely<Database>, ...params: P): Promise<QueryResult<R>> => {
    const executor = db.getExecutor();
    let q = compiled.get(executor.adapter);
    if (!q) {
      q = build(db, ...standIns).compile();
      // The SQL takes its values in the order they appear in it; distinct stand-ins in that same
      // order prove the callers' positional values land where they belong.
      if (q.parameters.length !== standIns.length || q.parameters.some((v, i) => v !== standIns[i])) {
        throw new Error(`prepared query: stand-ins ${JSON.stringify(standIns)} do not match the compiled parameters ${JSON.stringify(q.parameters)}`);
      }
      compiled.set(executor.adapter, q);
    }
    return db.executeQuery<R>({ ...q, parameters: params });
  };
}

/** preparedQuery for reads: the rows. */
export function prepared<R, P extends unknown[]>(build: (db: Kysely<Database>, ...params: P) => Compilable<R>, standIns: P) {
  const run = preparedQuery(build, standIns);
  return async (db: Kysely<Database>, ...params: P): Promise<R[]> => (await run(db, ...params)).rows;
}

/** Rows a prepared write changed (SQLite and PostgreSQL both report it). */
export const changed = (r: QueryResult<unknown>): number => Number(r.numAffectedRows ?? 0n);

/**
 * A one-row INSERT of `columns`, compiled once: the statement text never varies (a multi-row
 * insert's does with its row count, and every new text costs SQLite a prepare).
 */
export function preparedInsert<T extends keyof Database & string>(table: T, columns: readonly (keyof Database[T] & string)[]) {
  const run = preparedQuery<unknown, unknown[]>(
    (db, ...values: unknown[]) => db.insertInto(table).values(Object.fromEntries(columns.map((c, i) => [c, values[i]])) as never),
    columns.map((c) => `:${c}`),
  );
  return (db: Kysely<Database>, row: { [K in keyof Database[T]]?: unknown }): Promise<QueryResult<unknown>> =>
    run(db, ...columns.map((c) => (row as Record<string, unknown>)[c] ?? null));
}
