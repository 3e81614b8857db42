/**
 * The auth contract every authenticated route keeps (style.md practice 14; reliability.md SEC-T01,
 * SEC-T04, SEC-T05), as one reusable suite: `describeAuthContract(route)`.
 *
 * - Missing key, malformed header, bad checksum, unknown (well-formed) key, revoked key, and a
 *   valid key given only as `?api_key=` → 401 `unauthorized`, byte-identical apart from
 *   request_id, with the same header names.
 * - A valid key of an inactive account → 403 `forbidden` (test and live keys alike).
 * - A valid key gets past authentication (the control that keeps the above from passing vacuously).
 * - Routes with `:id`: another account's id, the other mode's id and a missing id → 404
 *   `not_found`, byte-identical apart from request_id, while the owner's own id is not a 404
 *   (and answers exactly `ownStatus` when the route gives one).
 *   A route with `:id` and no `setup` fails: a new resource cannot skip the check.
 * - Test-mode-only routes (`testOnly`, the test helpers): a live key → 403 `forbidden` before
 *   anything else (even with no body), byte-identical whatever the id; the :id half runs with the
 *   test key (another account's and a missing id → the same 404).
 *
 * `routeTable(app)` reads the router's own table, so callers can apply the contract to every route.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import type { Mode } from "../src/db/schema.js";
import { ERRORS, type ErrorCode } from "../src/errors.js";
import { uuidv7 } from "../src/ids.js";
import { generateKey } from "../src/keys/secret.js";
import { buildTestApp, type SeededAccount, type TestApp, type TestAppOptions } from "./helpers.js";

export const REQUEST_ID = /^req_[0-9a-f]{32}$/;

export interface AuthRoute {
  method: string;
  /** A route template; `:id` (or `:<idParam>`) is replaced by ids from `setup` (or `missingId()`). */
  url: string;
  body?: unknown;
  /** For routes with `:id`: makes a resource owned by `owner` in `mode` and returns its id. */
  setup?: (t: TestApp, owner: SeededAccount, mode: Mode) => Promise<string>;
  /** The path parameter that names the resource, when it is not `id` (e.g. `handle`). */
  idParam?: string;
  /** A well-formed id that names nothing (default: a fresh UUIDv7). */
  missingId?: () => string;
  /** The exact status of a call on the owner's own resource (with `body`); else only "not 404". */
  ownStatus?: number;
  /** Test-mode keys only: a live key gets 403 forbidden, whatever the id or body. */
  testOnly?: boolean;
  /** Options of the app the suite boots, e.g. `extraRoutes` for test-only routes. */
  app?: TestAppOptions;
}

/**
 * Asserts the error envelope — status, exactly {error, message, request_id}, the code, and
 * X-Request-Id equal to the body's request_id — and returns the raw body with the id blanked, so
 * bodies can be compared byte for byte.
 */
export function errorBody(res: LightMyRequestResponse, status: number, code: ErrorCode, label = ""): string {
  assert.equal(res.statusCode, status, `${label ? `${label}: ` : ""}expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  const rid = String(res.headers["x-request-id"]);
  assert.match(rid, REQUEST_ID);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ["error", "message", "request_id"]);
  assert.equal(body.error, code);
  assert.equal(typeof body.message, "string");
  assert.equal(body.request_id, rid);
  return res.body.replace(rid, "req_*");
}

/** Response header names, minus the ones that vary per response by nature. */
function headerNames(res: LightMyRequestResponse): string[] {
  return Object.keys(res.headers).filter((h) => h !== "date" && h !== "connection" && h !== "content-length").sort();
}

export interface RouteEntry {
  method: string;
  url: string;
}

/**
 * Every route of the app as (method, template), parsed from the router's own tree
 * (`printRoutes({ commonPrefix: false })`: one line per node, 4 characters of indent per level,
 * the node's path relative to its parent, then its methods in parentheses).
 */
export function routeTable(app: FastifyInstance): RouteEntry[] {
  const out: RouteEntry[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^([│├└─\s]*)(\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? "").length / 4;
    assert.ok(Number.isInteger(depth) && depth >= 1, `unexpected printRoutes line: ${line}`);
    stack.length = depth - 1;
    const url = (stack[depth - 2] ?? "") + m[2];
    stack.push(url);
    for (const method of (m[3] ?? "").split(", ").filter(Boolean)) out.push({ method, url });
  }
  return out;
}

export function describeAuthContract(route: AuthRoute): void {
  const name = `${route.method} ${route.url}`;
  describe(`${name} — auth contract`, () => {
    let t: TestApp;
    let a: SeededAccount;
    before(async () => {
      t = await buildTestApp(route.app);
      a = await t.seedAccount("Owner");
    });
    after(() => t.close());

    const path = (id?: string) => pathOf(route, id);
    const call = (key: string | null, opts: { id?: string; query?: string; headers?: Record<string, string> } = {}) =>
      t.call(key, route.method, path(opts.id) + (opts.query ?? ""), route.body, opts.headers);

    test(`every path parameter other than :${route.idParam ?? "id"} has a value`, () => {
      assert.doesNotMatch(path(), /\/:/, `${name}: fill its other path parameters in the route's url`);
    });

    test("401 unauthorized, byte-identical, for missing, malformed, bad-checksum, unknown, revoked and query-string keys", async () => {
      const r = await t.seedAccount("Revoked");
      await t.revoke(r.testKeyId);
      await t.revoke(r.liveKeyId);
      const last = a.testKey.slice(-1);
      const badChecksum = a.testKey.slice(0, -1) + (last === "A" ? "B" : "A");
      const cases: [string, () => Promise<LightMyRequestResponse>][] = [
        ["missing", () => call(null)],
        ["empty header", () => call(null, { headers: { authorization: "" } })],
        ["scheme only", () => call(null, { headers: { authorization: "Bearer" } })],
        ["other scheme", () => call(null, { headers: { authorization: `Token ${a.testKey}` } })],
        ["not a key", () => call("sk_test_123")],
        ["key of another service", () => call(`ghp_${"a".repeat(36)}`)],
        ["bad checksum", () => call(badChecksum)],
        ["unknown test key", () => call(generateKey("test"))],
        ["unknown live key", () => call(generateKey("live"))],
        ["revoked test key", () => call(r.testKey)],
        ["revoked live key", () => call(r.liveKey)],
        ["valid key only in ?api_key=", () => call(null, { query: `?api_key=${a.testKey}` })],
      ];
      const expected = JSON.stringify({ error: "unauthorized", message: ERRORS.unauthorized.message, request_id: "req_*" });
      let names: string[] | undefined;
      for (const [label, run] of cases) {
        const res = await run();
        assert.equal(errorBody(res, 401, "unauthorized", label), expected, label);
        names ??= headerNames(res);
        assert.deepEqual(headerNames(res), names, `${label}: headers differ from the first 401`);
        assert.ok(!res.body.includes("sk_"), `${label}: the body echoes a key`);
      }
    });

    test("403 forbidden for valid test and live keys of an inactive account", async () => {
      const c = await t.seedAccount("Inactive");
      await t.deactivate(c.id);
      const test = errorBody(await call(c.testKey), 403, "forbidden");
      const live = errorBody(await call(c.liveKey), 403, "forbidden");
      assert.equal(live, test);
    });

    test("a valid test or live key gets past authentication (control)", async () => {
      for (const [mode, key] of [["test", a.testKey], ["live", a.liveKey]] as const) {
        const id = route.setup ? await route.setup(t, a, mode) : undefined;
        const res = await call(key, id ? { id } : {});
        if (route.testOnly && mode === "live") {
          errorBody(res, 403, "forbidden", "live key on a test-mode-only route");
          continue;
        }
        assert.ok(![401, 403].includes(res.statusCode), `${mode} key: ${res.statusCode} ${res.body}`);
        if (id && route.ownStatus !== undefined) assert.equal(res.statusCode, route.ownStatus, `${mode} key on its own resource: ${res.body}`);
        assert.match(String(res.headers["x-request-id"]), REQUEST_ID);
      }
    });

    if (route.testOnly) {
      test("403 forbidden for a live key before validation: no body, a bad body and the valid one answer alike", async () => {
        const expected = errorBody(await call(a.liveKey), 403, "forbidden", "valid body");
        const noBody = await t.call(a.liveKey, route.method, path());
        assert.equal(errorBody(noBody, 403, "forbidden", "no body"), expected);
        const badBody = await t.call(a.liveKey, route.method, path(), { unknown_field: true });
        assert.equal(errorBody(badBody, 403, "forbidden", "bad body"), expected);
      });
    }

    if (route.url.includes(`:${route.idParam ?? "id"}`)) {
      test("404 not_found, byte-identical, for another account's id, the other mode's id and a missing id", async () => {
        await checkNotFoundContract(t, route, a);
      });
    }
  });
}

/**
 * The :id half of the contract (SEC-T01). Exported so a test can show it fails on a leaky route.
 * The owner's own id must not be a 404 (else the route would pass by 404-ing everything).
 */
export async function checkNotFoundContract(t: TestApp, route: AuthRoute, owner: SeededAccount): Promise<void> {
  const name = `${route.method} ${route.url}`;
  const setup = route.setup;
  if (!setup) assert.fail(`${name} has an :id: give it a setup that makes a resource, so the 404 contract covers it`);
  const other = await t.seedAccount("Other");
  const call = (key: string, id: string) => t.call(key, route.method, pathOf(route, id), route.body);
  const checkOwn = async (key: string, id: string, mode: Mode) => {
    const res = await call(key, id);
    assert.notEqual(res.statusCode, 404, `${name}: the owner's own ${mode} id answers 404: ${res.body}`);
    if (route.ownStatus !== undefined) assert.equal(res.statusCode, route.ownStatus, `${name}: the owner's own ${mode} id: ${res.body}`);
  };
  if (route.testOnly) {
    // Test mode only: the test key gets the 404 half; a live key learns nothing about any id.
    const own = await setup(t, owner, "test");
    await checkOwn(owner.testKey, own, "test");
    const missingId = route.missingId?.() ?? uuidv7();
    const missing = errorBody(await call(owner.testKey, missingId), 404, "not_found");
    const foreign = await setup(t, other, "test");
    const label = `${name} with a test key: another account's id`;
    assert.equal(errorBody(await call(owner.testKey, foreign), 404, "not_found", label), missing, label);
    const live = errorBody(await call(owner.liveKey, own), 403, "forbidden", `${name}: live key, own id`);
    for (const [what, id] of [["another account's id", foreign], ["a missing id", missingId]] as const) {
      assert.equal(errorBody(await call(owner.liveKey, id), 403, "forbidden", `${name}: live key, ${what}`), live, `${name}: live key, ${what}`);
    }
    return;
  }
  const own = { test: await setup(t, owner, "test"), live: await setup(t, owner, "live") };
  for (const mode of ["test", "live"] as const) {
    const key = mode === "test" ? owner.testKey : owner.liveKey;
    await checkOwn(key, own[mode], mode);
    const missing = errorBody(await call(key, route.missingId?.() ?? uuidv7()), 404, "not_found");
    const foreign: string = await setup(t, other, mode);
    const cases: [string, string][] = [
      ["another account's id", foreign],
      ["the other mode's id", own[mode === "test" ? "live" : "test"]],
    ];
    for (const [what, id] of cases) {
      const label = `${name} with a ${mode} key: ${what}`;
      assert.equal(errorBody(await call(key, id), 404, "not_found", label), missing, label);
    }
  }
}

/** The route's url with its resource parameter replaced by `id` (default: a missing id). */
function pathOf(route: AuthRoute, id?: string): string {
  return route.url.replace(`:${route.idParam ?? "id"}`, id ?? route.missingId?.() ?? uuidv7());
}
