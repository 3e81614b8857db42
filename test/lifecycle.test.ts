// The outbound lifecycle through the simulator, one scripted recipient at a time (api.md §5, Test
// helpers table): status, timestamps, channel, the chat, and the event rows in the `events` table.
// Time is the ManualClock: sent at T0 (the lane is idle), delivered at T0 + SIMULATOR_DELIVERY_MS,
// read SIMULATOR_READ_MS later; scripted replies, reactions and typing follow at READ_MS steps.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { applyDeviceEvents } from "../src/messages/ingest.js";
import {
  ANYONE, CHAT_FIELDS, elapse, type EventRecord, eventsOf, FROM, historyOf, iso, MESSAGE_FIELDS, type Message, type Messaging, MIN, messagingApp, SIM,
} from "./messaging-helpers.js";

const DELIVERY = 300;
const READ = 700;

describe("lifecycle through the simulator", () => {
  let m: Messaging;
  let t0: number;
  const at = (ms: number) => iso(t0 + ms);

  beforeEach(async () => {
    m = await messagingApp({ config: { SIMULATOR_DELIVERY_MS: DELIVERY, SIMULATOR_READ_MS: READ } });
    t0 = m.t.clock.now();
  });
  afterEach(() => m.close());

  /**
   * Sends to `to` at T0, lets `ms` of simulated time pass (every 100 ms for the scripts' first 5 s,
   * then a minute at a time), and returns what there is to see.
   */
  async function run(to: string, ms = 5_000) {
    const sent = await m.send({ to, from_handle: FROM, text: `hello ${to}` });
    await elapse(m.t, Math.min(ms, 5_000), 100);
    if (ms > 5_000) await elapse(m.t, ms - 5_000, MIN);
    const msg = await m.get(sent.id);
    const events = await eventsOf(m.t, m.acct.id);
    const chatRes = await m.t.call(m.acct.testKey, "GET", `/v1/chats/${msg.conversation_id}`);
    assert.equal(chatRes.statusCode, 200, chatRes.body);
    const chat = chatRes.json().data;
    // Every send makes (or finds) the 1:1 chat between the number and the recipient.
    assert.deepEqual(
      [chat.id, chat.from_handle, chat.remote_handle, chat.is_group, chat.created_at],
      [sent.conversation_id, FROM, to, false, at(0)],
    );
    for (const e of events) assert.ok(e.data.conversation_id === chat.id, `${e.type} is about another chat`);
    return { sent, msg, events, chat };
  }

  /**
   * The message.* events about `id` after its acceptance, each a full message object. The first
   * event of every send is its `message.created` (status queued, written at T0), checked here.
   */
  function about(events: EventRecord[], id: string) {
    const all = events.filter((e) => e.type.startsWith("message.") && e.type !== "message.reaction" && e.data.id === id);
    for (const e of all) assert.deepEqual(Object.keys(e.data), MESSAGE_FIELDS, e.type);
    assertEvent(all[0], "message.created", at(0), { status: "queued", channel: null, sent_at: null });
    return all.slice(1);
  }

  /** Each event carries the message as it was at that moment. */
  function assertEvent(e: EventRecord | undefined, type: string, createdAt: string, fields: Partial<Message>) {
    assert.ok(e, `missing ${type}`);
    assert.equal(e.type, type);
    assert.equal(e.mode, "test");
    assert.equal(e.created_at, createdAt, `${type} written at`);
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e.data[k], v, `${type}.data.${k}`);
  }

  it("any other recipient: iMessage; sent, delivered, then read; message.sent/delivered/read in order", async () => {
    const { sent, msg, events, chat } = await run(ANYONE);
    assert.deepEqual(
      { status: msg.status, channel: msg.channel, sent_at: msg.sent_at, delivered_at: msg.delivered_at, read_at: msg.read_at, error: msg.error },
      { status: "read", channel: "imessage", sent_at: at(0), delivered_at: at(DELIVERY), read_at: at(DELIVERY + READ), error: null },
    );
    assert.equal(msg.updated_at, at(DELIVERY + READ));
    assert.deepEqual({ ...msg, status: "queued", channel: null, sent_at: null, delivered_at: null, read_at: null, updated_at: sent.updated_at }, sent);
    const mine = about(events, msg.id);
    assert.deepEqual(mine.map((e) => e.type), ["message.sent", "message.delivered", "message.read"]);
    assertEvent(mine[0], "message.sent", at(0), { status: "sent", channel: "imessage", sent_at: at(0), delivered_at: null, text: `hello ${ANYONE}` });
    assertEvent(mine[1], "message.delivered", at(DELIVERY), { status: "delivered", sent_at: at(0), delivered_at: at(DELIVERY), read_at: null });
    assertEvent(mine[2], "message.read", at(DELIVERY + READ), { status: "read", delivered_at: at(DELIVERY), read_at: at(DELIVERY + READ) });
    assert.equal(events.length, 4, JSON.stringify(events.map((e) => e.type)));
    // The chat the first message made.
    assert.deepEqual(Object.keys(chat), CHAT_FIELDS);
    assert.deepEqual(
      { ...chat, id: "*" },
      { id: "*", from_handle: FROM, remote_handle: ANYONE, is_group: false, title: null, last_message_at: at(0), created_at: at(0), updated_at: at(0), participants: [], channel: "imessage" },
    );
    assert.equal(chat.id, msg.conversation_id);
    assert.deepEqual((await historyOf(m.t, msg.id)).map((h) => [h.to_handle, h.channel, h.text, h.sends]), [[ANYONE, "imessage", `hello ${ANYONE}`, 1]]);
  });

  it(`${SIM.smsOnly}: SMS only — channel sms, delivered, never read`, async () => {
    const { msg, events } = await run(SIM.smsOnly, 30 * MIN);
    assert.deepEqual(
      [msg.status, msg.channel, msg.sent_at, msg.delivered_at, msg.read_at],
      ["delivered", "sms", at(0), at(DELIVERY), null],
    );
    const mine = about(events, msg.id);
    assert.deepEqual(mine.map((e) => e.type), ["message.sent", "message.delivered"]);
    assertEvent(mine[0], "message.sent", at(0), { status: "sent", channel: "sms" });
    assertEvent(mine[1], "message.delivered", at(DELIVERY), { status: "delivered", channel: "sms", delivered_at: at(DELIVERY) });
    assert.deepEqual((await historyOf(m.t, msg.id)).map((h) => h.channel), ["sms"]);
  });

  it(`${SIM.fails}: fails permanently — status failed, error.code undeliverable, one message.failed, nothing delivered`, async () => {
    const { msg, events } = await run(SIM.fails, 30 * MIN);
    assert.equal(msg.status, "failed");
    assert.equal(msg.error?.code, "undeliverable");
    assert.equal(typeof msg.error?.message, "string");
    assert.ok(msg.error?.message.length, "error.message is empty");
    assert.deepEqual([msg.sent_at, msg.delivered_at, msg.read_at], [null, null, null]);
    const mine = about(events, msg.id);
    assert.deepEqual(mine.map((e) => e.type), ["message.failed"]);
    assertEvent(mine[0], "message.failed", at(0), { status: "failed", error: msg.error, sent_at: null });
    assert.deepEqual(await historyOf(m.t, msg.id), [], "the device must not have sent it");
  });

  it(`${SIM.neverDelivered}: sent, never delivered (even an hour later); only message.sent`, async () => {
    const { msg, events } = await run(SIM.neverDelivered, 60 * MIN);
    assert.deepEqual([msg.status, msg.channel, msg.sent_at, msg.delivered_at, msg.read_at, msg.error], ["sent", "imessage", at(0), null, null, null]);
    assert.deepEqual(about(events, msg.id).map((e) => e.type), ["message.sent"]);
    assert.equal(events.length, 2);
  });

  it(`${SIM.echoes}: replies with the same text after delivery — an inbound message.received in the same chat`, async () => {
    const { msg, events, chat } = await run(SIM.echoes);
    assert.deepEqual([msg.status, msg.delivered_at], ["read", at(DELIVERY)]);
    const received = events.filter((e) => e.type === "message.received");
    assert.equal(received.length, 1, JSON.stringify(events.map((e) => e.type)));
    const reply = received[0]?.data as Message;
    assert.deepEqual(Object.keys(reply), MESSAGE_FIELDS);
    assert.deepEqual(
      { direction: reply.direction, status: reply.status, text: reply.text, conversation_id: reply.conversation_id, from: reply.from_handle, to: reply.to, channel: reply.channel },
      { direction: "inbound", status: "received", text: msg.text, conversation_id: msg.conversation_id, from: SIM.echoes, to: FROM, channel: "imessage" },
    );
    assert.ok(Date.parse(reply.created_at) > Date.parse(msg.delivered_at ?? ""), "the reply comes after delivery");
    assert.equal(received[0]?.created_at, reply.created_at);
    // The reply is a message of the account, listed in the chat, which moved to the reply's time.
    assert.deepEqual(await m.get(reply.id), reply);
    const list = await m.t.call(m.acct.testKey, "GET", `/v1/messages?conversation_id=${msg.conversation_id}`);
    assert.deepEqual(list.json().data.map((x: Message) => x.id), [reply.id, msg.id]);
    assert.equal(chat.last_message_at, reply.created_at);
    const chats = await m.t.call(m.acct.testKey, "GET", "/v1/chats");
    assert.equal(chats.json().data.length, 1, "the reply must land in the same chat, not a new one");
  });

  it(`${SIM.reactsLove}: reacts love after reading — the reaction on the message and a message.reaction event`, async () => {
    const { msg, events } = await run(SIM.reactsLove);
    assert.equal(msg.status, "read");
    const reactedAt = at(DELIVERY + READ + READ);
    assert.deepEqual(msg.reactions, [{ reaction: "love", handle: SIM.reactsLove, created_at: reactedAt }]);
    const reactions = events.filter((e) => e.type === "message.reaction");
    assert.equal(reactions.length, 1);
    assert.equal(reactions[0]?.created_at, reactedAt);
    assert.deepEqual(reactions[0]?.data, {
      message_id: msg.id, conversation_id: msg.conversation_id, reaction: "love", handle: SIM.reactsLove, removed: false, created_at: reactedAt,
    });
    const order = events.map((e) => e.type);
    assert.ok(order.indexOf("message.read") < order.indexOf("message.reaction"), order.join());
  });

  it(`${SIM.typesThenReplies}: chat.typing (start, then stop) and then a reply`, async () => {
    const { msg, events } = await run(SIM.typesThenReplies);
    const tail = events.filter((e) => e.type === "chat.typing" || e.type === "message.received");
    assert.deepEqual(tail.map((e) => [e.type, e.data.state ?? null]), [["chat.typing", "start"], ["chat.typing", "stop"], ["message.received", null]]);
    const [start, stop, reply] = tail;
    assert.deepEqual(start?.data, { conversation_id: msg.conversation_id, from_handle: FROM, remote_handle: SIM.typesThenReplies, state: "start", at: at(DELIVERY + READ) });
    assert.deepEqual(stop?.data, { conversation_id: msg.conversation_id, from_handle: FROM, remote_handle: SIM.typesThenReplies, state: "stop", at: at(DELIVERY + 2 * READ) });
    assert.ok((start?.created_at ?? "") < (reply?.created_at ?? ""), "typing comes before the reply");
    assert.deepEqual([reply?.data.conversation_id, reply?.data.text, reply?.data.direction], [msg.conversation_id, msg.text, "inbound"]);
  });

  it("status only moves forward: a late delivered ack after read, or a failure after delivery, changes nothing", async () => {
    const { msg } = await run(ANYONE);
    const before = await eventsOf(m.t, m.acct.id);
    const deviceId = `sim-${msg.id}`;
    await m.t.db.transaction((trx) =>
      applyDeviceEvents(trx, m.t.clock, [
        { kind: "delivered", deviceId, at: m.t.clock.now() },
        { kind: "failed", deviceId, code: "undeliverable", message: "late" },
        { kind: "read", deviceId, at: m.t.clock.now() },
      ]),
    );
    assert.deepEqual(await m.get(msg.id), msg);
    assert.equal((await eventsOf(m.t, m.acct.id)).length, before.length);
  });

  it("a number's messages go out one per pace interval, in the order they were accepted", async () => {
    const a = await m.send({ to: ANYONE, from_handle: FROM, text: "a" });
    const b = await m.send({ to: SIM.smsOnly, from_handle: FROM, text: "b" });
    await elapse(m.t, 3_000, 100);
    assert.deepEqual([(await m.get(a.id)).sent_at, (await m.get(b.id)).sent_at], [at(0), at(60_000 / m.t.config.DEFAULT_PACE_PER_MINUTE)]);
  });

  it("live mode runs the same lifecycle on a simulator number, with live events only", async () => {
    const sent = await m.send({ to: ANYONE, from_handle: FROM, text: "live" }, m.acct.liveKey);
    await elapse(m.t, 3_000, 100);
    assert.equal((await m.get(sent.id, m.acct.liveKey)).status, "read");
    assert.deepEqual((await eventsOf(m.t, m.acct.id, "live")).map((e) => e.type), ["message.created", "message.sent", "message.delivered", "message.read"]);
    assert.deepEqual(await eventsOf(m.t, m.acct.id, "test"), []);
  });

  it("a chat made by an outbound message takes the channel of its first send", async () => {
    assert.equal((await run(SIM.smsOnly)).chat.channel, "sms");
  });
});
