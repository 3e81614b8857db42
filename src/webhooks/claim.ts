import { sql } from "kysely";
import type { Db } from "../db/client.js";
import type { Mode } from "../db/schema.js";
import { uuidv7 } from "../ids.js";
import type { StoredEvent } from "./payload.js";

/** A delivery leased to this worker, with what its attempt needs. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  /** Attempts including the one about to run. */
  attempts: number;
  leaseToken: string;
  /** When it was claimed (ms): the attempt's time. */
  claimedAt: number;
  url: string;
  /** The current secret, then the previous one while a rotation overlaps. */
  secrets: string[];
  /** null if the event row is missing (never expected: events are not deleted). */
  event: StoredEvent | null;
}

export interface ClaimLimits {
  /** Most deliveries to claim now (free global slots). */
  max: number;
  /** Most attempts in flight per endpoint. */
  perEndpoint: number;
  /** Attempts this process already has in flight, per endpoint id. */
  busy: ReadonlyMap<string, number>;
  leaseMs: number;
}

interface Candidate {
  id: string;
  endpoint_id: string;
}

/**
 * Leases the deliveries that are due: pending ones whose time has come and in-flight ones whose
 * lease ran out (a worker that crashed or hung; their due time is the lease's end). Oldest due
 * first, but at most `perEndpoint` per endpoint minus what this process already runs for it, so
 * a slow endpoint's backlog never fills the batch and other endpoints keep flowing.
 *
 * The lease (status `delivering`, a fresh token, due again at the lease's end) is committed before
 * any request is made. On PostgreSQL the rows are locked with SKIP LOCKED, so two processes never
 * claim the same delivery; on SQLite the write lock (BEGIN IMMEDIATE) serialises claims.
 */
export async function claimDue(db: Db, now: number, limits: ClaimLimits): Promise<ClaimedDelivery[]> {
  if (limits.max <= 0) return [];
  // Rows of endpoints this process has partly busy are filtered below, at most one per busy
  // attempt: asking for that many more keeps the batch full.
  const inFlight = [...limits.busy.values()].reduce((a, b) => a + b, 0);
  // The idle case, most of the time: one index probe, without taking SQLite's write lock.
  const due = await db.kysely.selectFrom("webhook_deliveries").select("id").where("next_attempt_at", "<=", now).limit(1).execute();
  if (due.length === 0) return [];
  return db.transaction(async (trx) => {
    // The oldest due rows straight off the due index, a bounded window: the cost of a claim does
    // not grow with the backlog. Per-endpoint caps are applied here, in memory.
    const window = limits.max + inFlight;
    const candidates = await sql<Candidate>`
      select d.id, d.endpoint_id from (
        select id, endpoint_id, next_attempt_at from webhook_deliveries
        where next_attempt_at <= ${now} order by next_attempt_at limit ${window}
      ) d
      join webhook_endpoints w on w.id = d.endpoint_id and w.enabled = 1
      order by d.next_attempt_at`.execute(trx);
    const taken = new Map<string, number>();
    const chosen: string[] = [];
    const take = (c: Candidate): void => {
      if (chosen.length >= limits.max) return;
      const n = (limits.busy.get(c.endpoint_id) ?? 0) + (taken.get(c.endpoint_id) ?? 0);
      if (n >= limits.perEndpoint) return;
      taken.set(c.endpoint_id, (taken.get(c.endpoint_id) ?? 0) + 1);
      chosen.push(c.id);
    };
    for (const c of candidates.rows) take(c);
    // A full window that left slots free means busy endpoints' backlogs filled it: other
    // endpoints may have due rows further down. Look for them endpoint by endpoint, so a slow
    // endpoint's backlog never holds up the rest.
    if (candidates.rows.length >= window && chosen.length < limits.max) {
      const others = await trx.selectFrom("webhook_endpoints").select("id").where("enabled", "=", 1).execute();
      for (const { id } of others) {
        if (chosen.length >= limits.max) break;
        const room = limits.perEndpoint - (limits.busy.get(id) ?? 0) - (taken.get(id) ?? 0);
        if (room <= 0) continue;
        const rows = await trx
          .selectFrom("webhook_deliveries")
          .select(["id", "endpoint_id"])
          .where("endpoint_id", "=", id)
          .where("next_attempt_at", "<=", now)
          .$if(chosen.length > 0, (q) => q.where("id", "not in", chosen))
          .orderBy("next_attempt_at")
          .limit(room)
          .execute();
        for (const r of rows) take(r);
      }
    }
    if (chosen.length === 0) return [];

    // Re-checked under the lock: another process may have claimed (or a retry moved) a row since.
    let lock = trx.selectFrom("webhook_deliveries").select("id").where("id", "in", chosen).where("next_attempt_at", "<=", now);
    if (db.dialect === "postgres") lock = lock.forUpdate().skipLocked();
    const ids = (await lock.execute()).map((r) => r.id);
    if (ids.length === 0) return [];
    const leaseToken = uuidv7(now);
    await trx
      .updateTable("webhook_deliveries")
      .set((eb) => ({ status: "delivering", lease_token: leaseToken, next_attempt_at: now + limits.leaseMs, attempts: eb("attempts", "+", 1), updated_at: new Date(now).toISOString() }))
      .where("id", "in", ids)
      .execute();

    const rows = await trx
      .selectFrom("webhook_deliveries as d")
      .innerJoin("webhook_endpoints as w", "w.id", "d.endpoint_id")
      .leftJoin("events as e", "e.id", "d.event_id")
      .select([
        "d.id", "d.endpoint_id", "d.attempts", "d.event_id",
        "w.url", "w.secret", "w.previous_secret", "w.previous_secret_until", "w.mode",
        "e.type", "e.created_at", "e.data",
      ])
      .where("d.id", "in", ids)
      .execute();
    return rows.map((r): ClaimedDelivery => ({
      id: r.id,
      endpointId: r.endpoint_id,
      attempts: r.attempts,
      leaseToken,
      claimedAt: now,
      url: r.url,
      secrets: r.previous_secret !== null && (r.previous_secret_until ?? 0) > now ? [r.secret, r.previous_secret] : [r.secret],
      event: r.type === null || r.created_at === null || r.data === null ? null : { id: r.event_id, type: r.type, created_at: r.created_at, mode: r.mode as Mode, data: r.data },
    }));
  });
}
