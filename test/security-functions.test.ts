/**
 * OWASP API5 (function-level authorization) and API6 (sensitive business flows): SEC-T17's
 * device isolation, SEC-T18, SEC-T19.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setDailySendLimit } from "../src/accounts/store.js";
import { uuidv7 } from "../src/ids.js";
import { addNumber } from "../src/numbers/store.js";
import { errorBody, routeTable } from "./auth-contract.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { ANYONE, assertError, untilStatus } from "./messaging-helpers.js";
import { numberOf, secApp } from "./security-support.js";
import { Receiver } from "./webhook-support.js";

describe("API5 broken function-level authorization, API6 sensitive business flows", () => {
  let t: TestApp;
  let a: SeededAccount;
  let mac: Receiver;
  before(async () => {
    mac = await Receiver.start();
    // A 7.2-second validity window: at the default pace (1 message/s) seven messages fill it (SEC-T19).
    t = await secApp({ config: { MESSAGE_VALIDITY_HOURS: 0.002 } });
    a = await t.seedAccount();
  });
  after(async () => {
    await t.close();
    await mac.close();
  });

  test("SEC-T17: a test key sending from a number on a real device goes through the simulator; the device sees nothing (a live key does reach it)", async () => {
    await addNumber(t.db.kysely, t.clock, { accountId: a.id, handle: "+15557010001", channels: "imessage,sms", backend: "bluebubbles", settings: { url: mac.url, password: "pw" } });
    const res = await t.call(a.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: "+15557010001", text: "test mode" });
    assert.equal(res.statusCode, 202, res.body);
    await untilStatus(t, res.json().data.id, "read");
    assert.equal(mac.connections, 0, "a test-mode send reached the device");
    const live = await t.call(a.liveKey, "POST", "/v1/messages", { to: ANYONE, from_handle: "+15557010001", text: "live mode" });
    assert.equal(live.statusCode, 202, live.body);
    await t.app.services.dispatcher.runUntilIdle();
    await t.app.services.dispatcher.settled();
    assert.ok(mac.requests.some((q) => q.url.includes("/api/v1/message/text")), "control: the live send did not reach the device");
  });

  test("SEC-T18: every other method on every path is 405 with Allow and the error envelope; no CORS preflight is answered (edge.test.ts)", async () => {
    const byPath = new Map<string, Set<string>>();
    for (const r of routeTable(t.app)) {
      if (r.url.startsWith("/docs") || r.url.includes("*")) continue;
      byPath.set(r.url, (byPath.get(r.url) ?? new Set()).add(r.method));
    }
    const fill = (url: string) => url.replace(":handle", "%2B15550000000").replace(":backend", "bluebubbles").replace(/:[a-z_]+/g, () => uuidv7());
    // A static path may also match another route's parameter (GET /v1/attachments/presign is GET /v1/attachments/:id).
    const matches = (template: string, url: string) => {
      const [x, y] = [template.split("/"), url.split("/")];
      return x.length === y.length && x.every((seg, i) => seg.startsWith(":") || seg === y[i]);
    };
    for (const [url, methods] of byPath) {
      const concrete = fill(url);
      for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].filter((m) => !methods.has(m))) {
        if ([...byPath].some(([other, ms]) => other !== url && ms.has(method) && matches(other, concrete))) continue;
        const res = await t.call(a.testKey, method, concrete);
        errorBody(res, 405, "method_not_allowed", `${method} ${url}`);
        assert.equal(res.headers.allow, [...methods].sort().join(", "), `${method} ${url}`);
      }
    }
    const preflight = await t.app.inject({ method: "OPTIONS", url: "/v1/messages", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    assert.equal(preflight.statusCode, 405);
    assert.equal(preflight.headers["access-control-allow-origin"], undefined);
  });

  test("SEC-T19: a number's backlog is capped by its validity window (429 sender_queue_full, Retry-After; dispatch-pacing.test.ts PACE-T04)", async () => {
    const bulk = await t.seedAccount("Bulk");
    const from = await numberOf(t, bulk);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await t.call(bulk.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: from, text: `m${i}` })).statusCode);
    assert.ok(statuses.slice(0, 7).every((s) => s === 202), statuses.join());
    const full = await t.call(bulk.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: from, text: "one more" });
    assertError(full, 429, "sender_queue_full");
    assert.match(String(full.headers["retry-after"]), /^\d+$/);
  });

  test("SEC-T19: a per-account daily cap: 429 daily_limit_exceeded with Retry-After to the next UTC day, per mode; it resets at the boundary", async () => {
    const capped = await t.seedAccount("Capped");
    const from = await numberOf(t, capped);
    await setDailySendLimit(t.db.kysely, t.clock, capped.id, 2);
    const day = Math.floor(t.clock.now() / 86_400_000) * 86_400_000;
    t.clock.set(day + 86_400_000 - 10_000); // ten seconds before midnight UTC
    const send = (key: string, text: string, headers: Record<string, string> = {}) => t.call(key, "POST", "/v1/messages", { to: ANYONE, from_handle: from, text }, headers);
    assert.equal((await send(capped.testKey, "one")).statusCode, 202);
    assert.equal((await send(capped.testKey, "two", { "idempotency-key": "k2" })).statusCode, 202);
    assert.equal((await send(capped.testKey, "two", { "idempotency-key": "k2" })).statusCode, 200, "an idempotent replay is not another send");
    const over = await send(capped.testKey, "three");
    assertError(over, 429, "daily_limit_exceeded");
    assert.equal(over.headers["retry-after"], "10");
    assert.equal((await t.db.kysely.selectFrom("messages").select("id").where("account_id", "=", capped.id).execute()).length, 2, "the refused send wrote nothing");
    assert.equal((await send(capped.liveKey, "live counts apart")).statusCode, 202);
    t.clock.advance(10_000);
    assert.equal((await send(capped.testKey, "a new day")).statusCode, 202);
    await setDailySendLimit(t.db.kysely, t.clock, capped.id, 0);
    for (let i = 0; i < 3; i++) assert.equal((await send(capped.testKey, `uncapped ${i}`)).statusCode, 202);
  });
});
