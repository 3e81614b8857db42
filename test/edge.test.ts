/**
 * The HTTP edge (api.md §1–§2, reliability.md §5 SEC-T04…T07, T11, T18, T20–T23): one envelope and
 * one request id on every kind of response, and the operational routes. Test-only routes under
 * /v1/_edge (registered through `extraRoutes`, behind the real hooks) produce the faults.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { Type } from "typebox";
import { ERRORS, type ErrorCode } from "../src/errors.js";
import { Envelope, ok } from "../src/http/envelope.js";
import { errorBody, REQUEST_ID, routeTable } from "./auth-contract.js";
import { captureLogs, openApiDoc, openApiSchemas, openApiValidator, tableDump } from "./edge-support.js";
import { buildTestApp, type SeededAccount, type TestApp, type TestAppOptions } from "./helpers.js";

const LIMIT = 1024;
const Echo = Type.Object({ n: Type.Integer(), s: Type.Optional(Type.String()) }, { additionalProperties: false });

function edgeRoutes(v1: FastifyInstance): void {
  const hide = { hide: true };
  v1.post("/_edge/echo", { schema: { ...hide, body: Echo, response: { 200: Envelope(Echo) } } }, async (req) => ok(req, req.body));
  v1.get("/_edge/boom", { schema: hide }, async () => {
    throw new Error("SQLITE_CONSTRAINT: UNIQUE failed: api_keys.key_hash at /app/src/db.ts:42");
  });
  v1.get("/_edge/down", { schema: hide }, async () => {
    throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
  });
  v1.get("/_edge/items/:id", { schema: { ...hide, params: Type.Object({ id: Type.String() }) } }, async (req) => ok(req, req.params));
}

/** The success envelope: X-Request-Id equal to the body's request_id, no X-Powered-By. */
function envelope(res: LightMyRequestResponse, status = 200): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.headers["x-powered-by"], undefined);
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.match(String(body.request_id), REQUEST_ID);
  assert.equal(res.headers["x-request-id"], body.request_id);
  return body;
}

/** The error envelope (exactly {error, message, request_id}); returns the parsed body. */
function fail(res: LightMyRequestResponse, status: number, code: ErrorCode): { error: string; message: string } {
  errorBody(res, status, code);
  assert.equal(res.headers["x-powered-by"], undefined);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  return JSON.parse(res.body) as { error: string; message: string };
}

let t: TestApp;
let a: SeededAccount;

/**
 * Each block boots its own app, with the test routes, and closes it at its end: blocks run one
 * after another, so only one test database is alive at a time (on PostgreSQL two live schemas in
 * one process break migrations today: see the report on src/db/migrate.ts).
 */
function freshApp(config: TestAppOptions["config"] = {}): void {
  before(async () => {
    t = await buildTestApp({ config: { BODY_LIMIT_BYTES: LIMIT, ...config }, extraRoutes: edgeRoutes });
    a = await t.seedAccount();
  });
  after(() => t.close());
}

describe("200: the success envelope", () => {
  freshApp();

  test("GET /v1/numbers: {data, has_more, request_id} and X-Request-Id equal to request_id", async () => {
    const body = envelope(await t.call(a.testKey, "GET", "/v1/numbers"));
    assert.deepEqual(Object.keys(body), ["data", "has_more", "request_id"]);
  });

  test("each response gets its own server-made request id", async () => {
    const one = envelope(await t.call(null, "GET", "/healthz"));
    const two = envelope(await t.call(null, "GET", "/healthz"));
    assert.notEqual(one.request_id, two.request_id);
  });

  test("a valid body on a strict route is answered, echoed through its schema", async () => {
    assert.deepEqual(envelope(await t.call(a.testKey, "POST", "/v1/_edge/echo", { n: 1 })).data, { n: 1 });
  });
});

describe("400 invalid_request", () => {
  freshApp();

  const cases: [string, () => Promise<LightMyRequestResponse>, string | null][] = [
    ["malformed JSON", () => t.call(a.testKey, "POST", "/v1/_edge/echo", '{"n": 1,'), "The body is not valid JSON."],
    ["an empty JSON body", () => t.call(a.testKey, "POST", "/v1/_edge/echo", ""), "The JSON body is empty."],
    ["an unknown body field", () => t.call(a.testKey, "POST", "/v1/_edge/echo", { n: 1, x: 2 }), "body has an unknown field 'x'."],
    ["an unknown query field", () => t.call(a.testKey, "POST", "/v1/_edge/echo?x=1", { n: 1 }), "querystring has an unknown field 'x'."],
    ["a wrong type (no coercion)", () => t.call(a.testKey, "POST", "/v1/_edge/echo", { n: "1" }), "body.n must be integer."],
    ["a missing required field", () => t.call(a.testKey, "POST", "/v1/_edge/echo", {}), "body is missing the required field 'n'."],
    ["a non-finite number (1e400)", () => t.call(a.testKey, "POST", "/v1/_edge/echo", '{"n":1e400}'), "body.n must be integer."],
    ["a body that is not an object", () => t.call(a.testKey, "POST", "/v1/_edge/echo", "[1]"), "body must be object."],
    ["a __proto__ key", () => t.call(a.testKey, "POST", "/v1/_edge/echo", '{"n":1,"__proto__":{"x":1}}'), null],
    ["an unknown query field on a public route", () => t.call(null, "GET", "/healthz?x=1"), "querystring has an unknown field 'x'."],
    ["?api_key= next to a valid header (SEC-T05)", () => t.call(a.testKey, "GET", `/v1/numbers?api_key=${a.liveKey}`), null],
  ];
  for (const [what, run, message] of cases) {
    test(`for ${what}`, async () => {
      const res = await run();
      const body = fail(res, 400, "invalid_request");
      if (message !== null) assert.equal(body.message, message);
      assert.ok(!res.body.includes("sk_"), "the body echoes a key");
    });
  }
});

describe("401, 403", () => {
  freshApp();

  test("401 unauthorized without a key, and for a valid key given only as ?api_key= (SEC-T05)", async () => {
    for (const url of ["/v1/numbers", `/v1/numbers?api_key=${a.testKey}`]) {
      assert.equal(fail(await t.call(null, "GET", url), 401, "unauthorized").message, ERRORS.unauthorized.message);
    }
  });

  test("403 forbidden for a valid key of an inactive account", async () => {
    const c = await t.seedAccount("Gone");
    await t.deactivate(c.id);
    fail(await t.call(c.testKey, "GET", "/v1/numbers"), 403, "forbidden");
  });
});

describe("404, 405: routing", () => {
  freshApp();

  test("404 not_found for unknown routes, with or without a key", async () => {
    for (const [key, url] of [[null, "/nope"], [a.testKey, "/v1/nope"], [a.testKey, "/v1/numbers/"]] as const) {
      assert.equal(fail(await t.call(key, "GET", url), 404, "not_found").message, "There is no such route.");
    }
  });

  test("405 method_not_allowed with Allow for another method on a known path (SEC-T18)", async () => {
    for (const [method, url] of [["DELETE", "/v1/numbers"], ["POST", "/v1/numbers"], ["OPTIONS", "/v1/numbers"], ["POST", "/healthz"]]) {
      const res = await t.call(a.testKey, method as string, url as string);
      assert.equal(fail(res, 405, "method_not_allowed").message, `${method} is not allowed on ${url}.`);
      assert.equal(res.headers.allow, "GET, HEAD");
    }
  });

  test("400 invalid_request envelope for a URL that does not decode", async () => {
    fail(await t.call(a.testKey, "GET", "/v1/numbers/%zz"), 400, "invalid_request");
  });
});

describe("413, 415: bodies", () => {
  freshApp();

  const inject = (type: string, payload: string) =>
    t.app.inject({ method: "POST", url: "/v1/_edge/echo", headers: { authorization: `Bearer ${a.testKey}`, "content-type": type }, payload });
  const sized = (bytes: number) => `{"n":1,"s":"${"x".repeat(bytes - 14)}"}`;

  test("413 payload_too_large one byte over BODY_LIMIT_BYTES; exactly the limit is accepted (SEC-T11)", async () => {
    assert.equal(Buffer.byteLength(sized(LIMIT)), LIMIT);
    envelope(await t.call(a.testKey, "POST", "/v1/_edge/echo", sized(LIMIT)));
    fail(await t.call(a.testKey, "POST", "/v1/_edge/echo", sized(LIMIT + 1)), 413, "payload_too_large");
  });

  test("415 unsupported_media_type for XML and form bodies on a JSON route", async () => {
    for (const type of ["application/xml", "application/x-www-form-urlencoded"]) {
      fail(await inject(type, "n=1"), 415, "unsupported_media_type");
    }
  });

  test("415 unsupported_media_type for a text/plain body", async () => {
    fail(await inject("text/plain", '{"n":1}'), 415, "unsupported_media_type");
  });
});

describe("429 rate_limited for a key", () => {
  freshApp();

  test("for a key over its per-minute limit, with Retry-After; allowed again once the window passes", async () => {
    const key = await t.newKey(a.id, "test", 1);
    envelope(await t.call(key, "GET", "/v1/numbers"));
    const res = await t.call(key, "GET", "/v1/numbers");
    fail(res, 429, "rate_limited");
    assert.equal(res.headers["retry-after"], "60");
    t.clock.advance(60_000);
    envelope(await t.call(key, "GET", "/v1/numbers"));
  });
});

describe("429 rate_limited for an address", () => {
  freshApp({ AUTH_FAILURE_LIMIT_PER_MINUTE: 2 });

  test("over its failed-authentication limit, even with a valid key; other addresses unaffected", async () => {
    const from = (ip: string, key: string) => t.app.inject({ url: "/v1/numbers", remoteAddress: ip, headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 2; i++) fail(await from("10.0.0.1", "sk_test_wrong"), 401, "unauthorized");
    const res = await from("10.0.0.1", a.testKey);
    fail(res, 429, "rate_limited");
    assert.equal(res.headers["retry-after"], "30");
    envelope(await from("10.0.0.2", a.testKey));
    t.clock.advance(30_000);
    envelope(await from("10.0.0.1", a.testKey));
  });
});

describe("500, 503: faults", () => {
  freshApp();

  test("500 internal_error with a generic body that carries none of the error's internals (SEC-T20)", async () => {
    const res = await t.call(a.testKey, "GET", "/v1/_edge/boom");
    assert.equal(fail(res, 500, "internal_error").message, ERRORS.internal_error.message);
    for (const leak of ["SQLITE", "/app/", "at ", "Error", ".ts", "api_keys"]) assert.ok(!res.body.includes(leak), `body has ${leak}`);
  });

  test("503 unavailable for a lost database connection (ECONNREFUSED)", async () => {
    fail(await t.call(a.testKey, "GET", "/v1/_edge/down"), 503, "unavailable");
  });
});

describe("503 once the database is closed", () => {
  freshApp();

  test("503 unavailable from /readyz and from /v1 routes; /healthz stays 200", async () => {
    assert.deepEqual(envelope(await t.call(null, "GET", "/readyz")).data, { status: "ready" });
    await t.db.close();
    fail(await t.call(null, "GET", "/readyz"), 503, "unavailable");
    fail(await t.call(a.testKey, "GET", "/v1/numbers"), 503, "unavailable");
    assert.deepEqual(envelope(await t.call(null, "GET", "/healthz")).data, { status: "ok" });
  });
});

describe("X-Request-Id", () => {
  freshApp();

  test("an injected X-Request-Id with CR/LF is not reflected; the server's own id is used (SEC-T22)", async () => {
    for (const foreign of ["a\r\nb", "client-chosen-id"]) {
      let res: LightMyRequestResponse;
      try {
        res = await t.call(a.testKey, "GET", "/v1/numbers", undefined, { "x-request-id": foreign });
      } catch (err) {
        if (foreign.includes("\r")) continue; // the HTTP layer refused the header: nothing to reflect
        throw err;
      }
      const body = envelope(res);
      assert.notEqual(body.request_id, foreign);
      assert.ok(!JSON.stringify(res.headers).includes(foreign));
    }
  });
});

describe("GET /v1/numbers (api.md §5)", () => {
  freshApp();

  test("200 lists only the caller's numbers as exactly {handle, channels, label, status}; each mode sees its own status", async () => {
    const me = await t.seedAccount("Numbers");
    const other = await t.seedAccount("Other");
    await t.addNumber(me.id, "+15555550124", "whatsapp");
    await t.addNumber(me.id, "+15555550123", "sms,imessage", "Support");
    await t.addNumber(other.id, "+15555550199");
    const set = (handle: string, values: { status?: "offline"; test_status?: "offline" }) =>
      t.db.kysely.updateTable("numbers").set(values).where("handle", "=", handle).execute();
    await set("+15555550123", { test_status: "offline" });
    await set("+15555550124", { status: "offline" });
    const support = { handle: "+15555550123", channels: ["imessage", "sms"], label: "Support" };
    const wa = { handle: "+15555550124", channels: ["whatsapp"], label: null };
    const validate = await openApiValidator(t, "/v1/numbers", "get", "200");
    for (const [key, s123, s124] of [[me.testKey, "offline", "online"], [me.liveKey, "online", "offline"]] as const) {
      const body = envelope(await t.call(key, "GET", "/v1/numbers"));
      assert.deepEqual({ ...body, request_id: "" }, {
        data: [{ ...support, status: s123 }, { ...wa, status: s124 }],
        has_more: false,
        request_id: "",
      });
      assert.ok(validate(body), JSON.stringify(validate.errors));
    }
  });

  test("400 for pagination or filter parameters it does not take", async () => {
    fail(await t.call(a.testKey, "GET", "/v1/numbers?limit=10"), 400, "invalid_request");
  });
});

describe("API keys at rest", () => {
  freshApp();

  test("the database stores no plaintext key, only its SHA-256 (SEC-T07)", async () => {
    const s = await t.seedAccount("Stored");
    const dump = await tableDump(t.db);
    assert.ok(dump.includes('"api_keys"'), "the dump covers the key table");
    for (const key of [s.testKey, s.liveKey]) {
      assert.ok(!dump.includes(key.slice(8)), "a key's secret part is stored");
      assert.ok(dump.includes(createHash("sha256").update(key).digest("hex")), "the key's hash is stored");
    }
    assert.doesNotMatch(dump, /sk_(live|test)_[0-9A-Za-z]{5}/);
  });
});

// Each of these boots its own app with a capturing logger.
describe("API keys in logs", () => {
  const KEY_IN_LOG = /sk_(live|test)_[0-9A-Za-z]/;
  test("no key from the Authorization header reaches any log line, even on errors (SEC-T06)", async () => {
    const lines = await captureLogs({ extraRoutes: edgeRoutes }, async (u) => {
      const b = await u.seedAccount();
      await u.revoke(b.liveKeyId);
      await u.call(b.testKey, "GET", "/v1/numbers");
      await u.call(b.liveKey, "GET", "/v1/numbers");
      await u.call(b.testKey, "POST", "/v1/_edge/echo", "{bad");
      await u.call(b.testKey, "GET", "/v1/_edge/boom");
      await u.call(b.testKey, "GET", "/v1/_edge/down");
      await u.call(null, "GET", "/v1/numbers", undefined, { authorization: `Basic ${Buffer.from(`${b.testKey}:`).toString("base64")}` });
      await u.call(b.testKey, "GET", "/v1/numbers", undefined, { "x-request-id": "a\r\nb" });
    });
    assert.ok(lines.some((l) => l.includes('"url":"/v1/numbers"')), "the capture saw the requests");
    assert.ok(lines.some((l) => l.includes("unhandled error")), "the capture saw the 500");
    assert.deepEqual(lines.filter((l) => KEY_IN_LOG.test(l)), []);
    assert.ok(!lines.some((l) => l.includes("a\r\nb") || l.includes("a\\r\\nb")), "an injected X-Request-Id is logged (SEC-T22)");
  });

  test("a key put in the URL is redacted from every log line (SEC-T06)", async () => {
    const lines = await captureLogs({ extraRoutes: edgeRoutes }, async (u) => {
      const b = await u.seedAccount();
      await u.call(null, "GET", `/v1/numbers?api_key=${b.testKey}`);
      await u.call(b.testKey, "GET", `/v1/_edge/boom?key=${b.liveKey}`);
      await u.call(null, "GET", `/nope/${b.liveKey}`);
    });
    assert.ok(lines.some((l) => l.includes("/v1/numbers?api_key=")), "the capture saw the requests");
    assert.deepEqual(lines.filter((l) => KEY_IN_LOG.test(l)), []);
  });
});

describe("operations", () => {
  freshApp();

  test("/metrics: Prometheus text, requests labelled by route template, never by raw URL", async () => {
    envelope(await t.call(a.testKey, "GET", "/v1/_edge/items/abc123secret"));
    fail(await t.call(null, "GET", "/nope/xyz789secret"), 404, "not_found");
    const res = await t.call(null, "GET", "/metrics");
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    assert.match(String(res.headers["x-request-id"]), REQUEST_ID);
    const lines = res.body.split("\n");
    assert.ok(lines.includes('msgbubbles_http_requests_total{method="GET",route="/v1/_edge/items/:id",status="200"} 1'), res.body);
    assert.ok(lines.includes('msgbubbles_http_requests_total{method="GET",route="unmatched",status="404"} 1'), res.body);
    assert.ok(lines.includes('msgbubbles_http_request_duration_seconds_count{method="GET",route="/v1/_edge/items/:id",status="200"} 1'));
    assert.ok(!res.body.includes("secret"), "a raw URL is in the metrics");
  });

  test("/v1/openapi.json: OpenAPI 3.1 whose paths × methods are exactly the app's documented routes (SEC-T23)", async () => {
    const doc = await openApiDoc(t);
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(typeof doc.info.title, "string");
    assert.equal(typeof doc.info.version, "string");
    const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`),
    );
    // Served but deliberately undocumented: the API docs themselves, metrics, device webhooks (for
    // BlueBubbles and WAHA, not API clients; docs/backends.md), and this file's test routes.
    const undocumented = (url: string) =>
      url === "/metrics" || url === "/v1/openapi.json" || url === "/docs" || url.startsWith("/docs/") || url.startsWith("/ingest/") || url.startsWith("/v1/_edge/");
    const served = routeTable(t.app)
      .filter((r) => r.method !== "HEAD" && !undocumented(r.url))
      .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, "{$1}")}`);
    assert.deepEqual(documented.sort(), served.sort());
    assert.ok(documented.includes("GET /v1/numbers"));
    const schemaAt = openApiSchemas(doc);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const statuses = Object.keys(op.responses ?? {});
        assert.ok(statuses.some((s) => s.startsWith("2")), `${method} ${path} documents no success`);
        for (const s of statuses) if (op.responses?.[s]?.content) schemaAt("paths", path, method, "responses", s, "content", "application/json", "schema");
      }
    }
  });

  test("/docs serves the Swagger UI as HTML", async () => {
    const res = await t.call(null, "GET", "/docs");
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers["content-type"]), /^text\/html/);
    assert.match(res.body, /<title>Swagger UI<\/title>/);
    assert.match(String(res.headers["x-request-id"]), REQUEST_ID);
  });
});
