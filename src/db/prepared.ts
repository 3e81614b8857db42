import type { Compilable, CompiledQuery, Kysely } from "kysely";
import type { Database } from "./schema.js";

/**
 * A hot query compiled once per database instead of on every request: Kysely's builder and
 * compiler cost more than running a small indexed query. `build` receives stand-in values; the
 * compiled SQL is reused with the real values in their place (same order as in the query).
 */
export function prepared<R, P extends unknown[]>(build: (db: Kysely<Database>, ...params: P) => Compilable<R>, standIns: P) {
  const compiled = new WeakMap<Kysely<Database>, CompiledQuery<R>>();
  return async (db: Kysely<Database>, ...params: P): Promise<R[]> => {
    let q = compiled.get(db);
    if (!q) {
      q = build(db, ...standIns).compile();
      if (q.parameters.length !== params.length) throw new Error("prepared query: parameter count differs from its stand-ins");
      compiled.set(db, q);
    }
    return (await db.executeQuery<R>({ ...q, parameters: params })).rows;
  };
}
