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
 *
 * P06 (the stateful model) is in fuzz-model.test.ts, P07 (races) in fuzz-races.test.ts; the
 * budget in fuzz-budget.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import type { Mode } from "../src/db/schema.js";
import { openApiDoc } from "./edge-support.js";
import { closeApp, fuzzApp } from "./fuzz-app.js";
import { type Generation, validParts } from "./fuzz-arbitraries.js";
import { params, RUNS, SEED, scaled } from "./fuzz-budget.js";
import { hintsFor } from "./fuzz-hints.js";
import { clip, describeRequest, type FuzzRequest, type RequestParts, send, toRequest } from "./fuzz-http.js";
import { mutation } from "./fuzz-mutations.js";
import { type Operation, operationsOf, resolver } from "./fuzz-openapi.js";
import { Oracle } from "./fuzz-oracle.js";
import { foreignIds, seedWorld, track, type World } from "./fuzz-world.js";
import type { TestApp } from "./helpers.js";

/** Operations the fuzzer weights up: where the logic (and the bugs) are. */
const HEAVY = /^(POST|PATCH|DELETE) \/v1\/(messages|webhooks|chats|test_helpers)/;

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
