/**
 * The WAHA back-end's inbound side: the fake's webhooks reach our ingest URL over real HTTP and
 * become MsgBubbles events — messages (1:1, group, media), acks in any order, reactions, edits
 * and revokes (theirs; ours echo back and are ignored), presence — and the ingest URL refuses
 * what it cannot authenticate.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { png } from "./attachment-support.js";
import { BOB, CAROL, chatOf, type Json, NUMBER, SESSION, sentText, type WahaRig, wahaRig } from "./waha-support.js";

const GROUP = "120363000000000042@g.us";

describe("waha back-end: events from a (fake) WAHA", () => {
  let r: WahaRig;
  before(async () => {
    r = await wahaRig();
    r.fake.groups.set(GROUP, { id: GROUP, subject: "Team", participants: [chatOf(NUMBER), chatOf(BOB), chatOf(CAROL)] });
  });
  after(() => r.close());

  const receive = async (opts: Parameters<WahaRig["fake"]["receive"]>[1]) => {
    const m = await r.fake.receive(SESSION, opts);
    await r.fake.flushWebhooks();
    return m;
  };
  const ofMessage = async (type: string, id: string) => (await r.eventsOf(type)).filter((e) => (e.message_id ?? e.id) === id);

  test("a contact's message becomes message.received in their 1:1 chat, and their presence is subscribed to", async () => {
    const m = await receive({ from: chatOf(BOB), text: "hi there" });
    const row = await r.received(m.id);
    assert.equal(row.direction, "inbound");
    assert.equal(row.from_handle, BOB);
    assert.equal(row.text, "hi there");
    assert.equal(row.channel, "whatsapp");
    assert.equal((await ofMessage("message.received", row.id)).length, 1);
    const chat = (await r.call("GET", `/v1/chats/${row.conversation_id}`)).json().data;
    assert.equal(chat.remote_handle, BOB);
    assert.equal(r.requests("POST", `/api/${SESSION}/presence/${chatOf(BOB)}/subscribe`).length, 1);
    // The same webhook again (WAHA retries) is the same message.
    await receive({ from: chatOf(BOB), text: "second" });
    assert.equal(r.requests("POST", `/api/${SESSION}/presence/${chatOf(BOB)}/subscribe`).length, 1, "subscribed once");
  });

  test("inbound media is fetched from WAHA with the API key and stored; message.received carries a signed URL to it", async () => {
    const bytes = await png(6, 6);
    const m = await receive({ from: chatOf(BOB), text: "photo", media: { mimetype: "image/png", filename: "pic.png", data: bytes } });
    const row = await r.received(m.id);
    const event = (await ofMessage("message.received", row.id))[0];
    const att = event?.attachments?.[0];
    assert.ok(att, JSON.stringify(event));
    assert.equal(att.mime_type, "image/png");
    assert.equal(att.filename, "pic.png");
    const u = new URL(att.url);
    assert.match(u.search, /signature=/);
    const got = await r.t.app.inject({ method: "GET", url: u.pathname + u.search });
    assert.equal(got.statusCode, 200);
    assert.ok(got.rawPayload.equals(bytes));
    const download = r.fake.requests.find((q) => q.path.startsWith(`/api/files/${SESSION}/`));
    assert.equal(download?.headers["x-api-key"], r.fake.apiKey);
  });

  test("a group message lands in a group chat with the members and subject WAHA reports; the next one in the same chat", async () => {
    const m = await receive({ from: chatOf(BOB), groupId: GROUP, participant: chatOf(BOB), text: "hello group" });
    const row = await r.received(m.id);
    assert.equal(row.from_handle, BOB);
    const chat = (await r.call("GET", `/v1/chats/${row.conversation_id}`)).json().data;
    assert.equal(chat.is_group, true);
    assert.equal(chat.title, "Team");
    assert.deepEqual([...chat.participants].sort(), [BOB, CAROL].sort());
    const next = await r.received((await receive({ from: chatOf(CAROL), groupId: GROUP, participant: chatOf(CAROL), text: "hi Bob" })).id);
    assert.equal(next.conversation_id, row.conversation_id);
    assert.equal(next.from_handle, CAROL);
  });

  test("acks: READ then a late DEVICE leaves the message read; a repeated READ is one message.read", async () => {
    const m = await sentText(r, BOB, "ack me");
    await r.fake.ack(SESSION, m.deviceId, 3);
    await r.fake.ack(SESSION, m.deviceId, 2);
    await r.fake.ack(SESSION, m.deviceId, 3);
    await r.fake.ack(SESSION, m.deviceId, 4);
    await r.fake.flushWebhooks();
    const row = await r.message(m.id);
    assert.equal(row.status, "read");
    assert.ok(row.delivered_at && row.read_at);
    assert.equal((await ofMessage("message.read", m.id)).length, 1);
    assert.equal((await ofMessage("message.delivered", m.id)).length, 0);
  });

  test("acks: DEVICE then READ step forward; ERROR on a sent message fails it", async () => {
    const m = await sentText(r, BOB, "step by step");
    await r.fake.ack(SESSION, m.deviceId, 1);
    await r.fake.ack(SESSION, m.deviceId, 2);
    await r.fake.flushWebhooks();
    assert.equal((await r.message(m.id)).status, "delivered");
    await r.fake.ack(SESSION, m.deviceId, 3);
    await r.fake.flushWebhooks();
    assert.equal((await r.message(m.id)).status, "read");
    const bad = await sentText(r, BOB, "will fail");
    await r.fake.ack(SESSION, bad.deviceId, -1);
    await r.fake.flushWebhooks();
    const failed = await r.message(bad.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error.code, "undeliverable");
    assert.equal((await ofMessage("message.failed", bad.id)).length, 1);
  });

  test("a contact's reaction, then its removal (empty text), are message.reaction events", async () => {
    const m = await sentText(r, BOB, "react to this");
    await r.fake.react(SESSION, { from: chatOf(BOB), messageId: m.deviceId, text: "👍" });
    await r.fake.flushWebhooks();
    assert.deepEqual((await r.message(m.id)).reactions.map((x: Json) => [x.handle, x.reaction]), [[BOB, "👍"]]);
    await r.fake.react(SESSION, { from: chatOf(BOB), messageId: m.deviceId, text: "" });
    await r.fake.flushWebhooks();
    assert.deepEqual((await r.message(m.id)).reactions, []);
    const events = await ofMessage("message.reaction", m.id);
    assert.deepEqual(events.map((e) => [e.handle, e.reaction, e.removed]), [[BOB, "👍", false], [BOB, "👍", true]]);
  });

  test("a contact's new reaction replaces their previous one (WhatsApp keeps one per person)", async () => {
    const m = await sentText(r, BOB, "react twice");
    await r.fake.react(SESSION, { from: chatOf(BOB), messageId: m.deviceId, text: "👍" });
    await r.fake.react(SESSION, { from: chatOf(BOB), messageId: m.deviceId, text: "😂" });
    await r.fake.flushWebhooks();
    assert.deepEqual((await r.message(m.id)).reactions.map((x: Json) => [x.handle, x.reaction]), [[BOB, "😂"]]);
    const events = await ofMessage("message.reaction", m.id);
    assert.deepEqual(events.map((e) => [e.reaction, e.removed]), [["👍", false], ["👍", true], ["😂", false]]);
  });

  test("our reaction goes out with PUT /api/reaction (empty to remove); its fromMe echo is not a second event", async () => {
    const inbound = await receive({ from: chatOf(BOB), text: "like me" });
    const row = await r.received(inbound.id);
    const add = await r.call("POST", `/v1/messages/${row.id}/reactions`, { reaction: "❤️" });
    assert.equal(add.statusCode, 200, add.body);
    await r.fake.flushWebhooks();
    assert.deepEqual(r.lastBody("PUT", "/api/reaction"), { session: SESSION, messageId: inbound.id, reaction: "❤️" });
    const off = await r.call("POST", `/v1/messages/${row.id}/reactions`, { reaction: "❤️", remove: true });
    assert.equal(off.statusCode, 200, off.body);
    await r.fake.flushWebhooks();
    assert.equal(r.lastBody("PUT", "/api/reaction").reaction, "");
    const events = await ofMessage("message.reaction", row.id);
    assert.deepEqual(events.map((e) => [e.handle, e.reaction, e.removed]), [[NUMBER, "❤️", false], [NUMBER, "❤️", true]]);
  });

  test("a contact's edit and revoke (bare ids in WAHA's events) become message.edited and message.unsent", async () => {
    const inbound = await receive({ from: chatOf(BOB), text: "tpyo" });
    await r.fake.editInbound(SESSION, inbound.id, "typo fixed");
    await r.fake.flushWebhooks();
    const row = await r.received(inbound.id);
    assert.equal(row.text, "typo fixed");
    assert.equal((await ofMessage("message.edited", row.id)).length, 1);
    await r.fake.revokeInbound(SESSION, inbound.id);
    await r.fake.flushWebhooks();
    assert.ok((await r.message(row.id)).unsent_at);
    assert.equal((await ofMessage("message.unsent", row.id)).length, 1);
  });

  test("an edit in a group finds the message by its group id form (with the author)", async () => {
    const inbound = await receive({ from: chatOf(CAROL), groupId: GROUP, participant: chatOf(CAROL), text: "meet at 5" });
    await r.fake.editInbound(SESSION, inbound.id, "meet at 6");
    await r.fake.revokeInbound(SESSION, inbound.id);
    await r.fake.flushWebhooks();
    const row = await r.received(inbound.id);
    assert.deepEqual((await ofMessage("message.edited", row.id)).map((e) => e.text), ["meet at 6"]);
    assert.ok(row.unsent_at);
  });

  test("our edit and unsend go to WAHA's message routes; their fromMe echoes add no events", async () => {
    const m = await sentText(r, BOB, "first draft");
    await r.fake.ack(SESSION, m.deviceId, 2);
    await r.fake.flushWebhooks();
    const edit = await r.call("PATCH", `/v1/messages/${m.id}`, { text: "final draft" });
    assert.equal(edit.statusCode, 200, edit.body);
    const path = `/api/${SESSION}/chats/${chatOf(BOB)}/messages/${m.deviceId}`;
    assert.deepEqual(r.lastBody("PUT", path), { text: "final draft" });
    const del = await r.call("DELETE", `/v1/messages/${m.id}`);
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(r.requests("DELETE", path).length, 1);
    await r.fake.flushWebhooks();
    assert.equal((await ofMessage("message.edited", m.id)).length, 1);
    assert.equal((await ofMessage("message.unsent", m.id)).length, 1);
    assert.equal(r.fake.messages.find((x) => x.id === m.deviceId)?.revoked, true);
  });

  test("presence: typing and paused of a subscribed contact are chat.typing start and stop", async () => {
    await r.fake.presence(SESSION, chatOf(BOB), "typing");
    await r.fake.presence(SESSION, chatOf(BOB), "paused");
    await r.fake.flushWebhooks();
    const typing = (await r.eventsOf("chat.typing")).filter((e) => e.remote_handle === BOB);
    assert.deepEqual(typing.map((e) => e.state), ["start", "stop"]);
    assert.ok(typing[0]?.conversation_id);
  });

  test("mark read and typing go to sendSeen and startTyping/stopTyping for the chat", async () => {
    const inbound = await receive({ from: chatOf(BOB), text: "read me" });
    const chatId = (await r.received(inbound.id)).conversation_id;
    const read = await r.call("POST", `/v1/chats/${chatId}/read`);
    assert.equal(read.statusCode, 200, read.body);
    assert.deepEqual(r.lastBody("POST", "/api/sendSeen"), { session: SESSION, chatId: chatOf(BOB) });
    for (const state of ["start", "stop"]) {
      const res = await r.call("POST", `/v1/chats/${chatId}/typing`, { state });
      assert.equal(res.statusCode, 200, res.body);
    }
    assert.deepEqual(r.lastBody("POST", "/api/startTyping"), { session: SESSION, chatId: chatOf(BOB) });
    assert.deepEqual(r.lastBody("POST", "/api/stopTyping"), { session: SESSION, chatId: chatOf(BOB) });
  });

  test("the ingest URL: WAHA's own signed deliveries were all accepted; a wrong or missing secret or a bad HMAC is 401", async () => {
    const ours = r.fake.deliveries.filter((d) => d.url.includes(`/ingest/waha/${r.numberId}`));
    assert.ok(ours.length > 10);
    assert.deepEqual([...new Set(ours.map((d) => d.status))], [200]);
    const body = { id: "evt_1", session: SESSION, event: "message", timestamp: r.t.clock.now(), payload: { id: `false_${chatOf(BOB)}_3AHANDMADE`, from: chatOf(BOB), fromMe: false, body: "by hand", timestamp: 1 } };
    assert.equal((await r.ingest(body, { secret: "wrong" })).statusCode, 401);
    assert.equal((await r.ingest(body, { secret: null })).statusCode, 401);
    assert.equal((await r.ingest(body, { hmac: "not-the-secret" })).statusCode, 401);
    const signed = await r.ingest(body, { hmac: r.settings.ingestSecret });
    assert.equal(signed.statusCode, 200, signed.body);
    assert.equal(signed.json().data.events, 1);
    // WAHA Core does not sign: the secret in the URL is enough.
    const unsigned = await r.ingest({ ...body, payload: { ...body.payload, id: `false_${chatOf(BOB)}_3AUNSIGNED` } });
    assert.equal(unsigned.json().data.events, 1);
    // Another session's events, status changes and unknown events are accepted and ignored.
    assert.equal((await r.ingest({ ...body, session: "other" })).json().data.events, 0);
    assert.equal((await r.ingest({ ...body, event: "session.status", payload: { name: SESSION, status: "WORKING" } })).json().data.events, 0);
    assert.equal((await r.ingest({ ...body, event: "poll.vote", payload: {} })).json().data.events, 0);
  });
});
