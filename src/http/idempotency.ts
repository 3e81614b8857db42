/**
 * Idempotency-Key for POSTs — the contract (api.md §4, reliability.md §1 IDEM-R1…R11):
 *
 * - Scope: (account, mode, key). Any key of the account shares it; test and live never meet.
 * - Format: 1–255 printable ASCII (0x21–0x7E), bare or as an RFC 8941 quoted string. Else 400.
 * - Runs after auth, rate limit and schema validation, so their errors never burn a key.
 * - Same transaction: the key row, the resource and its outbox rows commit together. An error
 *   inside rolls everything back: no key row, so a retry runs afresh (only committed outcomes
 *   are remembered, never errors).
 * - Replay (same key, same fingerprint, completed): 200, the resource's *current* representation,
 *   `Idempotent-Replayed: true`; nothing runs twice.
 * - Different fingerprint, method or route: 422 idempotency_key_reused.
 * - In flight: a duplicate waits up to IDEMPOTENCY_WAIT_MS for the original, then gets
 *   409 idempotency_key_in_use with Retry-After: 1. In-process duplicates are seen through the
 *   in-flight map; across PostgreSQL processes, the unique index blocks the second insert until
 *   the first commits, bounded by lock_timeout.
 * - Two-phase (handlers with I/O outside the transaction, e.g. uploads): phase 1 commits an
 *   `in_progress` row; phase 2 commits the resource and `completed` together. A crashed
 *   phase 1 is taken over once its lock is older than TWO_PHASE_LOCK_MS. The lock is a fence:
 *   an owner that was taken over can neither complete (409, its phase 2 rolls back) nor release
 *   the key, so one key never yields two resources.
 * - Expiry: rows older than IDEMPOTENCY_TTL_HOURS are ignored and purged; the key is then new.
 * - Ignored on every method but POST.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { sql } from "kysely";
import { iso, type Clock } from "../clock.js";
import type { Db, Tx } from "../db/client.js";
import type { IdempotencyKeysTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { fingerprint } from "./fingerprint.js";

export interface IdempotencyOptions {
  db: Db;
  clock: Clock;
  ttlHours: number;
  waitMs: number;
  required: boolean;
}

export interface IdempotentCreate<T> {
  /** Stored on the key row, e.g. "message". */
  resourceType: string;
  /** Status of a first, successful call: 201 or 202 for creates, 200 for actions. */
  status: 200 | 201 | 202;
  /** Creates the resource inside the transaction and returns its id and representation. */
  create(trx: Tx): Promise<{ id: string; body: T }>;
  /** The resource's current representation, for a replay. */
  load(db: Tx, id: string): Promise<T>;
}

export type TwoPhaseClaim =
  | { kind: "replay"; resourceId: string }
  | {
      kind: "claimed";
      /** Phase 2: call inside the transaction that inserts the resource. */
      complete(trx: Tx, resourceId: string, status: number): Promise<void>;
      /** The work failed: forget the key so a retry runs afresh. */
      release(): Promise<void>;
    };

export const TWO_PHASE_LOCK_MS = 60_000;
const KEY_RE = /^[\x21-\x7e]{1,255}$/;
const IN_USE = () => new ApiError("idempotency_key_in_use", undefined, { "retry-after": "1" });
const REUSED = () => new ApiError("idempotency_key_reused");

export class Idempotency {
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly opts: IdempotencyOptions) {}

  /** Runs a local-only create under the request's Idempotency-Key, if it has one. */
  async create<T>(req: FastifyRequest, reply: FastifyReply, op: IdempotentCreate<T>): Promise<T> {
    const key = this.keyOf(req);
    if (key === null) {
      const created = await this.opts.db.transaction((trx) => op.create(trx));
      reply.code(op.status);
      return created.body;
    }
    const replayId = await this.exclusive(req, key, async () =>
      this.opts.db.transaction(async (trx) => {
        const claim = await this.claim(trx, req, key, "completed");
        if (claim.existing) return claim.existing;
        const created = await op.create(trx);
        await this.finish(trx, req, key, op.resourceType, created.id, op.status);
        reply.code(op.status);
        return { created: created.body };
      }),
    );
    if ("created" in replayId) return replayId.created;
    return this.replay(reply, op, replayId.resourceId);
  }

  /** Phase 1 of a two-phase create; null when the request has no Idempotency-Key. */
  async begin(req: FastifyRequest, resourceType: string): Promise<TwoPhaseClaim | null> {
    const key = this.keyOf(req);
    if (key === null) return null;
    const claim = await this.exclusive(req, key, () => this.opts.db.transaction((trx) => this.claim(trx, req, key, "in_progress")));
    if (claim.existing) return { kind: "replay", resourceId: claim.existing.resourceId };
    // Our lock: if another request took the key over (we were slower than TWO_PHASE_LOCK_MS),
    // the row no longer carries it and we must not touch the row.
    const lockedAt = claim.lockedAt;
    return {
      kind: "claimed",
      complete: (trx, resourceId, status) => this.finish(trx, req, key, resourceType, resourceId, status, lockedAt),
      release: async () => {
        await this.opts.db.kysely.deleteFrom("idempotency_keys").where((eb) => eb.and(this.match(req, key)))
          .where("state", "=", "in_progress").where("locked_at", "=", lockedAt).execute();
      },
    };
  }

  /**
   * A POST whose work happens outside the database (a synchronous device action): two-phase under
   * its key, so a retry replays the outcome instead of acting on the device twice.
   */
  async action<T>(req: FastifyRequest, reply: FastifyReply, op: Omit<IdempotentCreate<T>, "create"> & { run(): Promise<{ id: string; body: T }> }): Promise<T> {
    const claim = await this.begin(req, op.resourceType);
    if (claim?.kind === "replay") return this.replay(reply, op, claim.resourceId);
    let done: { id: string; body: T };
    try {
      done = await op.run();
    } catch (err) {
      await claim?.release();
      throw err;
    }
    if (claim) await this.opts.db.transaction((trx) => claim.complete(trx, done.id, op.status));
    reply.code(op.status);
    return done.body;
  }

  /** Sends the current representation of an already-created resource as a replay. */
  async replay<T>(reply: FastifyReply, op: Pick<IdempotentCreate<T>, "load">, resourceId: string): Promise<T> {
    const body = await op.load(this.opts.db.kysely, resourceId);
    reply.code(200).header("idempotent-replayed", "true");
    return body;
  }

  /** The reaper: forget keys older than the TTL. */
  async purgeExpired(): Promise<number> {
    const res = await this.opts.db.kysely.deleteFrom("idempotency_keys").where("created_at", "<", this.expiryCutoff()).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  private keyOf(req: FastifyRequest): string | null {
    if (req.method !== "POST") return null;
    const raw = req.headers["idempotency-key"];
    if (raw === undefined) {
      if (this.opts.required) throw new ApiError("invalid_request", "The Idempotency-Key header is required on POST requests.");
      return null;
    }
    if (Array.isArray(raw)) throw new ApiError("invalid_request", "Send one Idempotency-Key header.");
    // RFC 8941 sf-string form: strip the quotes ("abc" and abc are the same key).
    const key = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
    if (!KEY_RE.test(key)) {
      throw new ApiError("invalid_request", "The Idempotency-Key header must be 1–255 printable ASCII characters.");
    }
    return key;
  }

  /** One in-process request per key at a time; a duplicate waits briefly, then 409. */
  private async exclusive<R>(req: FastifyRequest, key: string, fn: () => Promise<R>): Promise<R> {
    const scope = `${req.auth.accountId}\n${req.auth.mode}\n${key}`;
    const running = this.inflight.get(scope);
    if (running) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        running.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), this.opts.waitMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut || this.inflight.has(scope)) throw IN_USE();
    }
    let done!: () => void;
    this.inflight.set(scope, new Promise<void>((resolve) => { done = resolve; }));
    try {
      return await fn();
    } catch (err) {
      // PostgreSQL: another process holds the key row past lock_timeout.
      if ((err as { code?: string }).code === "55P03") throw IN_USE();
      throw err;
    } finally {
      this.inflight.delete(scope);
      done();
    }
  }

  /**
   * Inserts the key row, or returns the existing row's resource (replay). Throws 422 on a
   * different request and 409 while another request holds it.
   */
  private async claim(trx: Tx, req: FastifyRequest, key: string, state: IdempotencyKeysTable["state"]): Promise<{ existing?: { resourceId: string }; lockedAt: string }> {
    const now = this.opts.clock.now();
    const route = req.routeOptions.url ?? req.url;
    const fp = fingerprint(req.method, route, req.query, req.body, req.params as Record<string, string>);
    if (this.opts.db.dialect === "postgres") await sql`set local lock_timeout = '2s'`.execute(trx);
    await trx.deleteFrom("idempotency_keys").where((eb) => eb.and(this.match(req, key))).where("created_at", "<", this.expiryCutoff()).execute();
    const inserted = await trx
      .insertInto("idempotency_keys")
      .values({
        account_id: req.auth.accountId,
        mode: req.auth.mode,
        key,
        method: req.method,
        path: route,
        fingerprint: fp,
        state,
        locked_at: iso(now),
        resource_type: null,
        resource_id: null,
        response_status: null,
        created_at: iso(now),
      })
      .onConflict((oc) => oc.columns(["account_id", "mode", "key"]).doNothing())
      .returning("key")
      .executeTakeFirst();
    if (inserted) return { lockedAt: iso(now) };

    const row = await trx.selectFrom("idempotency_keys").selectAll().where((eb) => eb.and(this.match(req, key))).executeTakeFirstOrThrow();
    if (row.fingerprint !== fp || row.method !== req.method || row.path !== route) throw REUSED();
    if (row.state === "completed" && row.resource_id !== null) return { existing: { resourceId: row.resource_id }, lockedAt: iso(now) };
    const lockedAt = row.locked_at ? Date.parse(row.locked_at) : 0;
    if (now - lockedAt < TWO_PHASE_LOCK_MS) throw IN_USE();
    // A phase 1 whose owner died: take it over.
    await trx.updateTable("idempotency_keys").where((eb) => eb.and(this.match(req, key))).set({ locked_at: iso(now), state }).execute();
    return { lockedAt: iso(now) };
  }

  /** Marks the key completed; with `lockedAt` (two-phase), only while that lock is still ours, else 409. */
  private async finish(trx: Tx, req: FastifyRequest, key: string, resourceType: string, resourceId: string, status: number, lockedAt?: string): Promise<void> {
    const fence = lockedAt === undefined ? {} : { state: "in_progress" as const, locked_at: lockedAt };
    const res = await trx.updateTable("idempotency_keys").where((eb) => eb.and({ ...this.match(req, key), ...fence }))
      .set({ state: "completed", resource_type: resourceType, resource_id: resourceId, response_status: status, locked_at: null })
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw IN_USE();
  }

  private match(req: FastifyRequest, key: string) {
    return { account_id: req.auth.accountId, mode: req.auth.mode, key };
  }

  private expiryCutoff(): string {
    return iso(this.opts.clock.now() - this.opts.ttlHours * 3_600_000);
  }
}
