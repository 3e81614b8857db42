import type { FastifyBaseLogger } from "fastify";
import { sql } from "kysely";
import { changed, prepared, preparedQuery } from "../db/prepared.js";
import { iso, type Clock } from "../clock.js";
import type { Db, Tx } from "../db/client.js";
import type { WebhookDeliveriesTable, WebhookEndpointsTable } from "../db/schema.js";
import type { AttemptOutcome } from "./attempt.js";
import type { ClaimedDelivery } from "./claim.js";
import { disableEndpoint } from "./endpoint-state.js";
import { DISABLE_AFTER_MS, nextDelay } from "./schedule.js";

/** What became of the delivery, for metrics. */
export type RecordedAs = "delivered" | "retrying" | "failed" | "blocked" | "paused" | "lost_lease";

export interface RecordDeps {
  db: Db;
  clock: Clock;
  random: () => number;
  log?: FastifyBaseLogger | undefined;
}

const endpointById = prepared((db, id: string) => db.selectFrom("webhook_endpoints").selectAll().where("id", "=", id), [":id"]);
const endpointForUpdate = prepared((db, id: string) => db.selectFrom("webhook_endpoints").selectAll().where("id", "=", id).forUpdate(), [":id"]);
const markDelivered = preparedQuery(
  (db, lastAttemptAt: string, statusCode: number | null, updatedAt: string, id: string, leaseToken: string) =>
    db
      .updateTable("webhook_deliveries")
      .set({
        status: sql<"delivered">`'delivered'`,
        next_attempt_at: sql<null>`null`,
        lease_token: sql<null>`null`,
        last_error: sql<null>`null`,
        last_attempt_at: lastAttemptAt,
        last_status_code: statusCode,
        updated_at: updatedAt,
      })
      .where("id", "=", id)
      .where("lease_token", "=", leaseToken),
  [":attempt", 200, ":updated", ":id", ":lease"],
);

/**
 * Writes a failed attempt's outcome in one transaction, fenced by the lease token: a worker whose
 * lease expired (another one took the delivery over) changes nothing. Then the endpoint's health:
 * a failure starts its failure clock, and disables the endpoint once every attempt has failed for
 * DISABLE_AFTER_MS (WH-R5); a 410 disables it at once (WH-R4). Successes go through
 * recordDelivered, in batches.
 */
export async function recordOutcome(deps: RecordDeps, d: ClaimedDelivery, outcome: Exclude<AttemptOutcome, { kind: "delivered" }>): Promise<RecordedAs> {
  const { clock, log } = deps;
  return deps.db.transaction(async (trx) => {
    const now = clock.now();
    // The endpoint row first, locked on PostgreSQL: every writer takes the endpoint before its
    // deliveries (PATCH, DELETE, disabling), so none can deadlock with another, and a PATCH that
    // disables it cannot slip between this read and the writes below.
    const [endpoint] = await (deps.db.dialect === "postgres" ? endpointForUpdate : endpointById)(trx, d.endpointId);
    if (!endpoint) return "lost_lease"; // deleted meanwhile, with its deliveries
    const base = {
      lease_token: null,
      last_attempt_at: iso(d.claimedAt),
      last_status_code: outcome.kind === "blocked" ? null : outcome.status,
      last_error: errorText(outcome),
      updated_at: iso(now),
    };
    let set: Partial<WebhookDeliveriesTable>;
    let as: RecordedAs;
    if (outcome.kind === "blocked") {
      // Dropped: the host now points somewhere it must not (WH-R8); retrying cannot help.
      set = { ...base, status: "blocked", next_attempt_at: null };
      as = "blocked";
    } else {
      const delay = nextDelay(d.attempts, outcome.retryAfterMs, deps.random);
      if (delay === null) {
        set = { ...base, status: "failed", next_attempt_at: null };
        as = "failed";
      } else {
        // A disabled endpoint's deliveries wait without a due time until it is enabled again.
        set = { ...base, status: "pending", next_attempt_at: endpoint.enabled === 1 ? now + delay : null };
        as = endpoint.enabled === 1 ? "retrying" : "paused";
      }
    }
    const res = await trx.updateTable("webhook_deliveries").set(set).where("id", "=", d.id).where("lease_token", "=", d.leaseToken).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) return "lost_lease";

    const ctx = { webhook_id: d.endpointId, delivery_id: d.id, event_id: d.event?.id, attempts: d.attempts };
    if (as === "failed") log?.warn(ctx, "webhook delivery failed: every attempt of the schedule failed; kept for a manual retry");
    if (as === "blocked") log?.warn(ctx, "webhook delivery dropped: the endpoint's host resolves to a non-public address");
    if (outcome.kind === "failed" && outcome.gone) {
      if (await disableEndpoint(trx, clock, endpoint, "gone")) log?.warn(ctx, "webhook endpoint disabled: it answered 410 Gone");
    } else if (await noteFailure(trx, clock, endpoint, now)) {
      log?.warn(ctx, "webhook endpoint disabled: every attempt failed for 5 days");
    }
    if (as === "retrying" && (await stillEnabled(trx, endpoint.id)) === false) as = "paused";
    return as;
  });
}

/** Starts the failure clock, or disables the endpoint when it has run for 5 days; true if disabled now. */
async function noteFailure(trx: Tx, clock: Clock, endpoint: WebhookEndpointsTable, now: number): Promise<boolean> {
  if (endpoint.failing_since === null) {
    await trx.updateTable("webhook_endpoints").set({ failing_since: now }).where("id", "=", endpoint.id).where("failing_since", "is", null).execute();
    return false;
  }
  if (endpoint.enabled !== 1 || now - endpoint.failing_since < DISABLE_AFTER_MS) return false;
  return disableEndpoint(trx, clock, endpoint, "failing");
}

async function stillEnabled(trx: Tx, id: string): Promise<boolean> {
  const row = await trx.selectFrom("webhook_endpoints").select("enabled").where("id", "=", id).executeTakeFirst();
  return row?.enabled === 1;
}

/** The customer-facing error of a failed attempt: what happened, then the start of the answer. */
function errorText(outcome: Exclude<AttemptOutcome, { kind: "delivered" }>): string {
  if (outcome.kind === "blocked") return outcome.error;
  const snippet = outcome.snippet?.replace(/\s+/g, " ").trim().slice(0, 200);
  return snippet ? `${outcome.error}: ${snippet}` : outcome.error;
}

/**
 * Records many successful attempts in one transaction: the usual outcome under load, so each
 * costs one fenced UPDATE instead of a transaction of its own. The endpoints come first, locked
 * on PostgreSQL in id order (every writer takes endpoints before their deliveries), and a
 * success clears an endpoint's failure clock as recordOutcome does.
 */
export async function recordDelivered(deps: RecordDeps, items: readonly { d: ClaimedDelivery; status: number }[]): Promise<RecordedAs[]> {
  return deps.db.transaction(async (trx) => {
    const now = iso(deps.clock.now());
    const ids = [...new Set(items.map((i) => i.d.endpointId))].sort();
    let q = trx.selectFrom("webhook_endpoints").select(["id", "failing_since"]).where("id", "in", ids).orderBy("id");
    if (deps.db.dialect === "postgres") q = q.forUpdate();
    const endpoints = new Map((await q.execute()).map((e) => [e.id, e]));
    const recovered = new Set<string>();
    const out: RecordedAs[] = [];
    for (const { d, status } of items) {
      const endpoint = endpoints.get(d.endpointId);
      const ok = endpoint !== undefined && changed(await markDelivered(trx, iso(d.claimedAt), status, now, d.id, d.leaseToken)) === 1;
      if (ok && endpoint.failing_since !== null) recovered.add(endpoint.id);
      out.push(ok ? "delivered" : "lost_lease");
    }
    if (recovered.size > 0) await trx.updateTable("webhook_endpoints").set({ failing_since: null }).where("id", "in", [...recovered]).execute();
    return out;
  });
}
