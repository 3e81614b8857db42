// One number, two real back-ends (issue 6 item 3): iMessage/SMS through BlueBubbles and WhatsApp
// through WAHA, every operation routed by its channel; one back-end down leaves the other working.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BlueBubblesBackend } from "../src/backends/bluebubbles/backend.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import { WahaBackend } from "../src/backends/waha/backend.js";
import { addNumber, updateNumber } from "../src/numbers/store.js";
import { FakeBlueBubbles } from "../fakes/bluebubbles/server.js";
import { FakeWaha } from "../fakes/waha/server.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";

const NUMBER = "+15557040001";
const ALICE = "+15557040002";

describe("a number on BlueBubbles and WAHA: routed by channel", () => {
  let t: TestApp;
  let mac: FakeBlueBubbles;
  let waha: FakeWaha;
  let account: SeededAccount;

  before(async () => {
    t = await buildTestApp({
      backends: ({ db, clock, config }) =>
        new Backends(new SimulatorBackend(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS }), {
          bluebubbles: new BlueBubblesBackend({ config, clock }),
          waha: new WahaBackend({ config, clock }),
        }),
    });
    t.config.PUBLIC_URL = await t.app.listen({ host: "127.0.0.1", port: 0 });
    mac = new FakeBlueBubbles({ now: () => t.clock.now() });
    waha = new FakeWaha({ now: () => t.clock.now() });
    await Promise.all([mac.start(), waha.start()]);
    waha.addSession("default", { status: "WORKING", me: `${NUMBER.slice(1)}@c.us` });
    account = await t.seedAccount();
    await addNumber(t.db.kysely, t.clock, { accountId: account.id, handle: NUMBER, channels: "imessage,sms", backend: "bluebubbles", settings: { url: mac.url, password: mac.password } });
    await updateNumber(t.db.kysely, t.clock, NUMBER, { channels: "imessage,sms,whatsapp", backend: "waha", settings: { url: waha.url, apiKey: waha.apiKey, session: "default" } });
    await t.app.services.devices.tick();
  });
  after(async () => {
    await Promise.all([mac.stop(), waha.stop()]);
    await t.close();
  });

  const send = async (body: Record<string, unknown>) => {
    const res = await t.call(account.liveKey, "POST", "/v1/messages", { from_handle: NUMBER, to: ALICE, ...body });
    return res;
  };
  const settle = async () => {
    t.clock.advance(1_000);
    await t.app.services.dispatcher.runUntilIdle();
    await t.app.services.dispatcher.settled();
    await Promise.all([mac.flushWebhooks(), waha.flushWebhooks()]);
  };
  const status = async (id: string) => (await t.call(account.liveKey, "GET", `/v1/messages/${id}`)).json().data as { status: string; channel: string };
  const number = () => t.db.kysely.selectFrom("numbers").select(["status", "offline_channels"]).where("handle", "=", NUMBER).executeTakeFirstOrThrow();

  test("both devices subscribed; an iMessage goes to the Mac, a WhatsApp message to WAHA", async () => {
    assert.equal(mac.webhooks.length, 1);
    assert.equal(waha.sessions.get("default")?.config.webhooks?.length, 1);
    const im = (await send({ text: "by iMessage" })).json().data;
    await settle();
    const wa = (await send({ text: "by WhatsApp", channel: "whatsapp" })).json().data;
    await settle();
    assert.deepEqual(await status(im.id).then((m) => [m.status, m.channel]), ["sent", "imessage"]);
    assert.deepEqual(await status(wa.id).then((m) => [m.status, m.channel]), ["sent", "whatsapp"]);
    assert.deepEqual(mac.sent.map((m) => m.text), ["by iMessage"]);
    assert.deepEqual(waha.sent.map((m) => m.body), ["by WhatsApp"]);
  });

  test("inbound on either network lands in the number's threads, one per channel's thread", async () => {
    await mac.receive({ from: ALICE, text: "from the iPhone" });
    await waha.receive("default", { from: `${ALICE.slice(1)}@c.us`, text: "from WhatsApp" });
    await settle();
    const rows = await t.db.kysely.selectFrom("messages").select(["text", "channel"]).where("direction", "=", "inbound").orderBy("text").execute();
    assert.deepEqual(rows.map((r) => [r.text, r.channel]), [["from WhatsApp", "whatsapp"], ["from the iPhone", "imessage"]]);
  });

  test("WhatsApp down: the number stays online for iMessage, forced WhatsApp is 400, iMessage still goes out", async () => {
    await waha.setStatus("default", "SCAN_QR_CODE");
    await t.app.services.devices.tick();
    assert.deepEqual(await number(), { status: "online", offline_channels: "whatsapp" });
    const forced = await send({ text: "no session", channel: "whatsapp" });
    assert.equal(forced.statusCode, 400, forced.body);
    assert.equal(forced.json().error, "invalid_from_handle");
    const im = await send({ text: "still iMessage" });
    assert.equal(im.statusCode, 202);
    await settle();
    assert.equal((await status(im.json().data.id)).status, "sent");
    await waha.setStatus("default", "WORKING");
    await t.app.services.devices.tick();
    assert.deepEqual(await number(), { status: "online", offline_channels: "" });
  });

  test("both down: offline (503 device_offline, one number.status event); back up: online", async () => {
    mac.offline = true;
    await waha.setStatus("default", "FAILED");
    await t.app.services.devices.tick();
    assert.deepEqual(await number(), { status: "offline", offline_channels: "imessage,sms,whatsapp" });
    assert.equal((await send({ text: "nobody home" })).statusCode, 503);
    mac.offline = false;
    await waha.setStatus("default", "WORKING");
    await t.app.services.devices.tick();
    assert.equal((await number()).status, "online");
    const events = await t.db.kysely.selectFrom("events").select("data").where("type", "=", "number.status").orderBy("id").execute();
    assert.deepEqual(events.map((e) => JSON.parse(e.data).status), ["offline", "online"]);
  });
});
