// POST /v1/messages/:id/reactions and POST /v1/messages/:id/retry (api.md §5 Messages): tapbacks
// only once delivered, never on SMS, one emoji on WhatsApp; retry only a failed outbound message.
// Also the WhatsApp variants of edit and unsend (no edit count limit, unsend at any time).
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  ANYONE, assertError, elapse, eventsOf, FROM, historyOf, iso, type Message, type Messaging, MIN, messageEvents, messagingApp, SIM, statusOf, untilStatus,
} from "./messaging-helpers.js";

const WA = "+15557770005";
const HOUR = 60 * MIN;

describe("reactions, retry and WhatsApp actions", () => {
  let m: Messaging;
  const react = (id: string, body: unknown, headers?: Record<string, string>) => m.t.call(m.acct.testKey, "POST", `/v1/messages/${id}/reactions`, body, headers);
  const retry = (id: string, headers?: Record<string, string>) => m.t.call(m.acct.testKey, "POST", `/v1/messages/${id}/retry`, undefined, headers);
  const reach = async (to: string, status: string, extra: Record<string, unknown> = {}) => {
    const msg = await m.send({ to, from_handle: FROM, text: "hello", ...extra });
    await untilStatus(m.t, msg.id, status);
    return m.get(msg.id);
  };
  const reactionEvents = async () => (await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.reaction").map((e) => e.data);

  beforeEach(async () => {
    m = await messagingApp();
    await m.t.addNumber(m.acct.id, WA, "whatsapp");
  });
  afterEach(() => m.close());

  describe("reactions", () => {
    it("a delivered iMessage: 200 with the reaction listed, a message.reaction event; again is one reaction; remove:true removes", async () => {
      const msg = await reach(ANYONE, "delivered");
      const res = await react(msg.id, { reaction: "love" });
      assert.equal(res.statusCode, 200, res.body);
      const loved = iso(m.t.clock.now());
      assert.deepEqual(res.json().data.reactions, [{ reaction: "love", handle: FROM, created_at: loved }]);
      m.t.clock.advance(10);
      assert.equal((await react(msg.id, { reaction: "like" })).statusCode, 200);
      assert.equal((await react(msg.id, { reaction: "love" })).statusCode, 200);
      assert.deepEqual((await m.get(msg.id)).reactions.map((r) => r.reaction), ["love", "like"]);
      const removed = await react(msg.id, { reaction: "love", remove: true });
      assert.equal(removed.statusCode, 200, removed.body);
      assert.deepEqual(removed.json().data.reactions.map((r: { reaction: string }) => r.reaction), ["like"]);
      const list = await m.t.call(m.acct.testKey, "GET", "/v1/messages");
      assert.deepEqual(list.json().data[0].reactions, removed.json().data.reactions);
      const events = await reactionEvents();
      assert.deepEqual(events.map((e) => [e.message_id, e.conversation_id, e.reaction, e.handle, e.removed]), [
        [msg.id, msg.conversation_id, "love", FROM, false],
        [msg.id, msg.conversation_id, "like", FROM, false],
        [msg.id, msg.conversation_id, "love", FROM, false],
        [msg.id, msg.conversation_id, "love", FROM, true],
      ]);
      assert.equal(events[0]?.created_at, loved);
    });

    it("every tapback is accepted on a read iMessage and on an inbound one", async () => {
      const msg = await reach(ANYONE, "read");
      for (const reaction of ["love", "like", "dislike", "laugh", "emphasize", "question"]) {
        assert.equal((await react(msg.id, { reaction })).statusCode, 200, reaction);
      }
      assert.equal((await m.get(msg.id)).reactions.length, 6);
      const inbound = await m.t.call(m.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "hi" });
      const res = await react(inbound.json().data.id, { reaction: "laugh" });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json().data.reactions.map((r: { handle: string }) => r.handle), [FROM]);
    });

    it("409 conflict before delivery (queued, sent, failed) and on SMS; 400 for a bad tapback; nothing stored", async () => {
      const queued = await m.send({ to: ANYONE, from_handle: FROM, text: "q", send_at: iso(m.t.clock.now() + HOUR) });
      const sent = await reach(SIM.neverDelivered, "sent");
      const failed = await reach(SIM.fails, "failed");
      const sms = await reach(SIM.smsOnly, "delivered");
      for (const [label, id] of [["scheduled", queued.id], ["sent, not delivered", sent.id], ["failed", failed.id], ["sms", sms.id]]) {
        assertError(await react(id ?? "", { reaction: "love" }), 409, "conflict", label);
      }
      const ok = await reach(ANYONE, "delivered");
      for (const body of [{ reaction: "wow" }, { reaction: "👍" }, { reaction: "LOVE" }, {}, { reaction: "" }, { reaction: "love", remove: "yes" }, { reaction: "love", extra: 1 }]) {
        assertError(await react(ok.id, body), 400, "invalid_request", JSON.stringify(body));
      }
      assert.deepEqual(await reactionEvents(), []);
      assert.equal((await m.t.db.kysely.selectFrom("message_reactions").selectAll().execute()).length, 0);
    });

    it("an inbound message from the SMS-only contact arrives as SMS, and cannot be reacted to", async () => {
      const res = await m.t.call(m.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: SIM.smsOnly, text: "green" });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().data.channel, "sms");
      assertError(await react(res.json().data.id, { reaction: "love" }), 409, "conflict");
    });

    it("503 device_offline while the device is offline; nothing stored", async () => {
      const msg = await reach(ANYONE, "delivered");
      await m.setStatus(FROM, "offline");
      assertError(await react(msg.id, { reaction: "love" }), 503, "device_offline");
      assert.deepEqual((await m.get(msg.id)).reactions, []);
      assert.deepEqual(await reactionEvents(), []);
    });

    it("events carry the message as it is: message.read, .edited and .unsent after a reaction list the reaction", async () => {
      const msg = await reach(ANYONE, "delivered");
      assert.equal((await react(msg.id, { reaction: "like" })).statusCode, 200);
      const reactions = (await m.get(msg.id)).reactions;
      await untilStatus(m.t, msg.id, "read");
      assert.equal((await m.t.call(m.acct.testKey, "PATCH", `/v1/messages/${msg.id}`, { text: "edited" })).statusCode, 200);
      assert.equal((await m.t.call(m.acct.testKey, "DELETE", `/v1/messages/${msg.id}`)).statusCode, 200);
      const current = await m.get(msg.id);
      const events = await messageEvents(m.t, m.acct.id, msg.id);
      const of = (type: string) => events.find((e) => e.type === type)?.data;
      assert.deepEqual(of("message.read")?.reactions, reactions);
      assert.deepEqual(of("message.edited")?.reactions, reactions);
      assert.deepEqual(of("message.unsent"), current);
    });
  });

  describe("WhatsApp", () => {
    it("reactions are one emoji; edits have no count limit within 15 minutes; unsend works after 2 minutes", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: WA, text: "wa", channel: "whatsapp" });
      await untilStatus(m.t, msg.id, "read");
      assert.equal((await m.get(msg.id)).channel, "whatsapp");
      for (const reaction of ["👍", "❤️", "🇫🇷", "👍🏽"]) assert.equal((await react(msg.id, { reaction })).statusCode, 200, reaction);
      for (const reaction of ["love", "👍👍", "ok"]) assertError(await react(msg.id, { reaction }), 400, "invalid_request", reaction);
      for (let i = 1; i <= 7; i++) assert.equal((await m.t.call(m.acct.testKey, "PATCH", `/v1/messages/${msg.id}`, { text: `e${i}` })).statusCode, 200, `edit ${i}`);
      m.t.clock.set(Date.parse((await m.get(msg.id)).sent_at ?? "") + 15 * MIN + 1);
      assertError(await m.t.call(m.acct.testKey, "PATCH", `/v1/messages/${msg.id}`, { text: "late" }), 409, "conflict");
      const del = await m.t.call(m.acct.testKey, "DELETE", `/v1/messages/${msg.id}`);
      assert.equal(del.statusCode, 200, del.body);
      assert.equal(del.json().data.unsent_at, iso(m.t.clock.now()));
    });
  });

  describe("retry", () => {
    it("409 conflict for a message that is not failed: queued, scheduled, sent, read, inbound, canceled", async () => {
      const read = await reach(ANYONE, "read");
      const sent = await reach(SIM.neverDelivered, "sent");
      const queued = await m.send({ to: ANYONE, from_handle: FROM, text: "q" });
      const scheduled = await m.send({ to: ANYONE, from_handle: FROM, text: "s", send_at: iso(m.t.clock.now() + HOUR) });
      const canceled = await m.send({ to: ANYONE, from_handle: FROM, text: "c", send_at: iso(m.t.clock.now() + HOUR) });
      await m.t.call(m.acct.testKey, "DELETE", `/v1/messages/${canceled.id}`);
      const inbound = (await m.t.call(m.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "hi" })).json().data as Message;
      for (const [label, msg] of [["read", read], ["sent", sent], ["queued", queued], ["scheduled", scheduled], ["canceled", canceled], ["inbound", inbound]] as const) {
        const before = await m.get(msg.id);
        assertError(await retry(msg.id), 409, "conflict", label);
        assert.deepEqual(await m.get(msg.id), before, label);
      }
    });

    it(`a failed message (${SIM.fails}) goes back to queued with 202, goes out again, and fails again`, async () => {
      const msg = await reach(SIM.fails, "failed");
      m.t.clock.advance(MIN);
      const res = await retry(msg.id);
      assert.equal(res.statusCode, 202, res.body);
      const data = res.json().data as Message;
      assert.deepEqual([data.id, data.status, data.error, data.updated_at], [msg.id, "queued", null, iso(m.t.clock.now())]);
      await untilStatus(m.t, msg.id, "failed");
      assert.equal((await m.get(msg.id)).error?.code, "undeliverable");
      assert.deepEqual((await messageEvents(m.t, m.acct.id, msg.id)).map((e) => e.type), ["message.created", "message.failed", "message.failed"]);
    });

    it("a message that expired while the device was offline: failed (expired); once back online, retry sends it once", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "stuck" });
      await m.setStatus(FROM, "offline");
      await elapse(m.t, 9 * HOUR, 30 * MIN);
      assert.equal(await statusOf(m.t, msg.id), "queued");
      await untilStatus(m.t, msg.id, "failed", 2 * HOUR, 10 * MIN);
      const failed = await m.get(msg.id);
      assert.equal(failed.error?.code, "expired");
      assert.ok(Date.parse(failed.updated_at) - Date.parse(msg.created_at) >= m.t.config.MESSAGE_VALIDITY_HOURS * HOUR);
      assert.deepEqual(await historyOf(m.t, msg.id), []);
      // Still offline: the retry is refused like a send would be, and the message stays failed.
      assertError(await retry(msg.id), 503, "device_offline");
      assert.equal(await statusOf(m.t, msg.id), "failed");
      await m.setStatus(FROM, "online");
      const res = await retry(msg.id, { "idempotency-key": "retry-1" });
      assert.equal(res.statusCode, 202, res.body);
      await untilStatus(m.t, msg.id, "read");
      const done = await m.get(msg.id);
      assert.deepEqual([done.error, done.channel], [null, "imessage"]);
      assert.deepEqual((await historyOf(m.t, msg.id)).map((h) => h.sends), [1]);
      assert.deepEqual((await messageEvents(m.t, m.acct.id, msg.id)).map((e) => e.type), ["message.created", "message.failed", "message.sent", "message.delivered", "message.read"]);
      // A replay of the retry answers the message as it is now, and does not queue it again.
      const replay = await retry(msg.id, { "idempotency-key": "retry-1" });
      assert.equal(replay.statusCode, 200, replay.body);
      assert.equal(replay.headers["idempotent-replayed"], "true");
      assert.equal(replay.json().data.status, "read");
      await elapse(m.t, 5_000);
      assert.deepEqual((await historyOf(m.t, msg.id)).map((h) => h.sends), [1]);
    });
  });
});
