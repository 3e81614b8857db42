/**
 * Test-only resources for the idempotency and rate-limit tests, registered under /v1 through
 * `extraRoutes`, so they run behind the real auth, rate-limit, validation and error handling:
 *
 * - `POST /v1/test_notes` — a local-only create through `Idempotency.create` (one transaction:
 *   key row + note + its outbox job), 202 on a first call. `GET` and `DELETE /v1/test_notes/:id`.
 * - `POST /v1/test_uploads` — a two-phase create through `Idempotency.begin` (phase 1 commits the
 *   key, "I/O" happens outside any transaction, phase 2 commits the row), 201 on a first call.
 *
 * Hooks the tests control: `fx.deviceOnline`, `fx.faultAfterInsert`, `fx.crashAfterPhase1`, and
 * pause points chosen per request by the `x-test-hook` header (`pause-before=<gate>`,
 * `pause-inside=<gate>`, `pause-io=<gate>`), each released by the test through `fx.gate(name)`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import { Type } from "typebox";
import type { Services } from "../src/app.js";
import type { Tx } from "../src/db/client.js";
import type { Database } from "../src/db/schema.js";
import { ApiError } from "../src/errors.js";
import { Envelope, ok } from "../src/http/envelope.js";
import { uuidv7 } from "../src/ids.js";
import { buildTestApp, type TestApp, type TestAppOptions } from "./helpers.js";

interface NotesDb extends Database {
  test_notes: { id: string; account_id: string; mode: string; text: string; tags: string; status: string; created_at: string };
  test_note_jobs: { id: string; note_id: string };
  test_uploads: { id: string; account_id: string; mode: string; name: string };
}
export type TestTable = "test_notes" | "test_note_jobs" | "test_uploads" | "idempotency_keys";

export const notesDb = (db: Kysely<Database>) => db as unknown as Kysely<NotesDb>;

const NoteBody = Type.Object(
  { text: Type.String({ minLength: 1, maxLength: 500 }), tags: Type.Optional(Type.Array(Type.String(), { maxItems: 10 })) },
  { additionalProperties: false },
);
const Note = Type.Object(
  { id: Type.String(), text: Type.String(), tags: Type.Array(Type.String()), status: Type.String(), created_at: Type.String() },
  { additionalProperties: false },
);
const UploadBody = Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: false });
const Upload = Type.Object({ id: Type.String(), name: Type.String() }, { additionalProperties: false });
const IdParams = Type.Object({ id: Type.String() }, { additionalProperties: false });

interface NoteView { id: string; text: string; tags: string[]; status: string; created_at: string }

/** A pause point: `reached` resolves when a request gets there; `release()` lets it go on. */
export class Gate {
  readonly reached: Promise<void>;
  private readonly opened: Promise<void>;
  private arrive!: () => void;
  release!: () => void;
  constructor() {
    this.reached = new Promise((resolve) => { this.arrive = resolve; });
    this.opened = new Promise((resolve) => { this.release = resolve; });
  }
  async pass(): Promise<void> {
    this.arrive();
    await this.opened;
  }
}

export class NotesFixture {
  /** false: the create throws `device_offline` after its insert (inside the transaction). */
  deviceOnline = true;
  /** true: the create throws a leaky internal error after its insert, before the commit. */
  faultAfterInsert = false;
  /** true: the upload "process dies" after phase 1 (the key stays in_progress, no release). */
  crashAfterPhase1 = false;
  /** How many times a create/upload body actually ran (a replay must not run it). */
  creates = 0;
  private app?: Services;
  private readonly gates = new Map<string, Gate>();

  /** The services of the (first) app the routes were registered on. */
  services(): Services {
    if (!this.app) throw new Error("routes not registered");
    return this.app;
  }

  attach(services: Services): void {
    this.app ??= services;
  }

  gate(name: string): Gate {
    let g = this.gates.get(name);
    if (!g) {
      g = new Gate();
      this.gates.set(name, g);
    }
    return g;
  }

  /** Passes the gate named by `x-test-hook: <point>=<gate>`, if this request has one. */
  async hook(req: FastifyRequest, point: string): Promise<void> {
    const h = req.headers["x-test-hook"];
    if (typeof h === "string" && h.startsWith(`${point}=`)) await this.gate(h.slice(point.length + 1)).pass();
  }
}

async function loadNote(db: Tx, id: string): Promise<NoteView> {
  const r = await notesDb(db).selectFrom("test_notes").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
  return { id: r.id, text: r.text, tags: JSON.parse(r.tags) as string[], status: r.status, created_at: r.created_at };
}

async function loadUpload(db: Tx, id: string): Promise<{ id: string; name: string }> {
  return notesDb(db).selectFrom("test_uploads").select(["id", "name"]).where("id", "=", id).executeTakeFirstOrThrow();
}

export function notesRoutes(fx: NotesFixture) {
  return (v1: FastifyInstance, services: Services): void => {
    fx.attach(services);
    const { idempotency, clock } = services;
    const noteOf = async (req: FastifyRequest) => {
      const row = await notesDb(services.db.kysely).selectFrom("test_notes").select("id")
        .where("id", "=", (req.params as { id: string }).id).where("account_id", "=", req.auth.accountId).where("mode", "=", req.auth.mode)
        .executeTakeFirst();
      if (!row) throw new ApiError("not_found");
      return row.id;
    };

    v1.post("/test_notes", { schema: { body: NoteBody, response: { 200: Envelope(Note), 202: Envelope(Note) } } }, async (req, reply: FastifyReply) => {
      const body = req.body as { text: string; tags?: string[] };
      await fx.hook(req, "pause-before");
      const note = await idempotency.create(req, reply, {
        resourceType: "test_note",
        status: 202,
        create: async (trx) => {
          fx.creates++;
          const id = uuidv7(clock.now());
          const db = notesDb(trx);
          await db.insertInto("test_notes").values({
            id, account_id: req.auth.accountId, mode: req.auth.mode, text: body.text,
            tags: JSON.stringify(body.tags ?? []), status: "queued", created_at: new Date(clock.now()).toISOString(),
          }).execute();
          await db.insertInto("test_note_jobs").values({ id: uuidv7(clock.now()), note_id: id }).execute();
          await fx.hook(req, "pause-inside");
          if (!fx.deviceOnline) throw new ApiError("device_offline");
          if (fx.faultAfterInsert) {
            throw Object.assign(new Error(`insert into "test_notes" violates check at /work/main/src/secret/path.ts:42 (select * from api_keys)`), { code: "XX000" });
          }
          return { id, body: await loadNote(trx, id) };
        },
        load: loadNote,
      });
      return ok(req, note);
    });

    v1.get("/test_notes/:id", { schema: { params: IdParams, response: { 200: Envelope(Note) } } }, async (req) =>
      ok(req, await loadNote(services.db.kysely, await noteOf(req))),
    );

    v1.delete("/test_notes/:id", { schema: { params: IdParams } }, async (req) => {
      const id = await noteOf(req);
      await notesDb(services.db.kysely).deleteFrom("test_notes").where("id", "=", id).execute();
      return ok(req, { id, deleted: true });
    });

    v1.post("/test_uploads", { schema: { body: UploadBody, response: { 200: Envelope(Upload), 201: Envelope(Upload) } } }, async (req, reply) => {
      const claim = await idempotency.begin(req, "test_upload");
      if (claim?.kind === "replay") return ok(req, await idempotency.replay(reply, { load: loadUpload }, claim.resourceId));
      try {
        fx.creates++;
        await fx.hook(req, "pause-io"); // the "upload" streams outside any transaction
        if (fx.crashAfterPhase1) throw new Error("process died");
        const upload = { id: uuidv7(clock.now()), name: (req.body as { name: string }).name };
        await services.db.transaction(async (trx) => {
          await notesDb(trx).insertInto("test_uploads").values({ ...upload, account_id: req.auth.accountId, mode: req.auth.mode }).execute();
          await claim?.complete(trx, upload.id, 201);
        });
        reply.code(201);
        return ok(req, upload);
      } catch (err) {
        if (!fx.crashAfterPhase1) await claim?.release();
        throw err;
      }
    });
  };
}

export interface NotesApp extends TestApp {
  fx: NotesFixture;
  /** Rows in a table, optionally only those of one account. */
  count(table: TestTable, accountId?: string): Promise<number>;
}

/** The real app with the test routes and their tables (made with Kysely's schema builder). */
export async function buildNotesApp(opts: Omit<TestAppOptions, "extraRoutes"> = {}): Promise<NotesApp> {
  const fx = new NotesFixture();
  const t = await buildTestApp({ ...opts, extraRoutes: notesRoutes(fx) });
  const schema = notesDb(t.db.kysely).schema;
  await schema.createTable("test_notes")
    .addColumn("id", "text", (c) => c.primaryKey()).addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull()).addColumn("text", "text", (c) => c.notNull())
    .addColumn("tags", "text", (c) => c.notNull()).addColumn("status", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await schema.createTable("test_note_jobs")
    .addColumn("id", "text", (c) => c.primaryKey()).addColumn("note_id", "text", (c) => c.notNull())
    .execute();
  await schema.createTable("test_uploads")
    .addColumn("id", "text", (c) => c.primaryKey()).addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull()).addColumn("name", "text", (c) => c.notNull())
    .execute();
  return Object.assign(t, {
    fx,
    async count(table: TestTable, accountId?: string) {
      let q = notesDb(t.db.kysely).selectFrom(table).select((eb) => eb.fn.countAll().as("n"));
      if (accountId !== undefined && table !== "test_note_jobs") q = q.where("account_id", "=", accountId);
      const row = await q.executeTakeFirstOrThrow();
      return Number(row.n);
    },
  });
}
