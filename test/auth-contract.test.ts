/**
 * Applies the auth contract (test/auth-contract.ts) to every authenticated route of the app. The
 * list comes from the router itself, so a new route is covered the moment it exists; a new route
 * with an `:id` fails until FIXTURES gives it a `setup` that makes a resource.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Mode } from "../src/db/schema.js";
import { ApiError } from "../src/errors.js";
import { Envelope, ok } from "../src/http/envelope.js";
import { uuidv7 } from "../src/ids.js";
import { type AuthRoute, checkNotFoundContract, describeAuthContract, type RouteEntry, routeTable } from "./auth-contract.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";
import { ANYONE, SIM, statusOf, untilStatus } from "./messaging-helpers.js";

/** Routes that answer without a key (operations and API docs), with their HEAD twins. */
const PUBLIC = new Set(["GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/openapi.json"]);
/** Routes whose authority is the URL's signature, not an API key (attachments.test.ts covers them: 403 invalid_signature). */
const SIGNED_URL = new Set([
  "GET /v1/attachments/:id/content",
  "PUT /v1/attachments/:id/content",
  // Device webhooks: the per-number secret in the URL (bluebubbles-*.test.ts and waha-*.test.ts: 401 without it).
  "POST /ingest/:backend/:number_id",
]);
const isPublic = (r: RouteEntry) =>
  PUBLIC.has(`${r.method === "HEAD" ? "GET" : r.method} ${r.url}`) || SIGNED_URL.has(`${r.method} ${r.url}`) || r.url === "/docs" || r.url.startsWith("/docs/");

// ---- Fixtures: resources made through the public API, as their owner would make them. ----

let numbersMade = 0;
/** The owner's sending number (one per account, serving both modes), added on first use. */
async function numberOf(t: TestApp, owner: SeededAccount): Promise<string> {
  const row = await t.db.kysely.selectFrom("numbers").select("handle").where("account_id", "=", owner.id).executeTakeFirst();
  if (row) return row.handle;
  const handle = `+1555012${String(++numbersMade).padStart(4, "0")}`;
  await t.addNumber(owner.id, handle, "imessage,sms");
  return handle;
}

const keyOf = (owner: SeededAccount, mode: Mode) => (mode === "test" ? owner.testKey : owner.liveKey);

/** A message sent by `owner` in `mode`, left queued; `until` drives the simulator to that status. */
async function message(t: TestApp, owner: SeededAccount, mode: Mode, opts: { to?: string; until?: string } = {}) {
  const res = await t.call(keyOf(owner, mode), "POST", "/v1/messages", { to: opts.to ?? ANYONE, from_handle: await numberOf(t, owner), text: "fixture" });
  assert.equal(res.statusCode, 202, res.body);
  const data = res.json().data as { id: string; conversation_id: string };
  if (opts.until) await untilStatus(t, data.id, opts.until);
  return data;
}

const queued = async (t: TestApp, owner: SeededAccount, mode: Mode) => {
  const { id } = await message(t, owner, mode);
  assert.equal(await statusOf(t, id), "queued");
  return id;
};
/** Delivered and read by the simulator's plain iMessage recipient: reactions apply. */
const read = async (t: TestApp, owner: SeededAccount, mode: Mode) => (await message(t, owner, mode, { until: "read" })).id;
/** Failed for good (the simulator's always-failing recipient): retry applies. */
const failed = async (t: TestApp, owner: SeededAccount, mode: Mode) => (await message(t, owner, mode, { to: SIM.fails, until: "failed" })).id;
/** A presigned attachment (a row only: no bytes are written to the default storage folder). */
const presigned = async (t: TestApp, owner: SeededAccount, mode: Mode) => {
  const res = await t.call(keyOf(owner, mode), "POST", "/v1/attachments/presign", { filename: "fixture.txt", content_type: "text/plain" });
  assert.equal(res.statusCode, 201, res.body);
  return (res.json().data as { id: string }).id;
};
const chat = async (t: TestApp, owner: SeededAccount, mode: Mode) => (await message(t, owner, mode)).conversation_id;
/** A group chat of three (so one can be removed), created by `owner` in `mode` on the simulator. */
const GROUP = ["+15557770101", "+15557770102", "+15557770103"];
const group = async (t: TestApp, owner: SeededAccount, mode: Mode) => {
  const res = await t.call(keyOf(owner, mode), "POST", "/v1/chats", { from_handle: await numberOf(t, owner), addresses: GROUP, message: { text: "fixture" } });
  assert.equal(res.statusCode, 201, res.body);
  return res.json().data.id as string;
};

/** A public IP literal: registration needs no DNS, and the worker is not running in these tests. */
const HOOK_URL = "http://93.184.216.34/hook";
const webhook = async (t: TestApp, owner: SeededAccount, mode: Mode) => {
  const res = await t.call(keyOf(owner, mode), "POST", "/v1/webhooks", { url: HOOK_URL });
  assert.equal(res.statusCode, 201, res.body);
  return res.json().data.id as string;
};
/**
 * The retry route names two resources. The contract substitutes one parameter, so it is given the
 * pair as a single "id": `<webhook id>/deliveries/<delivery id>` in place of
 * `:id/deliveries/:delivery_id` (a foreign or other-mode webhook makes the pair a 404 as a whole).
 */
const DELIVERY_PAIR = "id/deliveries/:delivery_id";
const delivery = async (t: TestApp, owner: SeededAccount, mode: Mode) => {
  const id = await webhook(t, owner, mode);
  const res = await t.call(keyOf(owner, mode), "POST", `/v1/webhooks/${id}/test`);
  assert.equal(res.statusCode, 202, res.body);
  return `${id}/deliveries/${res.json().data.id as string}`;
};

/**
 * Per-route extras, keyed "METHOD /template": a valid body, and `setup` for routes with `:id`.
 * `ownStatus` pins the answer on the owner's own resource, so the 404s cannot come from a route
 * that refuses everything.
 */
const FIXTURES: Record<string, Partial<AuthRoute>> = {
  "GET /v1/messages/:id": { setup: queued, ownStatus: 200 },
  "PATCH /v1/messages/:id": { setup: queued, body: { text: "edited" }, ownStatus: 200 },
  "DELETE /v1/messages/:id": { setup: queued, ownStatus: 200 },
  "POST /v1/messages/:id/reactions": { setup: read, body: { reaction: "love" }, ownStatus: 200 },
  "POST /v1/messages/:id/retry": { setup: failed, ownStatus: 202 },
  "GET /v1/chats/:id": { setup: chat, ownStatus: 200 },
  "POST /v1/chats/:id/read": { setup: chat, ownStatus: 200 },
  "POST /v1/chats/:id/typing": { setup: chat, body: { state: "start" }, ownStatus: 200 },
  "POST /v1/chats": { body: { from_handle: "+15550129999", addresses: GROUP, message: { text: "hi" } } },
  "PATCH /v1/chats/:id": { setup: group, body: { title: "Renamed" }, ownStatus: 200 },
  "POST /v1/chats/:id/participants": { setup: group, body: { handle: "+15557770104" }, ownStatus: 200 },
  // The contract substitutes :id only: the handle removed is filled in (a member of every fixture group).
  "DELETE /v1/chats/:id/participants/:handle": { url: "/v1/chats/:id/participants/%2B15557770101", setup: group, ownStatus: 200 },
  "POST /v1/test_helpers/group_changes": { body: { conversation_id: "01a00000-0000-7000-8000-000000000000", type: "renamed", title: "x" } },
  "POST /v1/webhooks": { body: { url: HOOK_URL } },
  "GET /v1/webhooks/:id": { setup: webhook, ownStatus: 200 },
  "PATCH /v1/webhooks/:id": { setup: webhook, body: { enabled: true }, ownStatus: 200 },
  "DELETE /v1/webhooks/:id": { setup: webhook, ownStatus: 200 },
  "POST /v1/webhooks/:id/rotate-secret": { setup: webhook, ownStatus: 200 },
  "POST /v1/webhooks/:id/test": { setup: webhook, ownStatus: 202 },
  "GET /v1/webhooks/:id/deliveries": { setup: webhook, ownStatus: 200 },
  "POST /v1/webhooks/:id/deliveries/:delivery_id/retry": {
    idParam: DELIVERY_PAIR,
    setup: delivery,
    missingId: () => `${uuidv7()}/deliveries/${uuidv7()}`,
    ownStatus: 202,
  },
  "GET /v1/attachments/:id": { setup: presigned, ownStatus: 200 },
  "POST /v1/test_helpers/inbound": { body: { from_handle: "+15550129999", remote_handle: ANYONE, text: "hi" } },
  "POST /v1/test_helpers/numbers/:handle/status": {
    idParam: "handle",
    // Numbers belong to an account and serve both modes: the handle is the same in either.
    setup: (t, owner) => numberOf(t, owner),
    missingId: () => `+1555013${String(Math.floor(Math.random() * 10_000)).padStart(4, "0")}`,
    body: { status: "online" },
    ownStatus: 200,
  },
};
/** Test helpers take test-mode keys only (api.md §5): every route under them gets that check. */
const isTestHelper = (r: RouteEntry) => r.url.startsWith("/v1/test_helpers/");

const probe = await buildTestApp();
const routes = routeTable(probe.app);
await probe.close();
const key = (r: RouteEntry) => `${r.method} ${r.url}`;
// HEAD twins of GET routes answer exactly as their GET (and carry no body to compare).
const authenticated = routes.filter((r) => !isPublic(r) && !(r.method === "HEAD" && routes.some((g) => g.method === "GET" && g.url === r.url)));

describe("the route table the contract is applied to", () => {
  test("is read from the app's router", () => {
    assert.ok(routes.some((r) => key(r) === "GET /v1/numbers"), JSON.stringify(routes));
    assert.ok(routes.some((r) => key(r) === "GET /healthz"));
    assert.ok(authenticated.some((r) => key(r) === "GET /v1/numbers"));
  });

  test("has no unauthenticated route outside the known public ones: every other route is under /v1", () => {
    assert.deepEqual(routes.filter((r) => !isPublic(r) && !r.url.startsWith("/v1/")).map(key), []);
  });

  test("every fixture names a route that exists", () => {
    assert.deepEqual(Object.keys(FIXTURES).filter((k) => !routes.some((r) => key(r) === k)), []);
  });
});

for (const r of authenticated) describeAuthContract({ ...r, testOnly: isTestHelper(r), ...FIXTURES[key(r)] });

// ---- The :id half, on a test-only resource, including routes that leak. ----

interface Item {
  accountId: string;
  mode: Mode;
}
const items = new Map<string, Item>();
const setup = async (_t: TestApp, owner: SeededAccount, mode: Mode) => {
  const id = uuidv7();
  items.set(id, { accountId: owner.id, mode });
  return id;
};
const IdParams = Type.Object({ id: Type.String() }, { additionalProperties: false });
const ItemBody = Envelope(Type.Object({ id: Type.String() }, { additionalProperties: false }));

/** A scoped item route, and two that leak: one ignores the mode, one words a foreign id differently. */
function itemRoutes(v1: FastifyInstance): void {
  const route = (path: string, find: (item: Item | undefined, auth: Item) => void) =>
    v1.get(path, { schema: { hide: true, params: IdParams, response: { 200: ItemBody } } }, async (req) => {
      const { id } = req.params as { id: string };
      find(items.get(id), { accountId: req.auth.accountId, mode: req.auth.mode });
      return ok(req, { id });
    });
  route("/_contract/items/:id", (item, auth) => {
    if (item?.accountId !== auth.accountId || item.mode !== auth.mode) throw new ApiError("not_found");
  });
  route("/_contract/leaky-mode/:id", (item, auth) => {
    if (item?.accountId !== auth.accountId) throw new ApiError("not_found");
  });
  route("/_contract/leaky-message/:id", (item, auth) => {
    if (!item) throw new ApiError("not_found");
    if (item.accountId !== auth.accountId || item.mode !== auth.mode) throw new ApiError("not_found", "This item belongs to someone else.");
  });
  // Test-mode only, but the mode is checked after the lookup: a live key learns which ids exist.
  route("/_contract/leaky-test-only/:id", (item, auth) => {
    if (item?.accountId !== auth.accountId) throw new ApiError("not_found");
    if (auth.mode !== "test") throw new ApiError("forbidden", "Test-mode keys only.");
  });
}

describeAuthContract({ method: "GET", url: "/v1/_contract/items/:id", setup, app: { extraRoutes: itemRoutes } });

describe("the 404 half of the contract fails on leaky routes", () => {
  let t: TestApp;
  let a: SeededAccount;
  before(async () => {
    t = await buildTestApp({ extraRoutes: itemRoutes });
    a = await t.seedAccount();
  });
  after(() => t.close());

  test("a route that serves the other mode's resource fails it", async () => {
    await assert.rejects(checkNotFoundContract(t, { method: "GET", url: "/v1/_contract/leaky-mode/:id", setup }, a), /the other mode's id/);
  });

  test("a route whose 404 for a foreign id differs from a missing id fails it", async () => {
    await assert.rejects(checkNotFoundContract(t, { method: "GET", url: "/v1/_contract/leaky-message/:id", setup }, a), /another account's id/);
  });

  test("a test-mode-only route that answers a live key differently for existing and missing ids fails it", async () => {
    const testOnlySetup = (tt: TestApp, owner: SeededAccount) => setup(tt, owner, "test");
    await assert.rejects(
      checkNotFoundContract(t, { method: "GET", url: "/v1/_contract/leaky-test-only/:id", setup: testOnlySetup, testOnly: true }, a),
      /live key, another account's id/,
    );
  });

  test("a route with an :id but no setup fails it", async () => {
    await assert.rejects(checkNotFoundContract(t, { method: "GET", url: "/v1/_contract/items/:id" }, a), /give it a setup/);
  });
});
