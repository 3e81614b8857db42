/**
 * Fuzzing the HTTP API from its own OpenAPI document (reliability.md §6, FUZZ-P01…P08), with
 * fast-check on the real app and a real database:
 *
 * - P01/P03 valid requests derived from `GET /v1/openapi.json` (test and live keys): never a 5xx,
 *   documented statuses whose schema the body matches, the error envelope and codes of
 *   src/errors.ts, X-Request-Id equal to request_id; BOLA (another account's or mode's id answers
 *   exactly like a missing one); a created resource can be read back; a deleted webhook is gone.
 * - P02/P08 near-valid requests (one field, the body, the query, a path parameter, the content
 *   type or the Idempotency-Key made wrong): refused with a 4xx, never accepted, never a 5xx.
 * - P04 authentication on every keyed operation; P05 unsupported methods on every path.
 * - Ids are case-insensitive (UUIDs): an upper-case id never 404s where the lower-case one does not.
 * - P06 a stateful model run (`fc.commands`) over messages (send, edit, react, retry, unsend,
 *   time passing) and webhook endpoints (create, get, patch, delete, list).
 * - P07 races (`fc.scheduler`) on Idempotency-Key and on single-use attachments.
 *
 * Budget: FUZZ_RUNS (default 120) and FUZZ_SEED (default fixed) scale and replay it; `npm run
 * fuzz` runs 2,000 with a random seed it prints (scripts/fuzz.js).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { SIM } from "../src/backends/simulator.js";
import type { Mode } from "../src/db/schema.js";
import { TAPBACKS } from "../src/messages/schemas.js";
import { multipart } from "./attachment-support.js";
import { openApiDoc } from "./edge-support.js";
import {
  type FuzzRequest, type Generation, type Operation, type RequestParts, type World, clip, describeRequest, foreignIds, fuzzResolver,
  hintsFor, mutation, Oracle, operationsOf, resolver, seedWorld, send, toRequest, track, validParts,
} from "./fuzz-support.js";
import { buildTestApp, type TestApp, type TestAppOptions } from "./helpers.js";
import { elapse } from "./messaging-helpers.js";

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 120));
const SEED = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== "" ? Number(process.env.FUZZ_SEED) : 20_261_128;
const scaled = (share: number, min = 1) => Math.max(min, Math.round(RUNS * share));
const params = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });

/** Operations the fuzzer weights up: where the logic (and the bugs) are. */
const HEAVY = /^(POST|PATCH|DELETE) \/v1\/(messages|webhooks|chats|test_helpers)/;

let tmp: string;

/** The fuzz app: real limits relaxed so thousands of requests are not rate limited; webhook DNS faked. */
async function fuzzApp(extra: TestAppOptions["config"] = {}): Promise<TestApp> {
  tmp = await mkdtemp(join(tmpdir(), "mb-fuzz-"));
  return buildTestApp({
    config: { RATE_LIMIT_PER_MINUTE: 10_000_000, AUTH_FAILURE_LIMIT_PER_MINUTE: 10_000_000, ATTACHMENTS_DIR: tmp, ...extra },
    webhookResolver: fuzzResolver,
  });
}

async function closeApp(t: TestApp): Promise<void> {
  await t.close();
  await rm(tmp, { recursive: true, force: true });
}

test(`fuzz budget: FUZZ_RUNS=${RUNS} FUZZ_SEED=${SEED}`, (t) => {
  t.diagnostic(`replay with FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
});

describe("requests derived from GET /v1/openapi.json", () => {
  let t: TestApp;
  let w: World;
  let ops: Operation[];
  let oracle: Oracle;
  let resolve: (ref: string) => ReturnType<ReturnType<typeof resolver>>;
  const generations = new Map<string, Generation>();
  const gen = (mode: Mode, op: Operation): Generation => {
    const k = `${mode} ${op.id}`;
    let g = generations.get(k);
    if (!g) {
      g = { resolve, hint: hintsFor(w, mode, op) };
      generations.set(k, g);
    }
    return g;
  };
  const auth = (mode: Mode) => ({ authorization: `Bearer ${w.own[mode].key}` });

  before(async () => {
    t = await fuzzApp();
    const doc = await openApiDoc(t);
    ops = operationsOf(doc);
    resolve = resolver(doc);
    oracle = new Oracle(doc);
    w = await seedWorld(t);
  });
  after(() => closeApp(t));

  /** Operations travel through the arbitraries by id, so counterexamples stay readable. */
  const byId = (id: string): Operation => ops.find((op) => op.id === id) as Operation;
  /** (operation, mode) pairs, the heavy operations weighted up. */
  const target = (filter: (op: Operation) => boolean = () => true) =>
    fc.oneof(...ops.filter(filter).map((op) => ({ weight: HEAVY.test(op.id) ? 4 : 1, arbitrary: fc.tuple(fc.constant(op.id), fc.constantFrom<Mode>("test", "live")) })));
  const valid = (filter?: (op: Operation) => boolean) =>
    target(filter).chain(([id, mode]) => validParts(byId(id), gen(mode, byId(id))).map((parts) => ({ op: id, mode, parts })));

  /** Sometimes time passes (and the engine runs) before a request, so messages are found in every state. */
  async function maybeTick(n: number): Promise<void> {
    if (n % 8 !== 0) return;
    t.clock.advance(700);
    await t.app.services.dispatcher.runUntilIdle();
  }

  /** The same request with one path parameter swapped for `value`. */
  const withPath = (req: FuzzRequest, name: string, value: string): FuzzRequest =>
    toRequest(req.op, { ...req.parts, path: { ...req.parts.path, [name]: value } }, `${req.mutation}, path.${name}=${value}`, { authorization: req.headers.authorization ?? "" });
  const blank = (res: LightMyRequestResponse) => res.body.replaceAll(String(res.headers["x-request-id"]), "req_*");

  test("P01/P03: valid requests get documented answers that match their schemas, never a 5xx", async () => {
    // An Idempotency-Key now and then, from a small pool: replays (200) and reuses (422) happen too.
    const idemKey = fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom("k-1", "k-2", "k-3") });
    await fc.assert(
      fc.asyncProperty(valid(), fc.nat(), idemKey, async ({ op: id, mode, parts }, n, idem) => {
        const op = byId(id);
        await maybeTick(n);
        const withKey: RequestParts = idem && op.method === "POST" ? { ...parts, headers: { "idempotency-key": `${idem}-${mode}` } } : parts;
        const req = toRequest(op, withKey, "valid", auth(mode));
        const res = await send(t, req);
        const testOnlyLive = op.testOnly && mode === "live";
        const v = oracle.check(req, res, { testOnlyLive });
        if (testOnlyLive) assert.equal(v.code, "forbidden", `a test helper with a live key: ${describeRequest(req)} → ${res.statusCode}`);
        await bola(req, res, mode);
        if (v.status >= 200 && v.status < 300) {
          track(w, mode, op.id, req.parts.path, v.body?.data);
          await readBack(req, v.body?.data, mode);
        }
      }),
      params(scaled(1)),
    );
  });

  /**
   * Another account's (or mode's) id in the path answers byte for byte like an id that names
   * nothing. Only where an API key is the authority: a signed URL is its own (anyone holding it may
   * download), whoever's attachment it names.
   */
  async function bola(req: FuzzRequest, res: LightMyRequestResponse, mode: Mode): Promise<void> {
    if (!req.op.keyed) return;
    const foreign = foreignIds(w, mode);
    for (const p of req.op.params.filter((x) => x.in === "path" && x.name !== "handle")) {
      const value = req.parts.path[p.name];
      if (value === undefined || !foreign.has(value.toLowerCase())) continue;
      assert.ok(res.statusCode >= 400, `another account's ${p.name} was served: ${describeRequest(req)} → ${res.statusCode} ${clip(res.body, 300)}`);
      const missing = await send(t, withPath(req, p.name, "01900000-0000-7000-8000-000000000000"));
      assert.equal(res.statusCode, missing.statusCode, `foreign vs missing ${p.name}: ${describeRequest(req)}: ${res.body} vs ${missing.body}`);
      assert.equal(blank(res), blank(missing), `foreign vs missing ${p.name} bodies differ: ${describeRequest(req)}`);
    }
    const body = req.parts.body as Record<string, unknown> | undefined;
    if (body && typeof body === "object") {
      const refs = [body.conversation_id, body.reply_to, ...(Array.isArray(body.attachment_ids) ? body.attachment_ids : [])];
      if (refs.some((r) => typeof r === "string" && foreign.has(r.toLowerCase()))) {
        assert.ok(res.statusCode >= 400, `a foreign id in the body was accepted: ${describeRequest(req)} → ${res.statusCode} ${clip(res.body, 300)}`);
      }
    }
  }

  /** ensure_resource_availability and use_after_free (Schemathesis checks). */
  async function readBack(req: FuzzRequest, data: unknown, mode: Mode): Promise<void> {
    const paths: Record<string, string> = {
      "POST /v1/messages": "/v1/messages/",
      "POST /v1/test_helpers/inbound": "/v1/messages/",
      "POST /v1/chats": "/v1/chats/",
      "POST /v1/webhooks": "/v1/webhooks/",
      "POST /v1/attachments/presign": "/v1/attachments/",
      "POST /v1/attachments": "/v1/attachments/",
    };
    // What an answer shows is what was stored: reading it back at once gives the same object.
    const sameShape = new Set(["POST /v1/messages", "POST /v1/test_helpers/inbound", "POST /v1/chats", "POST /v1/webhooks", "PATCH /v1/webhooks/{id}", "PATCH /v1/messages/{id}"]);
    const base = paths[req.op.id] ?? (req.op.method === "PATCH" ? req.op.path.replace("{id}", "") : undefined);
    const items = Array.isArray(data) ? data : [data];
    if (base) {
      for (const item of items) {
        const id = String((item as { id?: unknown }).id);
        const res = await t.call(w.own[mode].key, "GET", base + id);
        assert.equal(res.statusCode, 200, `created by ${describeRequest(req)} but GET ${base}${id} → ${res.statusCode} ${res.body}`);
        if (sameShape.has(req.op.id)) {
          const { secret: _secret, ...answered } = item as Record<string, unknown>;
          assert.deepEqual((res.json() as { data: unknown }).data, answered, `${describeRequest(req)} answered one object, GET ${base}${id} reads back another`);
        }
      }
    }
    if (req.op.id === "DELETE /v1/webhooks/{id}") {
      const res = await t.call(w.own[mode].key, "GET", `/v1/webhooks/${req.parts.path.id}`);
      assert.equal(res.statusCode, 404, `deleted, yet GET → ${res.statusCode}`);
    }
  }

  test("P02/P08: near-valid requests (one thing made wrong) are refused with a 4xx, never accepted, never a 5xx", async () => {
    const mutated = () =>
      valid().chain(({ op, mode, parts }) => mutation(byId(op), gen(mode, byId(op))).map((m) => ({ op, mode, parts: m.apply(parts), name: m.name })));
    await fc.assert(
      fc.asyncProperty(mutated(), fc.nat(), async ({ op: id, mode, parts, name }, n) => {
        const op = byId(id);
        await maybeTick(n);
        const req = toRequest(op, parts, name, auth(mode));
        let res: LightMyRequestResponse;
        try {
          res = await send(t, req);
        } catch (err) {
          // The HTTP layer itself refuses some header values (control characters): nothing reached the app.
          if (/Invalid character in header|ERR_INVALID_CHAR/.test(String(err))) return;
          throw err;
        }
        const v = oracle.check(req, res, { testOnlyLive: op.testOnly && mode === "live" });
        if (v.status >= 200 && v.status < 300) track(w, mode, op.id, req.parts.path, v.body?.data);
      }),
      params(scaled(1.5)),
    );
  });

  test("P04: every keyed operation answers 401 without a valid key (403 for an inactive account), in the error envelope", async () => {
    const c = await t.seedAccount("Fuzz gone");
    await t.deactivate(c.id);
    const r = await t.seedAccount("Fuzz revoked");
    await t.revoke(r.testKeyId);
    const variants: [string, Record<string, string>, number][] = [
      ["no Authorization", {}, 401],
      ["Bearer and nothing", { authorization: "Bearer" }, 401],
      ["an unknown key", { authorization: "Bearer sk_test_000000000000000000000000000000" }, 401],
      ["a malformed key", { authorization: "Bearer sk_nope" }, 401],
      ["three words", { authorization: `Bearer ${w.a.testKey} x` }, 401],
      ["another scheme", { authorization: `Token ${w.a.testKey}` }, 401],
      ["a revoked key", { authorization: `Bearer ${r.testKey}` }, 401],
      ["the key in the query only", {}, 401],
      ["an inactive account's test key", { authorization: `Bearer ${c.testKey}` }, 403],
      ["an inactive account's live key", { authorization: `Bearer ${c.liveKey}` }, 403],
    ];
    const keyed = ops.filter((op) => op.keyed);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...keyed.map((op) => op.id)).chain((id) => fc.tuple(fc.constant(id), validParts(byId(id), gen("test", byId(id))), fc.constantFrom(...variants))),
        async ([id, parts, [label, headers, status]]) => {
          const op = byId(id);
          const req = toRequest(op, label.includes("query") ? { ...parts, rawQuery: `api_key=${w.a.testKey}` } : parts, `auth: ${label}`, headers);
          const res = await send(t, req);
          const v = oracle.check(req, res, { kind: "unknown" });
          assert.equal(res.statusCode, status, `${label}: ${describeRequest(req)} → ${res.statusCode} ${clip(res.body, 300)}`);
          assert.equal(v.code, status === 401 ? "unauthorized" : "forbidden");
        },
      ),
      params(scaled(0.5, keyed.length)),
    );
  });

  test("P05: every other method on a documented path is 405 with an Allow of the documented methods", async () => {
    const byPath = new Map<string, Operation[]>();
    for (const op of ops) byPath.set(op.path, [...(byPath.get(op.path) ?? []), op]);
    for (const [path, pathOps] of byPath) {
      const documented = new Set(pathOps.map((o) => o.method));
      const url = path.replace(/\{(\w+)\}/g, (_m, p: string) => (p === "handle" ? "%2B15557770101" : "01900000-0000-7000-8000-000000000000"));
      // Another template may serve the same URL with that method (GET /v1/attachments/presign is GET /v1/attachments/{id}).
      const servedElsewhere = (method: string) =>
        ops.some((o) => o.method === method && o.path !== path && new RegExp(`^${o.path.replace(/\{\w+\}/g, "[^/]+")}$`).test(url));
      for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].filter((m) => !documented.has(m) && !servedElsewhere(m))) {
        const res = await t.call(w.a.testKey, method, url);
        assert.equal(res.statusCode, 405, `${method} ${url}: ${res.statusCode} ${res.body}`);
        const allow = new Set(String(res.headers.allow).split(", "));
        for (const m of documented) assert.ok(allow.has(m), `${method} ${url}: Allow ${res.headers.allow} lacks ${m}`);
        for (const m of allow) assert.ok(documented.has(m) || (m === "HEAD" && documented.has("GET")), `${method} ${url}: Allow ${res.headers.allow} has the undocumented ${m}`);
        oracle.check(toRequest(pathOps[0] as Operation, { path: {}, query: {} }, `${method} (unsupported)`, {}), res, { kind: "unknown", routed: false });
      }
    }
  });

  test("BOLA: another account's or the other mode's id answers exactly like a missing one (404), on every operation with an id", async () => {
    const withIds = ops.filter((op) => op.keyed && op.params.some((p) => p.in === "path" && (p.name === "id" || p.name === "delivery_id")));
    await fc.assert(
      fc.asyncProperty(
        target((op) => withIds.includes(op)).chain(([id, mode]) => fc.tuple(fc.constant(id), fc.constant(mode), validParts(byId(id), gen(mode, byId(id))), fc.constantFrom(...foreignIds(w, mode)))),
        async ([id, mode, parts, foreignId]) => {
          const op = byId(id);
          const name = op.params.some((p) => p.name === "delivery_id") && foreignId.length % 2 === 0 ? "delivery_id" : "id";
          const req = toRequest(op, { ...parts, path: { ...parts.path, [name]: foreignId } }, `foreign path.${name}`, auth(mode));
          const res = await send(t, req);
          oracle.check(req, res, { testOnlyLive: op.testOnly && mode === "live" });
          await bola(req, res, mode);
          if (!op.body && !(op.testOnly && mode === "live") && oracle.classifier.classify(req).kind === "valid") {
            assert.equal(res.statusCode, 404, `${describeRequest(req)} → ${res.statusCode} ${res.body}`);
          }
        },
      ),
      params(scaled(0.5, 20)),
    );
  });

  test("ids are case-insensitive: an upper-case id never 404s where the lower-case one does not", async () => {
    const bodyIds = ["POST /v1/messages", "POST /v1/test_helpers/inbound", "POST /v1/test_helpers/group_changes"];
    const withIds = ops.filter((op) => op.keyed && (op.params.some((p) => p.in === "path" && p.name === "id") || bodyIds.includes(op.id)));
    await fc.assert(
      fc.asyncProperty(
        target((op) => withIds.includes(op)).chain(([id]) => fc.tuple(fc.constant(id), fc.constant<Mode>("test"), validParts(byId(id), gen("test", byId(id))))),
        async ([id, mode, parts]) => {
          const op = byId(id);
          const upper = (v: unknown) => (typeof v === "string" ? v.toUpperCase() : v);
          const body = parts.body as Record<string, unknown> | undefined;
          const upperBody = body && typeof body === "object" && !Array.isArray(body)
            ? {
                ...body,
                ...(body.reply_to ? { reply_to: upper(body.reply_to) } : {}),
                ...(body.conversation_id ? { conversation_id: upper(body.conversation_id) } : {}),
                ...(Array.isArray(body.attachment_ids) ? { attachment_ids: body.attachment_ids.map(upper) } : {}),
              }
            : parts.body;
          const upperPath = Object.fromEntries(Object.entries(parts.path).map(([k, v]) => [k, k === "handle" ? v : v.toUpperCase()]));
          const up = toRequest(op, { ...parts, path: upperPath, body: upperBody }, "upper-case ids", auth(mode));
          const upRes = await send(t, up);
          oracle.check(up, upRes);
          if (upRes.statusCode !== 404) return; // a 404 changed nothing, so the lower-case request sees the same state
          const low = toRequest(op, parts, "lower-case ids", auth(mode));
          const lowRes = await send(t, low);
          oracle.check(low, lowRes);
          assert.equal(lowRes.statusCode, 404, `${describeRequest(up)} → 404 ${upRes.body}, but lower case → ${lowRes.statusCode} ${clip(lowRes.body, 200)}`);
        },
      ),
      params(scaled(0.5, 20)),
    );
  });

  test("coverage: the generators reach success on the main operations", (tt) => {
    const lines = [...oracle.seen].sort(([a], [b]) => a.localeCompare(b)).map(([id, statuses]) => `${id}: ${[...statuses].sort(([a], [b]) => a - b).map(([s, k]) => `${s}×${k}`).join(" ")}`);
    tt.diagnostic(`statuses seen\n${lines.join("\n")}`);
    if (RUNS < 100) return;
    for (const id of ["POST /v1/messages", "GET /v1/messages/{id}", "POST /v1/webhooks", "PATCH /v1/webhooks/{id}"]) {
      const ok = [...(oracle.seen.get(id) ?? new Map<number, number>())].some(([s]) => s >= 200 && s < 300);
      assert.ok(ok, `${id} never succeeded: the generators no longer reach it`);
    }
  });
});

// ───────────────────────────── P06: stateful model ─────────────────────────────

type Status = "scheduled" | "queued" | "sending" | "sent" | "delivered" | "read" | "failed" | "canceled";
const RANK: Partial<Record<Status, number>> = { scheduled: 0, queued: 1, sending: 2, sent: 3, delivered: 4, read: 5 };

interface MMessage {
  id: string;
  to: string;
  status: Status;
  channel: string | null;
  sentAt: number | null;
  text: string | null;
  unsent: boolean;
  edits: number;
  reactions: Set<string>;
}

interface MHook {
  id: string;
  url: string;
  events: string[] | null;
  enabled: boolean;
  deleted: boolean;
}

interface Model {
  messages: MMessage[];
  hooks: MHook[];
}

interface Real {
  t: TestApp;
  key: string;
  from: string;
}

interface WireMessage {
  id: string;
  status: Status;
  channel: string | null;
  text: string | null;
  sent_at: string | null;
  edited_at: string | null;
  unsent_at: string | null;
  to: string;
  from_handle: string;
  reactions: { reaction: string; handle: string }[];
}

interface WireHook {
  id: string;
  url: string;
  events: string[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  secret?: string;
}

const MIN = 60_000;
type Cmd = fc.AsyncCommand<Model, Real, false>;

/** Commands run, by name: the model run reports what it exercised. */
const ran = new Map<string, number>();
const count = (cmd: Cmd) => {
  const name = String(cmd).replace(/\(.*$/, "");
  ran.set(name, (ran.get(name) ?? 0) + 1);
};

/** Outcomes seen by the model run, e.g. "Edit→200". */
const outcomes = new Map<string, number>();

function expectStatus(res: LightMyRequestResponse, status: number, what: string, code?: string): void {
  const key = `${what.replace(/\(.*$/, "")}→${res.statusCode}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  assert.equal(res.statusCode, status, `${what}: expected ${status}${code ? ` ${code}` : ""}, got ${res.statusCode} ${res.body}`);
  if (code) assert.equal((res.json() as { error?: string }).error, code, `${what}: ${res.body}`);
}

const pick = <T>(xs: T[], n: number): T => xs[n % xs.length] as T;

class Send implements Cmd {
  constructor(readonly to: string, readonly text: string, readonly laterMs: number | null, readonly idem: boolean) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const body: Record<string, unknown> = { from_handle: r.from, to: this.to, text: this.text };
    if (this.laterMs !== null) body.send_at = new Date(r.t.clock.now() + this.laterMs).toISOString();
    const headers: Record<string, string> = this.idem ? { "idempotency-key": `send-${r.t.clock.now()}-${m.messages.length}` } : {};
    const res = await r.t.call(r.key, "POST", "/v1/messages", body, headers);
    expectStatus(res, 202, String(this));
    const msg = (res.json() as { data: WireMessage }).data;
    assert.equal(msg.status, this.laterMs !== null && this.laterMs > 0 ? "scheduled" : "queued");
    assert.equal(msg.text, this.text);
    if (this.idem) {
      const again = await r.t.call(r.key, "POST", "/v1/messages", body, headers);
      expectStatus(again, 200, `${this} replayed`);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal((again.json() as { data: WireMessage }).data.id, msg.id, "a replay made another message");
    }
    m.messages.push({ id: msg.id, to: this.to, status: msg.status, channel: null, sentAt: null, text: this.text, unsent: false, edits: 0, reactions: new Set() });
  }
  toString = () => `Send(${this.to}, ${JSON.stringify(this.text)}${this.laterMs !== null ? `, +${this.laterMs}ms` : ""}${this.idem ? ", idem" : ""})`;
}

/** Time passes: the engine runs, then every message is read back and held to the model. */
class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await elapse(r.t, this.ms, Math.max(250, Math.ceil(this.ms / 12)));
    const res = await r.t.call(r.key, "GET", "/v1/messages?direction=outbound&limit=100");
    expectStatus(res, 200, "list messages");
    const listed = (res.json() as { data: WireMessage[] }).data;
    assert.deepEqual(listed.map((x) => x.id).sort(), m.messages.map((x) => x.id).sort(), "the list is not exactly the messages sent");
    const byId = new Map(listed.map((x) => [x.id, x]));
    for (const mm of m.messages) {
      const now = byId.get(mm.id) as WireMessage;
      assertForward(mm, now.status);
      // The simulator's scripts (api.md §5): what each recipient can and cannot reach.
      if (mm.to === SIM.fails) assert.ok(!["sent", "delivered", "read"].includes(now.status), `${mm.to} got ${now.status}`);
      if (mm.to === SIM.neverDelivered) assert.ok(!["delivered", "read"].includes(now.status), `${mm.to} got ${now.status}`);
      if (mm.to === SIM.smsOnly) {
        assert.notEqual(now.status, "read", "SMS has no read receipts");
        if (now.channel !== null) assert.equal(now.channel, "sms");
      }
      if (now.status === "failed" && mm.to === SIM.fails) assert.equal((now as unknown as { error: { code: string } }).error.code, "undeliverable");
      assert.equal(now.text, mm.unsent ? null : mm.text, `text of ${mm.id}`);
      mm.status = now.status;
      mm.channel = now.channel;
      mm.sentAt = now.sent_at ? Date.parse(now.sent_at) : null;
    }
  }
  toString = () => `Advance(${this.ms}ms)`;
}

function assertForward(mm: MMessage, next: Status): void {
  const prev = mm.status;
  if (prev === next) return;
  const a = RANK[prev];
  const b = RANK[next];
  const ok = (a !== undefined && b !== undefined && b > a) || (next === "failed" && a !== undefined) || (next === "canceled" && (prev === "queued" || prev === "scheduled"));
  assert.ok(ok, `message ${mm.id} to ${mm.to} moved back: ${prev} → ${next}`);
}

class Edit implements Cmd {
  constructor(readonly n: number, readonly text: string) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "PATCH", `/v1/messages/${mm.id}`, { text: this.text });
    const local = mm.status === "queued" || mm.status === "scheduled";
    const onDevice = ["sent", "delivered", "read"].includes(mm.status) && !mm.unsent && mm.channel !== "sms" &&
      r.t.clock.now() - (mm.sentAt ?? 0) <= 15 * MIN && mm.edits < 5;
    if (!local && !onDevice) return expectStatus(res, 409, `${this} of a ${mm.status}${mm.unsent ? " unsent" : ""} ${mm.channel} message`, "conflict");
    expectStatus(res, 200, `${this} of a ${mm.status} message`);
    const data = (res.json() as { data: WireMessage }).data;
    assert.equal(data.text, this.text);
    assert.equal(data.status, mm.status, "an edit changed the status");
    assert.equal(data.edited_at !== null, onDevice || mm.edits > 0, "edited_at");
    mm.text = this.text;
    if (onDevice) mm.edits++;
  }
  toString = () => `Edit(#${this.n}, ${JSON.stringify(this.text)})`;
}

class Unsend implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "DELETE", `/v1/messages/${mm.id}`);
    if (mm.status === "queued" || mm.status === "scheduled") {
      expectStatus(res, 200, `${this} of a ${mm.status} message`);
      assert.equal((res.json() as { data: WireMessage }).data.status, "canceled");
      mm.status = "canceled";
      return;
    }
    const can = ["sent", "delivered", "read"].includes(mm.status) && !mm.unsent && mm.channel !== "sms" &&
      (mm.channel !== "imessage" || r.t.clock.now() - (mm.sentAt ?? 0) <= 2 * MIN);
    if (!can) return expectStatus(res, 409, `${this} of a ${mm.status}${mm.unsent ? " unsent" : ""} ${mm.channel} message`, "conflict");
    expectStatus(res, 200, `${this} of a ${mm.status} message`);
    const data = (res.json() as { data: WireMessage }).data;
    assert.ok(data.unsent_at, "unsent_at");
    assert.equal(data.text, null);
    assert.equal(data.status, mm.status, "an unsend changed the status");
    mm.unsent = true;
  }
  toString = () => `Unsend(#${this.n})`;
}

class React implements Cmd {
  constructor(readonly n: number, readonly reaction: string, readonly remove: boolean) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "POST", `/v1/messages/${mm.id}/reactions`, { reaction: this.reaction, remove: this.remove });
    const what = `${this} on a ${mm.status}${mm.unsent ? " unsent" : ""} ${mm.channel} message`;
    if (mm.unsent || mm.channel === "sms" || (mm.status !== "delivered" && mm.status !== "read")) return expectStatus(res, 409, what, "conflict");
    if (!(TAPBACKS as readonly string[]).includes(this.reaction)) return expectStatus(res, 400, what, "invalid_request");
    expectStatus(res, 200, what);
    if (this.remove) mm.reactions.delete(this.reaction);
    else mm.reactions.add(this.reaction);
    const ours = (res.json() as { data: WireMessage }).data.reactions.filter((x) => x.handle === r.from).map((x) => x.reaction).sort();
    assert.deepEqual(ours, [...mm.reactions].sort(), `${what}: our reactions`);
  }
  toString = () => `React(#${this.n}, ${this.reaction}${this.remove ? ", remove" : ""})`;
}

class Retry implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "POST", `/v1/messages/${mm.id}/retry`);
    if (mm.status !== "failed") return expectStatus(res, 409, `${this} of a ${mm.status} message`, "conflict");
    expectStatus(res, 202, String(this));
    assert.equal((res.json() as { data: WireMessage }).data.status, "queued");
    mm.status = "queued";
  }
  toString = () => `Retry(#${this.n})`;
}

const HOOK_URLS = ["https://hooks.example.com/a", "http://api.example.com:8080/in?x=1", "https://HOOKS.example.com/%7Eb", "https://bad.example.net/x", "http://10.0.0.1/"];
const EVENTS = ["message.sent", "message.delivered", "message.failed", "message.received", "webhook.test"];
const normalUrl = (u: string) => new URL(u).href;
const refused = (u: string) => u.includes("example.net") || u.includes("10.0.0.1");

function assertHook(got: WireHook, h: MHook, what: string): void {
  assert.equal(got.id, h.id, what);
  assert.equal(got.url, h.url, `${what}: url`);
  assert.deepEqual(got.events, h.events, `${what}: events`);
  assert.equal(got.enabled, h.enabled, `${what}: enabled`);
  assert.equal(got.disabled_reason, h.enabled ? null : "manual", `${what}: disabled_reason`);
}

class HookCreate implements Cmd {
  constructor(readonly url: string, readonly events: string[] | null) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await r.t.call(r.key, "POST", "/v1/webhooks", { url: this.url, ...(this.events ? { events: this.events } : {}) });
    if (refused(this.url)) return expectStatus(res, 400, String(this), "invalid_url");
    expectStatus(res, 201, String(this));
    const got = (res.json() as { data: WireHook }).data;
    assert.match(String(got.secret), /^whsec_/);
    const h: MHook = { id: got.id, url: normalUrl(this.url), events: this.events ? [...new Set(this.events)] : null, enabled: true, deleted: false };
    assertHook(got, h, String(this));
    m.hooks.push(h);
  }
  toString = () => `HookCreate(${this.url}, ${JSON.stringify(this.events)})`;
}

class HookGet implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.hooks.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const h = pick(m.hooks, this.n);
    const res = await r.t.call(r.key, "GET", `/v1/webhooks/${h.id}`);
    if (h.deleted) return expectStatus(res, 404, `${this} of a deleted endpoint`, "not_found");
    expectStatus(res, 200, String(this));
    const got = (res.json() as { data: WireHook }).data;
    assert.equal(got.secret, undefined, "a read shows the secret");
    assertHook(got, h, String(this));
  }
  toString = () => `HookGet(#${this.n})`;
}

class HookPatch implements Cmd {
  constructor(readonly n: number, readonly changes: { url?: string; events?: string[] | null; enabled?: boolean }) {}
  check = (m: Readonly<Model>) => m.hooks.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const h = pick(m.hooks, this.n);
    const res = await r.t.call(r.key, "PATCH", `/v1/webhooks/${h.id}`, this.changes);
    if (this.changes.url !== undefined && refused(this.changes.url)) return expectStatus(res, 400, String(this), "invalid_url");
    if (h.deleted) return expectStatus(res, 404, `${this} of a deleted endpoint`, "not_found");
    expectStatus(res, 200, String(this));
    if (this.changes.url !== undefined) h.url = normalUrl(this.changes.url);
    if (this.changes.events !== undefined) h.events = this.changes.events ? [...new Set(this.changes.events)] : null;
    if (this.changes.enabled !== undefined) h.enabled = this.changes.enabled;
    assertHook((res.json() as { data: WireHook }).data, h, String(this));
  }
  toString = () => `HookPatch(#${this.n}, ${JSON.stringify(this.changes)})`;
}

class HookDelete implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.hooks.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const h = pick(m.hooks, this.n);
    const res = await r.t.call(r.key, "DELETE", `/v1/webhooks/${h.id}`);
    if (h.deleted) return expectStatus(res, 404, `${this} of a deleted endpoint`, "not_found");
    expectStatus(res, 200, String(this));
    h.deleted = true;
    const gone = await r.t.call(r.key, "GET", `/v1/webhooks/${h.id}`);
    expectStatus(gone, 404, "GET after DELETE", "not_found");
  }
  toString = () => `HookDelete(#${this.n})`;
}

class HookList implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await r.t.call(r.key, "GET", "/v1/webhooks?limit=100");
    expectStatus(res, 200, "list webhooks");
    const got = (res.json() as { data: WireHook[] }).data;
    const live = m.hooks.filter((h) => !h.deleted).reverse();
    assert.deepEqual(got.map((x) => x.id), live.map((h) => h.id), "the list is not the live endpoints, newest first");
    got.forEach((g, i) => {
      assert.equal(g.secret, undefined, "a list shows secrets");
      assertHook(g, live[i] as MHook, "listed");
    });
  }
  toString = () => "HookList";
}

const MODEL_RECIPIENTS = [SIM.smsOnly, SIM.fails, SIM.neverDelivered, SIM.echoes, SIM.reactsLove, SIM.typesThenReplies, "+15557779999", "+15557779998"];
const text = fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" });
const commands = [
  fc.tuple(fc.constantFrom(...MODEL_RECIPIENTS), text, fc.option(fc.constantFrom(0, 1500, 3 * 86_400_000), { freq: 4 }), fc.boolean()).map(([to, tx, later, idem]) => new Send(to, tx, later, idem)),
  fc.constantFrom(300, 1000, 2500, 10_000, 2 * MIN).map((ms) => new Advance(ms)),
  fc.tuple(fc.nat(), text).map(([n, tx]) => new Edit(n, tx)),
  fc.nat().map((n) => new Unsend(n)),
  fc.tuple(fc.nat(), fc.constantFrom(...TAPBACKS, "👍", "nope"), fc.boolean()).map(([n, re, rm]) => new React(n, re, rm)),
  fc.nat().map((n) => new Retry(n)),
  fc.tuple(fc.constantFrom(...HOOK_URLS), fc.option(fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 4 }), { nil: null })).map(([u, e]) => new HookCreate(u, e)),
  fc.nat().map((n) => new HookGet(n)),
  fc.tuple(
    fc.nat(),
    fc.record(
      { url: fc.constantFrom(...HOOK_URLS), events: fc.option(fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 3 }), { nil: null }), enabled: fc.boolean() },
      { requiredKeys: [] },
    ),
  ).map(([n, c]) => new HookPatch(n, c)),
  fc.nat().map((n) => new HookDelete(n)),
  fc.constant(new HookList()),
];

/** The command, counted when it runs (check() passed). */
function counted(cmd: Cmd): Cmd {
  return { check: (m) => cmd.check(m), run: async (m, r) => { count(cmd); await cmd.run(m, r); }, toString: () => String(cmd) };
}

describe("P06: stateful model of messages and webhook endpoints (fc.commands)", () => {
  let t: TestApp;
  let handle = 0;
  before(async () => {
    t = await fuzzApp();
  });
  after(() => closeApp(t));

  test("the server follows the model: what exists, statuses only move forward, the 409 rules, deleted endpoints 404, lists", async (tt) => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: "max" }), async (cmds) => {
        const acct = await t.seedAccount(`Model ${handle}`);
        const from = `+1555888${String(handle++).padStart(4, "0")}`;
        await t.addNumber(acct.id, from, "imessage,sms");
        await fc.asyncModelRun(() => ({ model: { messages: [], hooks: [] }, real: { t, key: acct.testKey, from } }), [...cmds].map(counted));
      }),
      params(scaled(0.12, 4)),
    );
    tt.diagnostic(`commands run: ${[...ran].map(([k, v]) => `${k}×${v}`).join(" ")}`);
    tt.diagnostic(`outcomes: ${[...outcomes].sort().map(([k, v]) => `${k}×${v}`).join(" ")}`);
  });
});

// ───────────────────────────── P07: races ─────────────────────────────

describe("P07: races (fc.scheduler)", () => {
  let t: TestApp;
  let acct: Awaited<ReturnType<TestApp["seedAccount"]>>;
  const FROM = "+15557770301";
  let seq = 0;

  before(async () => {
    t = await fuzzApp();
    acct = await t.seedAccount("Races");
    await t.addNumber(acct.id, FROM, "imessage,sms");
  });
  after(() => closeApp(t));

  /** Every transaction start and end becomes a point the scheduler orders; requests start when it says. */
  async function race<T>(s: fc.Scheduler, runs: (() => Promise<T>)[]): Promise<T[]> {
    const db = t.db as { transaction: TestApp["db"]["transaction"] };
    const original = db.transaction;
    db.transaction = async <R>(fn: Parameters<typeof original>[0]): Promise<R> => {
      await s.schedule(Promise.resolve(), "tx start");
      const out = (await original(fn)) as R;
      await s.schedule(Promise.resolve(), "tx end");
      return out;
    };
    try {
      const all = Promise.all(runs.map((run, i) => s.schedule(Promise.resolve(), `request ${i}`).then(run)));
      return await s.waitFor(all);
    } finally {
      db.transaction = original;
    }
  }

  const countMessages = async () =>
    Number((await t.db.kysely.selectFrom("messages").select((eb) => eb.fn.countAll<number | string>().as("n")).where("account_id", "=", acct.id).executeTakeFirstOrThrow()).n);

  const creates: Record<string, { url: string; body: () => unknown; status: number; count?: () => Promise<number> }> = {
    message: { url: "/v1/messages", body: () => ({ from_handle: FROM, to: "+15557779999", text: `race ${seq}` }), status: 202, count: countMessages },
    inbound: { url: "/v1/test_helpers/inbound", body: () => ({ from_handle: FROM, remote_handle: "+15557776666", text: `in ${seq}` }), status: 201, count: countMessages },
    webhook: { url: "/v1/webhooks", body: () => ({ url: `https://hooks.example.com/${seq}` }), status: 201 },
    presign: { url: "/v1/attachments/presign", body: () => ({ filename: "r.bin", content_type: "application/octet-stream" }), status: 201 },
  };

  test("two identical requests with one Idempotency-Key: one resource, the other a replay of it or 409 idempotency_key_in_use", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.constantFrom(...Object.keys(creates)), fc.integer({ min: 2, max: 3 }), fc.boolean(), async (s, which, n, rotated) => {
        const c = creates[which] as (typeof creates)[string];
        seq++;
        const body = c.body();
        const key = `race-${seq}`;
        const second = rotated ? await t.newKey(acct.id, "test") : acct.testKey; // any key of the account shares the namespace
        const before = c.count ? await c.count() : 0;
        const results = await race(s, Array.from({ length: n }, (_v, i) => () => t.call(i === 1 ? second : acct.testKey, "POST", c.url, body, { "idempotency-key": key })));
        const where = () => `${which}: ${results.map((r) => `${r.statusCode} ${clip(r.body, 160)}`).join(" | ")}\n${s.report().map((x) => x.label).join(", ")}`;
        for (const r of results) assert.ok([c.status, 200, 409].includes(r.statusCode), `unexpected status: ${where()}`);
        assert.equal(results.filter((r) => r.statusCode === c.status).length, 1, `not exactly one ${c.status}: ${where()}`);
        const ids = new Set(results.filter((r) => r.statusCode < 300).map((r) => (r.json() as { data: { id: string } }).data.id));
        assert.equal(ids.size, 1, `two resources for one key: ${where()}`);
        for (const r of results) {
          if (r.statusCode === 200) assert.equal(r.headers["idempotent-replayed"], "true", where());
          if (r.statusCode === 409) {
            assert.equal((r.json() as { error: string }).error, "idempotency_key_in_use", where());
            assert.equal(r.headers["retry-after"], "1", where());
          }
        }
        if (c.count) assert.equal((await c.count()) - before, 1, `messages created: ${where()}`);
        const replay = await t.call(acct.testKey, "POST", c.url, body, { "idempotency-key": key });
        assert.equal(replay.statusCode, 200, `a later retry: ${replay.statusCode} ${replay.body}`);
        assert.equal((replay.json() as { data: { id: string } }).data.id, [...ids][0]);
        // Stay under the 50 endpoints an account may have.
        if (which === "webhook") assert.equal((await t.call(acct.testKey, "DELETE", `/v1/webhooks/${[...ids][0]}`)).statusCode, 200);
      }),
      params(scaled(0.25, 10)),
    );
  });

  test("sends racing for one attachment: exactly one claims it, the others 400 invalid_attachments", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(fc.constantFrom("send", "send-upper", "send-keyed", "inbound"), { minLength: 2, maxLength: 3 }), async (s, racers) => {
        seq++;
        const body = multipart([{ filename: "race.txt", type: "text/plain", data: Buffer.from(`race ${seq}`) }]);
        const up = await t.app.inject({ method: "POST", url: "/v1/attachments", headers: { authorization: `Bearer ${acct.testKey}`, ...body.headers }, payload: body.payload });
        assert.equal(up.statusCode, 201, up.body);
        const att = ((up.json() as { data: { id: string }[] }).data[0] as { id: string }).id;
        const before = await countMessages();
        const results = await race(
          s,
          racers.map((kind, i) => () => {
            const ids = [kind === "send-upper" ? att.toUpperCase() : att];
            if (kind === "inbound") return t.call(acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: "+15557776666", attachment_ids: ids });
            const headers: Record<string, string> = kind === "send-keyed" ? { "idempotency-key": `att-${seq}-${i}` } : {};
            return t.call(acct.testKey, "POST", "/v1/messages", { from_handle: FROM, to: "+15557779999", text: `claim ${i}`, attachment_ids: ids }, headers);
          }),
        );
        const where = () => `${racers.join(", ")}: ${results.map((r) => `${r.statusCode} ${clip(r.body, 160)}`).join(" | ")}`;
        const won = results.filter((r) => r.statusCode === 201 || r.statusCode === 202);
        assert.equal(won.length, 1, `not exactly one winner: ${where()}`);
        for (const r of results) {
          if (r.statusCode < 300) continue;
          assert.equal(r.statusCode, 400, where());
          assert.equal((r.json() as { error: string }).error, "invalid_attachments", where());
        }
        assert.equal((await countMessages()) - before, 1, `messages created: ${where()}`);
        const winner = ((won[0] as LightMyRequestResponse).json() as { data: { id: string } }).data.id;
        const a = await t.call(acct.testKey, "GET", `/v1/attachments/${att}`);
        assert.equal((a.json() as { data: { message_id: string } }).data.message_id, winner, `the attachment's message: ${where()}`);
      }),
      params(scaled(0.2, 10)),
    );
  });
});
