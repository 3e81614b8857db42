// GET /v1/lookup (api.md §5 Lookup): which channels reach a handle from one of the account's
// numbers, cached per (number, mode, handle) in lookup_cache for LOOKUP_CACHE_HOURS; the send path
// shares the cache; 502 lookup_failed / 503 device_offline from the device.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { Capabilities, DeviceNumber } from "../src/backends/backend.js";
import { ANYONE, assertError, FROM, type Messaging, MIN, messagingApp, OTHER_FROM, SIM, untilStatus } from "./messaging-helpers.js";

const HOUR = 60 * MIN;

describe("GET /v1/lookup", () => {
  let m: Messaging;
  /** Handles the simulator was asked about, in order. */
  let asked: string[];
  const lookup = (handle: string, from = FROM, key = m.acct.testKey) =>
    m.t.call(key, "GET", `/v1/lookup?handle=${encodeURIComponent(handle)}&from_handle=${encodeURIComponent(from)}`);
  const ok = async (handle: string, from = FROM, key = m.acct.testKey) => {
    const res = await lookup(handle, from, key);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(Object.keys(res.json()), ["data", "request_id"]);
    return res.json().data;
  };
  const cacheRows = () => m.t.db.kysely.selectFrom("lookup_cache").select(["handle", "mode", "imessage", "whatsapp"]).orderBy("handle").orderBy("mode").execute();

  beforeEach(async () => {
    m = await messagingApp();
    asked = [];
    const sim = m.t.app.services.backends.simulator;
    const real = sim.lookup.bind(sim);
    sim.lookup = async (number: DeviceNumber, handle: string): Promise<Capabilities> => {
      asked.push(handle);
      return real(number, handle);
    };
  });
  afterEach(() => m.close());

  it(`${SIM.smsOnly} → imessage false, recommended sms; any other → imessage true, recommended imessage`, async () => {
    assert.deepEqual(await ok(SIM.smsOnly), { handle: SIM.smsOnly, imessage: false, whatsapp: null, recommended_channel: "sms" });
    assert.deepEqual(await ok(ANYONE), { handle: ANYONE, imessage: true, whatsapp: null, recommended_channel: "imessage" });
    assert.deepEqual(await ok("Someone@Example.com"), { handle: "someone@example.com", imessage: true, whatsapp: null, recommended_channel: "imessage" });
  });

  it("a WhatsApp-only number: whatsapp true, recommended whatsapp", async () => {
    await m.t.addNumber(m.acct.id, "+15557770005", "whatsapp");
    assert.deepEqual(await ok(ANYONE, "+15557770005"), { handle: ANYONE, imessage: null, whatsapp: true, recommended_channel: "whatsapp" });
  });

  it("cached: a second call does not ask the device; the lookup_cache row is what answers", async () => {
    await ok(ANYONE);
    assert.deepEqual(asked, [ANYONE]);
    assert.deepEqual(await cacheRows(), [{ handle: ANYONE, mode: "test", imessage: 1, whatsapp: null }]);
    assert.deepEqual(await ok(ANYONE), { handle: ANYONE, imessage: true, whatsapp: null, recommended_channel: "imessage" });
    assert.deepEqual(asked, [ANYONE], "the second lookup went to the device");
    // Proof the answer comes from the cache: change the row, the API follows it.
    await m.t.db.kysely.updateTable("lookup_cache").set({ imessage: 0 }).where("handle", "=", ANYONE).execute();
    assert.equal((await ok(ANYONE)).recommended_channel, "sms");
    assert.deepEqual(asked, [ANYONE]);
  });

  it("the cache expires after LOOKUP_CACHE_HOURS; it is kept per mode", async () => {
    await ok(ANYONE);
    m.t.clock.advance(m.t.config.LOOKUP_CACHE_HOURS * HOUR - 1);
    await ok(ANYONE);
    assert.deepEqual(asked, [ANYONE]);
    m.t.clock.advance(1);
    await ok(ANYONE);
    assert.deepEqual(asked, [ANYONE, ANYONE]);
    await ok(ANYONE, FROM, m.acct.liveKey);
    assert.deepEqual(asked, [ANYONE, ANYONE, ANYONE], "a live lookup does not use the test cache");
    assert.deepEqual((await cacheRows()).map((r) => r.mode), ["live", "test"]);
  });

  it("sends and lookups share the cache: a send after a lookup, and a lookup after a send, ask the device once", async () => {
    await ok(SIM.smsOnly);
    const msg = await m.send({ to: SIM.smsOnly, from_handle: FROM, text: "hi" });
    await untilStatus(m.t, msg.id, "delivered");
    assert.equal((await m.get(msg.id)).channel, "sms");
    assert.deepEqual(asked, [SIM.smsOnly]);
    const other = await m.send({ to: ANYONE, from_handle: FROM, text: "hi" });
    await untilStatus(m.t, other.id, "read");
    await ok(ANYONE);
    assert.deepEqual(asked, [SIM.smsOnly, ANYONE]);
  });

  it("400 for a bad handle, a number not the account's, missing or unknown parameters", async () => {
    assertError(await lookup("not a handle"), 400, "invalid_handle");
    assertError(await lookup(ANYONE, "nope"), 400, "invalid_handle");
    assertError(await lookup(ANYONE, OTHER_FROM), 400, "invalid_from_handle");
    assertError(await lookup(ANYONE, "+15557770099"), 400, "invalid_from_handle");
    for (const q of ["", `?handle=${encodeURIComponent(ANYONE)}`, `?from_handle=${encodeURIComponent(FROM)}`, `?handle=${encodeURIComponent(ANYONE)}&from_handle=${encodeURIComponent(FROM)}&fresh=1`]) {
      assertError(await m.t.call(m.acct.testKey, "GET", `/v1/lookup${q}`), 400, "invalid_request", q);
    }
    assert.deepEqual(asked, []);
  });

  it("503 device_offline while the number's device is offline; 502 lookup_failed, without internals, when the device errs", async () => {
    await m.setStatus(FROM, "offline");
    assertError(await lookup(ANYONE), 503, "device_offline");
    await m.setStatus(FROM, "online");
    const sim = m.t.app.services.backends.simulator;
    sim.lookup = async () => {
      throw new Error("ECONNREFUSED 10.0.0.5:1234 at /app/src/backends/bluebubbles.ts:42");
    };
    const res = await lookup(ANYONE);
    assertError(res, 502, "lookup_failed");
    for (const leak of ["ECONNREFUSED", "10.0.0.5", "/app/", ".ts"]) assert.ok(!res.body.includes(leak), leak);
    assert.deepEqual(await cacheRows(), [], "a failed lookup is not cached");
  });

  it("a cached answer is given while the device is offline; an uncached one is 503", async () => {
    assert.equal((await lookup(ANYONE)).statusCode, 200);
    await m.setStatus(FROM, "offline");
    const cached = await lookup(ANYONE);
    assert.equal(cached.statusCode, 200, cached.body);
    assert.equal(cached.json().data.imessage, true);
    assertError(await lookup("+15555557777"), 503, "device_offline");
  });
});
