/**
 * OWASP API3 (BOPLA): SEC-T08…T10, the fields a client may write and those it may read.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { uuidv7 } from "../src/ids.js";
import { routeTable } from "./auth-contract.js";
import { openApiDoc, openApiSchemas } from "./edge-support.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { assertError } from "./messaging-helpers.js";
import {
  dump, GROUP, HOOK_URL, makeResources, READ_ONLY, type Resources, routeKey, secApp, withField, writeRoutes,
} from "./security-support.js";

describe("API3 BOPLA: mass assignment and excessive exposure", () => {
  let t: TestApp;
  let a: SeededAccount;
  let r: Resources;
  before(async () => {
    t = await secApp();
    a = await t.seedAccount();
    r = await makeResources(t, a, "test");
  });
  after(() => t.close());

  test("the list covers every POST, PATCH and PUT route of the API (uploads are multipart: attachments.test.ts refuses their extra fields)", () => {
    const templates = writeRoutes(r).map(([m, u]) => `${m} ${u.replace(/[0-9a-f-]{36}\/deliveries\/[0-9a-f-]{36}/, ":id/deliveries/:delivery_id").replace(/[0-9a-f-]{36}/, ":id").replace(/%2B\d+/, ":handle")}`);
    const routes = routeTable(t.app).filter((x) => ["POST", "PATCH", "PUT"].includes(x.method) && x.url.startsWith("/v1/") && x.url !== "/v1/attachments" && !x.url.endsWith("/content"));
    assert.deepEqual(routes.map(routeKey).filter((k) => !templates.includes(k)), []);
  });

  test("SEC-T08: every read-only or internal field is 400 invalid_request on every write route, nested ones too, and nothing is written", async () => {
    const snapshot = await dump(t.db);
    for (const [method, url, body] of writeRoutes(r)) {
      for (const [field, value] of READ_ONLY) {
        if (body && typeof body === "object" && field in body) continue; // a field of the route's own (numbers status takes `status`)
        const res = await t.call(a.testKey, method, url, withField(body, field, value));
        const err = assertError(res, 400, "invalid_request", `${method} ${url} + ${field}`);
        if (!field.startsWith("__")) assert.match(err.message, new RegExp(`'${field}'`), `${method} ${url} + ${field}: ${err.message}`);
      }
    }
    for (const [field, value] of [["status", "read"], ["direction", "inbound"], ["id", uuidv7()]] as const) {
      const res = await t.call(a.testKey, "POST", "/v1/chats", { from_handle: r.handle, addresses: GROUP, message: { text: "hi", [field]: value } });
      assertError(res, 400, "invalid_request", `POST /v1/chats message.${field}`);
    }
    assert.deepEqual(await dump(t.db), snapshot, "a refused write changed the database");
    for (const [method, url, body] of writeRoutes(r)) {
      const res = await t.call(a.testKey, method, url, body);
      assert.notEqual(res.statusCode, 400, `control: ${method} ${url} with its valid body: ${res.body}`);
    }
  });

  test("SEC-T09: reads match the documented schemas (additionalProperties: false) and carry no internal field", async () => {
    const doc = await openApiDoc(t);
    const schemaAt = openApiSchemas(doc);
    for (const name of ["Message", "Chat", "Webhook", "WebhookDelivery", "Attachment"]) {
      assert.equal((doc.components?.schemas?.[name] as { additionalProperties?: unknown } | undefined)?.additionalProperties, false, name);
    }
    const reads: [string, string][] = [
      ["/v1/numbers", "/v1/numbers"], ["/v1/messages", "/v1/messages"], [`/v1/messages/${r.message}`, "/v1/messages/{id}"],
      ["/v1/chats", "/v1/chats"], [`/v1/chats/${r.group}`, "/v1/chats/{id}"], ["/v1/webhooks", "/v1/webhooks"],
      [`/v1/webhooks/${r.webhook}`, "/v1/webhooks/{id}"], [`/v1/webhooks/${r.webhook}/deliveries`, "/v1/webhooks/{id}/deliveries"],
      [`/v1/attachments/${r.attachment}`, "/v1/attachments/{id}"],
    ];
    const INTERNAL = /"(account_id|mode|number_id|chat_id|device_message_id|device_chat_id|backend|backend_config|key_hash|key_prefix|storage_key|upload_id|declared_type|secret|lease_token|endpoint_id)":/;
    for (const [url, path] of reads) {
      const res = await t.call(a.testKey, "GET", url);
      const validate = schemaAt("paths", path, "get", "responses", "200", "content", "application/json", "schema");
      assert.ok(validate(res.json()), `${url}: ${JSON.stringify(validate.errors)}`);
      assert.doesNotMatch(res.body, INTERNAL, url);
    }
  });

  test("SEC-T10: the webhook secret is in the create and rotate answers only — never in GET, list, PATCH, DELETE, test or deliveries (webhooks-endpoints.test.ts)", async () => {
    const made = await t.call(a.testKey, "POST", "/v1/webhooks", { url: HOOK_URL });
    const id = made.json().data.id;
    const rotated = await t.call(a.testKey, "POST", `/v1/webhooks/${id}/rotate-secret`);
    const secrets = [made.json().data.secret, rotated.json().data.secret];
    assert.ok(secrets.every((s) => /^whsec_/.test(s)));
    for (const [method, url, body] of [
      ["GET", `/v1/webhooks/${id}`], ["GET", "/v1/webhooks?limit=100"], ["PATCH", `/v1/webhooks/${id}`, { enabled: false }],
      ["POST", `/v1/webhooks/${r.webhook}/test`], ["GET", `/v1/webhooks/${id}/deliveries`], ["DELETE", `/v1/webhooks/${id}`],
    ] as const) {
      const res = await t.call(a.testKey, method, url, body);
      assert.ok(res.statusCode < 300, `${method} ${url}: ${res.body}`);
      assert.ok(!res.body.includes("whsec_") && !secrets.some((s) => res.body.includes(s.slice(6))), `${method} ${url} shows a secret`);
    }
  });
});
