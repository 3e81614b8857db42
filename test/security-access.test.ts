/**
 * OWASP API1 (BOLA): SEC-T01, T02, T03 and T17's lists. A foreign id must answer exactly as a
 * missing one does, or the answer itself tells an attacker the id exists.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { LightMyRequestResponse } from "fastify";
import type { Mode } from "../src/db/schema.js";
import { uuidv7 } from "../src/ids.js";
import { errorBody, routeTable } from "./auth-contract.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { ANYONE } from "./messaging-helpers.js";
import { dump, GROUP, HOOK_URL, ID_ROUTES, keyOf, makeResources, type Resources, routeKey, secApp } from "./security-support.js";

const other = (mode: Mode): Mode => (mode === "test" ? "live" : "test");
/** The delivery id of a `<webhook id>/deliveries/<delivery id>` pair. */
const deliveryOf = (pair: string) => pair.split("/").at(-1) ?? "";

describe("API1 BOLA: ids of another account or the other mode", () => {
  let t: TestApp;
  let a: SeededAccount;
  let b: SeededAccount;
  const own = {} as Record<Mode, Resources>;
  const foreign = {} as Record<Mode, Resources>;
  before(async () => {
    t = await secApp();
    a = await t.seedAccount("Owner");
    b = await t.seedAccount("Other");
    for (const mode of ["test", "live"] as const) {
      own[mode] = await makeResources(t, a, mode);
      foreign[mode] = await makeResources(t, b, mode);
    }
  });
  after(() => t.close());

  test("every authenticated route that names a resource in its path is in the matrix below", () => {
    const named = routeTable(t.app).filter((r) => r.method !== "HEAD" && r.url.startsWith("/v1/") && r.url.includes("/:") && !r.url.endsWith("/content"));
    assert.deepEqual(named.map(routeKey).filter((k) => !(k in ID_ROUTES)), []);
    assert.ok(named.length >= 20, named.map(routeKey).join("\n"));
  });

  test("SEC-T01: 404 not_found, byte-identical to a missing id, for every route × {another account's id, the other mode's id}; nothing changes", async () => {
    const snapshot = await dump(t.db);
    for (const [route, spec] of Object.entries(ID_ROUTES)) {
      const [method = "", template = ""] = route.split(" ");
      const url = spec.url ?? template;
      for (const mode of ["test", "live"] as const) {
        if (template.startsWith("/v1/test_helpers/") && mode === "live") continue; // 403 before any lookup (auth-contract.ts)
        const call = (id: string) => t.call(keyOf(a, mode), method, url.replace(":id", id), spec.body);
        const missingId = spec.kind === "handle" ? "+15550149999" : spec.kind === "delivery" ? `${uuidv7()}/deliveries/${uuidv7()}` : uuidv7();
        const missing = errorBody(await call(missingId), 404, "not_found", `${route} (${mode}): a missing id`);
        const cases: [string, string][] = [["another account's id", foreign[mode][spec.kind]]];
        // Numbers serve both modes: a handle has no other-mode twin.
        if (spec.kind !== "handle") cases.push(["the other mode's id", own[other(mode)][spec.kind]]);
        if (spec.kind === "delivery") cases.push(["another account's webhook with its own delivery", `${foreign[mode].webhook}/deliveries/${deliveryOf(own[mode].delivery)}`]);
        for (const [what, id] of cases) {
          const label = `${route} with a ${mode} key: ${what}`;
          assert.equal(errorBody(await call(id), 404, "not_found", label), missing, label);
        }
        if (spec.kind === "delivery") {
          // On its own webhook, a delivery of another endpoint answers as a missing delivery does.
          const ownMissing = errorBody(await call(`${own[mode].webhook}/deliveries/${uuidv7()}`), 404, "not_found", `${route}: own webhook, missing delivery`);
          for (const [what, pair] of [["another account's", foreign[mode].delivery], ["the other mode's", own[other(mode)].delivery]] as const) {
            const label = `${route} with a ${mode} key: its own webhook with ${what} delivery`;
            assert.equal(errorBody(await call(`${own[mode].webhook}/deliveries/${deliveryOf(pair)}`), 404, "not_found", label), ownMissing, label);
          }
        }
      }
    }
    assert.deepEqual(await dump(t.db), snapshot, "a refused call changed the database");
  });

  test("control: the owner's own ids are served (so the 404s above are not a route refusing everything)", async () => {
    for (const mode of ["test", "live"] as const) {
      const k = keyOf(a, mode);
      const r = own[mode];
      for (const url of [`/v1/messages/${r.message}`, `/v1/chats/${r.chat}`, `/v1/chats/${r.group}`, `/v1/webhooks/${r.webhook}`, `/v1/webhooks/${r.webhook}/deliveries`, `/v1/attachments/${r.attachment}`]) {
        const res = await t.call(k, "GET", url);
        assert.equal(res.statusCode, 200, `${mode} ${url}: ${res.body}`);
      }
    }
  });

  test("SEC-T02: ids inside bodies and queries are scoped alike — 404 (or 400 invalid_attachments) byte-identical to a missing id; a foreign attachment stays unclaimed", async () => {
    const snapshot = await dump(t.db);
    for (const mode of ["test", "live"] as const) {
      const k = keyOf(a, mode);
      const from = own[mode].handle;
      const same = async (what: string, make: (id: string) => Promise<LightMyRequestResponse>, ids: string[], status: number, code: "not_found" | "invalid_attachments" | "invalid_request") => {
        // A message may name the id the caller sent (invalid_attachments does): that says nothing of its owner.
        const answer = async (id: string) => errorBody(await make(id), status, code, `${what} (${mode})`).replaceAll(id, "<id>");
        const missing = await answer(uuidv7());
        for (const id of ids) assert.equal(await answer(id), missing, `${what} (${mode}): ${id}`);
      };
      const outside = (kind: keyof Resources) => [foreign[mode][kind], own[other(mode)][kind]];
      const post = (url: string, body: Record<string, unknown>) => t.call(k, "POST", url, body);
      await same("conversation_id", (id) => post("/v1/messages", { conversation_id: id, text: "x" }), outside("chat"), 404, "not_found");
      await same("reply_to", (id) => post("/v1/messages", { to: ANYONE, from_handle: from, reply_to: id, text: "x" }), outside("message"), 404, "not_found");
      await same("attachment_ids", (id) => post("/v1/messages", { to: ANYONE, from_handle: from, attachment_ids: [id] }), outside("attachment"), 400, "invalid_attachments");
      for (const list of ["/v1/messages", "/v1/chats", "/v1/webhooks"]) {
        const kind = list === "/v1/messages" ? "message" : list === "/v1/chats" ? "chat" : "webhook";
        await same(`${list}?before=`, (id) => t.call(k, "GET", `${list}?before=${id}`), outside(kind), 400, "invalid_request");
      }
      const deliveryIds = outside("delivery").map(deliveryOf);
      await same("deliveries ?before=", (id) => t.call(k, "GET", `/v1/webhooks/${own[mode].webhook}/deliveries?before=${id}`), deliveryIds, 400, "invalid_request");
      for (const chat of outside("chat")) {
        const res = await t.call(k, "GET", `/v1/messages?conversation_id=${chat}`);
        assert.deepEqual([res.statusCode, res.json().data], [200, []], `a foreign conversation_id filter lists nothing (${mode})`);
      }
      if (mode === "test") {
        const helper = (body: Record<string, unknown>) => post("/v1/test_helpers/inbound", { from_handle: from, remote_handle: GROUP[0], text: "x", ...body });
        await same("test helper inbound conversation_id", (id) => helper({ conversation_id: id }), outside("group"), 404, "not_found");
        await same("test helper inbound attachment_ids", (id) => helper({ attachment_ids: [id] }), outside("attachment"), 400, "invalid_attachments");
        await same("test helper group_changes", (id) => post("/v1/test_helpers/group_changes", { conversation_id: id, type: "renamed", title: "x" }), outside("group"), 404, "not_found");
      }
    }
    assert.deepEqual(await dump(t.db), snapshot, "a refused call changed the database (a foreign attachment got claimed?)");
  });

  test("SEC-T17: each key lists only its own mode's data; never another account's", async () => {
    for (const mode of ["test", "live"] as const) {
      for (const [list, kind] of [["/v1/messages", "message"], ["/v1/chats", "chat"], ["/v1/webhooks", "webhook"]] as const) {
        const res = await t.call(keyOf(a, mode), "GET", `${list}?limit=100`);
        const ids = (res.json().data as { id: string }[]).map((x) => x.id);
        assert.ok(ids.includes(own[mode][kind]), `${list} (${mode}) misses its own ${kind}`);
        for (const id of [own[other(mode)][kind], foreign.test[kind], foreign.live[kind]]) assert.ok(!ids.includes(id), `${list} (${mode}) shows ${id}`);
      }
    }
  });

  test("SEC-T03: one Idempotency-Key used by two accounts and by two modes gives four resources; each replay returns its own (idempotency.test.ts IDEM-T12)", async () => {
    const made = new Set<string>();
    for (const k of [a.testKey, a.liveKey, b.testKey, b.liveKey]) {
      const first = await t.call(k, "POST", "/v1/webhooks", { url: HOOK_URL }, { "idempotency-key": "shared-key-1" });
      assert.equal(first.statusCode, 201, first.body);
      const replay = await t.call(k, "POST", "/v1/webhooks", { url: HOOK_URL }, { "idempotency-key": "shared-key-1" });
      assert.equal(replay.statusCode, 200, replay.body);
      assert.equal(replay.json().data.id, first.json().data.id);
      made.add(first.json().data.id);
    }
    assert.equal(made.size, 4);
  });
});
