/**
 * A WAHA session that is not WORKING, or a WAHA that does not answer: the monitor takes the
 * number offline (number.status), sends are refused at the API (400 forced / 503 unforced), and a
 * send caught between monitor rounds is put back, not failed. Back to WORKING: online again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BOB, chatOf, NUMBER, SESSION, type WahaRig, wahaRig } from "./waha-support.js";

describe("waha back-end: session status", () => {
  let r: WahaRig;
  before(async () => {
    r = await wahaRig();
  });
  after(() => r.close());

  const number = () => r.t.db.kysely.selectFrom("numbers").selectAll().where("id", "=", r.numberId).executeTakeFirstOrThrow();
  const statuses = async () => (await r.eventsOf("number.status")).map((e) => [e.handle, e.status]);

  test("a session that stops WORKING takes the number offline; forced WhatsApp is 400, unforced 503; WORKING again is online", async () => {
    await r.fake.setStatus(SESSION, "SCAN_QR_CODE");
    await r.fake.flushWebhooks();
    await r.t.app.services.devices.tick();
    const down = await number();
    assert.equal(down.status, "offline");
    assert.equal(down.offline_channels, "whatsapp");
    assert.deepEqual(await statuses(), [[NUMBER, "offline"]]);

    const forced = await r.call("POST", "/v1/messages", { from_handle: NUMBER, to: BOB, text: "forced", channel: "whatsapp" });
    assert.equal(forced.statusCode, 400, forced.body);
    assert.equal(forced.json().error, "invalid_from_handle");
    const unforced = await r.call("POST", "/v1/messages", { from_handle: NUMBER, to: BOB, text: "unforced" });
    assert.equal(unforced.statusCode, 503, unforced.body);
    assert.equal(unforced.json().error, "device_offline");

    await r.fake.setStatus(SESSION, "WORKING");
    await r.fake.flushWebhooks();
    await r.t.app.services.devices.tick();
    assert.equal((await number()).status, "online");
    assert.equal((await number()).offline_channels, "");
    assert.deepEqual(await statuses(), [[NUMBER, "offline"], [NUMBER, "online"]]);
    const m = await r.send({ to: BOB, text: "back again", channel: "whatsapp" });
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
  });

  test("a session that stops between monitor rounds: the send is put back (422 = device_offline), actions are 503, lookups 502", async () => {
    const inbound = await r.fake.receive(SESSION, { from: chatOf(BOB), text: "hello" });
    await r.fake.flushWebhooks();
    const their = await r.received(inbound.id);
    await r.fake.setStatus(SESSION, "STOPPED");
    await r.fake.flushWebhooks();
    const m = await r.send({ to: BOB, text: "caught in between", channel: "whatsapp" });
    await r.settle();
    const row = await r.message(m.id);
    assert.equal(row.status, "queued", JSON.stringify(row));
    assert.equal(r.fake.sent.filter((s) => s.body === "caught in between").length, 0);

    const react = await r.call("POST", `/v1/messages/${their.id}/reactions`, { reaction: "👍" });
    assert.equal(react.statusCode, 503, react.body);
    assert.equal(react.json().error, "device_offline");
    const read = await r.call("POST", `/v1/chats/${their.conversation_id}/read`);
    assert.equal(read.statusCode, 503, read.body);
    const group = await r.call("POST", "/v1/chats", { from_handle: NUMBER, addresses: [BOB, "+15557020009"], message: { text: "hi" } });
    assert.equal(group.statusCode, 503, group.body);
    const lookup = await r.call("GET", `/v1/lookup?handle=${encodeURIComponent("+15557020077")}&from_handle=${encodeURIComponent(NUMBER)}`);
    assert.equal(lookup.statusCode, 502, lookup.body);
    assert.equal(lookup.json().error, "lookup_failed");

    await r.fake.setStatus(SESSION, "WORKING");
    await r.fake.flushWebhooks();
    r.t.clock.advance(60_000); // past the lane's back-off
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    assert.equal(r.fake.sent.filter((s) => s.body === "caught in between").length, 1);
  });

  test("a WAHA that does not answer is offline; when it is back, online", async () => {
    const port = Number(new URL(r.fake.url).port);
    await r.fake.stop();
    await r.t.app.services.devices.tick();
    assert.equal((await number()).status, "offline");
    await r.fake.start(port);
    await r.t.app.services.devices.tick();
    assert.equal((await number()).status, "online");
    assert.deepEqual((await statuses()).slice(-2), [[NUMBER, "offline"], [NUMBER, "online"]]);
  });
});
