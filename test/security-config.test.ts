/**
 * OWASP API8 (security misconfiguration) and API9 (inventory): SEC-T20…T23 and the SEC-T15
 * defaults, on an app with the default settings so a wrong default cannot hide behind a test's.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { defaultConfig } from "../src/config.js";
import { ERRORS } from "../src/errors.js";
import { uuidv7 } from "../src/ids.js";
import { addNumber } from "../src/numbers/store.js";
import { REQUEST_ID, routeTable } from "./auth-contract.js";
import { openApiDoc } from "./edge-support.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { ANYONE, assertError } from "./messaging-helpers.js";
import { HOOK_URL, secApp } from "./security-support.js";
import { answer, Receiver } from "./webhook-support.js";

describe("API8 security misconfiguration, API9 inventory (an app with the default settings)", () => {
  let t: TestApp;
  let a: SeededAccount;
  const faults = (v1: FastifyInstance, s: { db: TestApp["db"] }) => {
    const hide = { schema: { hide: true } };
    v1.get("/_sec/sql", hide, async () => sql`select secret_column from no_such_table_sec where id = 'x'`.execute(s.db.kysely));
    v1.get("/_sec/upstream", hide, async () => Promise.reject(Object.assign(new Error("upstream said <html>stack at /srv/app.ts:1</html>"), { statusCode: 502 })));
    v1.get("/_sec/string", hide, async () => Promise.reject("SELECT key_hash FROM api_keys"));
    v1.get("/_sec/down", hide, async () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:5432"), { code: "ECONNREFUSED" })));
  };
  before(async () => {
    t = await secApp({ extraRoutes: faults });
    a = await t.seedAccount();
  });
  after(() => t.close());

  const LEAKS = ["no_such_table", "secret_column", "select", "SELECT", "SQLITE", "relation", "42P01", "at ", ".ts", "/srv", "/work", "upstream", "<html>", "api_keys", "10.1.2.3", "5432", "Error"];

  test("SEC-T20: a real SQL failure, an upstream error and a thrown string are 500 internal_error with the generic message only (edge.test.ts)", async () => {
    for (const url of ["/v1/_sec/sql", "/v1/_sec/upstream", "/v1/_sec/string"]) {
      const res = await t.call(a.testKey, "GET", url);
      assert.equal(assertError(res, 500, "internal_error", url).message, ERRORS.internal_error.message);
      for (const leak of LEAKS) assert.ok(!res.body.includes(leak), `${url}: the body has ${leak}`);
    }
    const down = await t.call(a.testKey, "GET", "/v1/_sec/down");
    assert.equal(assertError(down, 503, "unavailable").message, ERRORS.unavailable.message);
    for (const leak of LEAKS) assert.ok(!down.body.includes(leak), `503: the body has ${leak}`);
  });

  test("SEC-T21 and headers: every kind of answer carries X-Request-Id, X-Content-Type-Options: nosniff, no X-Powered-By, no Server, no CORS grant (regression: nosniff was missing)", async () => {
    const limited = await t.newKey(a.id, "test", 1);
    await t.call(limited, "GET", "/v1/numbers");
    const inactive = await t.seedAccount("Inactive");
    await t.deactivate(inactive.id);
    const idem = { "idempotency-key": "sec-t21" };
    await t.call(a.testKey, "POST", "/v1/webhooks", { url: HOOK_URL }, idem);
    const origin = { origin: "https://evil.example" };
    const cases: [string, () => Promise<LightMyRequestResponse>, number][] = [
      ["200", () => t.call(a.testKey, "GET", "/v1/numbers", undefined, origin), 200],
      ["201", () => t.call(a.testKey, "POST", "/v1/webhooks", { url: HOOK_URL }, origin), 201],
      ["400 malformed JSON", () => t.call(a.testKey, "POST", "/v1/webhooks", "{", origin), 400],
      ["400 URL that does not decode", () => t.call(a.testKey, "GET", "/v1/messages/%zz", undefined, origin), 400],
      ["401", () => t.call(null, "GET", "/v1/numbers", undefined, origin), 401],
      ["403", () => t.call(inactive.testKey, "GET", "/v1/numbers", undefined, origin), 403],
      ["404 route", () => t.call(null, "GET", "/nope", undefined, origin), 404],
      ["404 resource", () => t.call(a.testKey, "GET", `/v1/messages/${uuidv7()}`, undefined, origin), 404],
      ["405", () => t.call(a.testKey, "DELETE", "/v1/numbers", undefined, origin), 405],
      ["413", () => t.call(a.testKey, "POST", "/v1/webhooks", `{"url":"${"a".repeat(1_048_577)}"}`, origin), 413],
      ["415", () => t.app.inject({ method: "POST", url: "/v1/webhooks", headers: { authorization: `Bearer ${a.testKey}`, "content-type": "text/xml", ...origin }, payload: "<x/>" }), 415],
      ["422", () => t.call(a.testKey, "POST", "/v1/webhooks", { url: "http://8.8.8.8/" }, { ...idem, ...origin }), 422],
      ["429", () => t.call(limited, "GET", "/v1/numbers", undefined, origin), 429],
      ["500", () => t.call(a.testKey, "GET", "/v1/_sec/sql", undefined, origin), 500],
      ["503", () => t.call(a.testKey, "GET", "/v1/_sec/down", undefined, origin), 503],
      ["ingest 404", () => t.app.inject({ method: "POST", url: `/ingest/bluebubbles/${uuidv7()}`, payload: {}, headers: origin }), 404],
      ["signed URL 400", () => t.app.inject({ method: "GET", url: `/v1/attachments/${uuidv7()}/content`, headers: origin }), 400],
      ["healthz", () => t.call(null, "GET", "/healthz", undefined, origin), 200],
      ["metrics", () => t.call(null, "GET", "/metrics", undefined, origin), 200],
      ["openapi", () => t.call(null, "GET", "/v1/openapi.json", undefined, origin), 200],
      ["docs", () => t.call(null, "GET", "/docs", undefined, origin), 200],
    ];
    for (const [what, run, status] of cases) {
      const res = await run();
      assert.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 300)}`);
      assert.match(String(res.headers["x-request-id"]), REQUEST_ID, what);
      assert.equal(res.headers["x-content-type-options"], "nosniff", what);
      for (const h of ["x-powered-by", "server", "access-control-allow-origin", "access-control-allow-credentials"]) assert.equal(res.headers[h], undefined, `${what}: ${h}`);
      if (status >= 400) {
        const body = res.json();
        assert.deepEqual(Object.keys(body), ["error", "message", "request_id"], what);
        assert.equal(body.request_id, res.headers["x-request-id"], what);
      }
    }
  });

  test(
    "SEC-T20: a device's own error text (file paths, SQL) never reaches a 502 body",
    async () => {
      const upstream = { status: 500, message: "Message Send Error", error: { type: "Error", message: "at /Users/admin/Library/bluebubbles/appleScript.js:42 SQLITE_BUSY" } };
      const mac = await Receiver.start({ handler: answer(500, { "content-type": "application/json" }, JSON.stringify(upstream)) });
      try {
        await addNumber(t.db.kysely, t.clock, { accountId: a.id, handle: "+15557010001", channels: "imessage,sms", backend: "bluebubbles", settings: { url: mac.url, password: "pw" } });
        const sent = await t.call(a.liveKey, "POST", "/v1/messages", { to: ANYONE, from_handle: "+15557010001", text: "x" });
        const res = await t.call(a.liveKey, "POST", `/v1/chats/${sent.json().data.conversation_id}/read`);
        assertError(res, 502, "read_failed");
        for (const leak of ["/Users", "SQLITE", "appleScript", ".js:"]) assert.ok(!res.body.includes(leak), `the 502 body has ${leak}: ${res.body}`);
      } finally {
        await mac.close();
      }
    },
  );

  test("SEC-T22: a client's X-Request-Id is never used nor echoed (edge.test.ts covers CR/LF)", async () => {
    const res = await t.call(a.testKey, "GET", "/v1/numbers", undefined, { "x-request-id": "client-chosen<script>" });
    assert.match(String(res.headers["x-request-id"]), REQUEST_ID);
    assert.ok(!JSON.stringify(res.headers).includes("client-chosen") && !res.body.includes("client-chosen"));
  });

  test("SEC-T23: the router's routes and the OpenAPI operations are the same set, both ways (edge.test.ts)", async () => {
    const doc = await openApiDoc(t);
    const METHODS = ["get", "put", "post", "delete", "patch"];
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
    const hidden = (url: string) => url === "/metrics" || url === "/v1/openapi.json" || url.startsWith("/docs") || url.startsWith("/ingest/") || url.startsWith("/v1/_sec/");
    const served = routeTable(t.app).filter((r) => r.method !== "HEAD" && !hidden(r.url)).map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, "{$1}")}`);
    assert.deepEqual(documented.sort(), served.sort());
    // The test helpers are documented, and answer only test keys (auth-contract.ts): the sandbox is part of the inventory.
    assert.ok(documented.includes("POST /v1/test_helpers/inbound"));
  });

  test("SEC-T15 defaults: 10 s for the headers, 30 s for the whole request, checked every second (Node's own check runs every 30 s)", () => {
    const d = defaultConfig();
    assert.deepEqual([d.HEADERS_TIMEOUT_MS, d.REQUEST_TIMEOUT_MS], [10_000, 30_000]);
    const server = t.app.server as typeof t.app.server & { connectionsCheckingInterval: number };
    assert.deepEqual([server.headersTimeout, server.requestTimeout, server.connectionsCheckingInterval], [10_000, 30_000, 1_000]);
  });

  test("SEC-T20 (last: it closes the database): a lost database is 503 unavailable with the generic message, naming no driver", async () => {
    await t.db.close();
    // Routes that read the database on every call (an exact cache may answer GET /v1/numbers without it).
    for (const url of ["/v1/messages", `/v1/messages/${uuidv7()}`, "/v1/webhooks"]) {
      const res = await t.call(a.testKey, "GET", url);
      assert.equal(assertError(res, 503, "unavailable", url).message, ERRORS.unavailable.message);
      for (const leak of [...LEAKS, "destroyed", "driver", "pool", "kysely", "sqlite", "postgres"]) assert.ok(!res.body.includes(leak), `${url}: the body has ${leak}`);
    }
  });
});
