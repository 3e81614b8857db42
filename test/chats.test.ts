// Conversations (api.md §5 Conversations): a chat is created by the first message in either
// direction; GET /v1/chats newest-first by last_message_at with exact pagination; GET /v1/chats/:id;
// POST /v1/chats/:id/read and /typing; test/live separation; test helpers refuse live keys.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { errorBody } from "./auth-contract.js";
import { ANYONE, assertError, CHAT_FIELDS, eventsOf, FROM, iso, type Message, type Messaging, messagingApp, OTHER_FROM, SEC, SIM } from "./messaging-helpers.js";

interface Chat {
  id: string;
  from_handle: string;
  remote_handle: string | null;
  last_message_at: string | null;
  created_at: string;
  updated_at: string;
  channel: string | null;
}

describe("chats", () => {
  let m: Messaging;
  const list = async (query = "", key = m.acct.testKey) => {
    const res = await m.t.call(key, "GET", `/v1/chats${query}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(Object.keys(res.json()), ["data", "has_more", "request_id"]);
    return res.json() as { data: Chat[]; has_more: boolean };
  };
  const getChat = async (id: string, key = m.acct.testKey) => {
    const res = await m.t.call(key, "GET", `/v1/chats/${id}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().data as Chat;
  };
  const inbound = async (remote: string, text = "hi", key = m.acct.testKey) => {
    const res = await m.t.call(key, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: remote, text });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().data as Message;
  };
  const ids = (chats: Chat[]) => chats.map((c) => c.id);

  beforeEach(async () => {
    m = await messagingApp();
  });
  afterEach(() => m.close());

  it("the first outbound message creates the chat; later messages to the same contact reuse it and move last_message_at", async () => {
    assert.deepEqual((await list()).data, []);
    const first = await m.send({ to: ANYONE, from_handle: FROM, text: "one" });
    const chat = await getChat(first.conversation_id);
    assert.deepEqual(Object.keys(chat), CHAT_FIELDS);
    const t0 = iso(m.t.clock.now());
    assert.deepEqual(
      { ...chat, id: "*", channel: "*" },
      { id: "*", from_handle: FROM, remote_handle: ANYONE, is_group: false, title: null, last_message_at: t0, created_at: t0, updated_at: t0, participants: [], channel: "*" },
    );
    m.t.clock.advance(5 * SEC);
    const second = await m.send({ to: ANYONE, from_handle: FROM, text: "two" });
    assert.equal(second.conversation_id, chat.id);
    const after = await getChat(chat.id);
    assert.deepEqual([after.created_at, after.last_message_at, after.updated_at], [t0, iso(m.t.clock.now()), iso(m.t.clock.now())]);
    assert.deepEqual(ids((await list()).data), [chat.id]);
  });

  it("an inbound message creates the chat; a reply to the contact lands in it; one chat per (number, contact)", async () => {
    const msg = await inbound(ANYONE, "hello?");
    assert.deepEqual([msg.direction, msg.status, msg.from_handle, msg.to, msg.text], ["inbound", "received", ANYONE, FROM, "hello?"]);
    const chat = await getChat(msg.conversation_id);
    assert.deepEqual([chat.from_handle, chat.remote_handle, chat.channel, chat.last_message_at], [FROM, ANYONE, "imessage", msg.created_at]);
    const received = (await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.received");
    assert.deepEqual(received.map((e) => e.data), [msg]);
    m.t.clock.advance(SEC);
    const reply = await m.send({ to: ANYONE, from_handle: FROM, text: "yes" });
    assert.equal(reply.conversation_id, chat.id);
    assert.equal((await inbound(ANYONE, "again")).conversation_id, chat.id);
    const other = await m.send({ to: SIM.smsOnly, from_handle: FROM, text: "x" });
    assert.notEqual(other.conversation_id, chat.id);
    assert.equal((await list()).data.length, 2);
  });

  it("newest first by last_message_at, with limit/has_more and `before` as a timestamp or an id", async () => {
    const contacts = ["+15557771001", "+15557771002", "+15557771003", "+15557771004"];
    const chats: string[] = [];
    for (const to of contacts) {
      chats.push((await m.send({ to, from_handle: FROM, text: "hi" })).conversation_id);
      m.t.clock.advance(SEC);
    }
    // Activity in the oldest chat moves it to the front.
    await inbound(contacts[0] ?? "", "bump");
    const [c0, c1, c2, c3] = chats as [string, string, string, string];
    assert.deepEqual(ids((await list()).data), [c0, c3, c2, c1]);
    const page = await list("?limit=2");
    assert.deepEqual([ids(page.data), page.has_more], [[c0, c3], true]);
    const next = await list(`?limit=2&before=${c3}`);
    assert.deepEqual([ids(next.data), next.has_more], [[c2, c1], false]);
    const c2At = (await getChat(c2)).last_message_at ?? "";
    assert.deepEqual(ids((await list(`?before=${c2At}`)).data), [c1]);
  });

  it("`before` as an id is exact when last_message_at ties", async () => {
    const chats: string[] = [];
    for (let i = 0; i < 5; i++) chats.push((await inbound(`+1555777200${i}`)).conversation_id);
    const seen: string[] = [];
    let before = "";
    for (;;) {
      const page = await list(`?limit=2${before ? `&before=${before}` : ""}`);
      seen.push(...ids(page.data));
      if (!page.has_more) break;
      before = page.data.at(-1)?.id ?? "";
    }
    assert.deepEqual(seen, [...chats].reverse());
  });

  it("GET /v1/chats/:id: 404, byte-identical, for another account's chat, the other mode's and a missing id", async () => {
    const mine = (await m.send({ to: ANYONE, from_handle: FROM, text: "t" })).conversation_id;
    const live = (await m.send({ to: ANYONE, from_handle: FROM, text: "l" }, m.acct.liveKey)).conversation_id;
    const theirs = (await m.send({ to: ANYONE, from_handle: OTHER_FROM, text: "o" }, m.other.testKey)).conversation_id;
    assert.notEqual(mine, live, "test and live have separate chats with the same contact");
    await getChat(mine);
    await getChat(live, m.acct.liveKey);
    const get = (id: string) => m.t.call(m.acct.testKey, "GET", `/v1/chats/${id}`);
    const missing = errorBody(await get("01a00000-0000-7000-8000-000000000000"), 404, "not_found");
    assert.equal(errorBody(await get(theirs), 404, "not_found"), missing);
    assert.equal(errorBody(await get(live), 404, "not_found"), missing);
  });

  it("a live key sees none of the test chats and messages, and the reverse", async () => {
    const test = await inbound(ANYONE);
    const live = await m.send({ to: "+15557773333", from_handle: FROM, text: "l" }, m.acct.liveKey);
    assert.deepEqual(ids((await list()).data), [test.conversation_id]);
    assert.deepEqual(ids((await list("", m.acct.liveKey)).data), [live.conversation_id]);
    const liveMessages = (await m.t.call(m.acct.liveKey, "GET", "/v1/messages")).json().data as Message[];
    assert.deepEqual(liveMessages.map((x) => x.id), [live.id]);
    assertError(await m.t.call(m.acct.liveKey, "GET", `/v1/messages/${test.id}`), 404, "not_found");
    assertError(await m.t.call(m.acct.testKey, "GET", `/v1/messages/${live.id}`), 404, "not_found");
    assertError(await m.t.call(m.acct.testKey, "POST", `/v1/chats/${live.conversation_id}/read`), 404, "not_found");
    assertError(await m.t.call(m.acct.liveKey, "POST", `/v1/chats/${test.conversation_id}/typing`, { state: "start" }), 404, "not_found");
    // The inbound test message's event is a test event only.
    assert.deepEqual((await eventsOf(m.t, m.acct.id, "test")).map((e) => [e.type, e.data.id]), [["message.received", test.id]]);
    assert.deepEqual((await eventsOf(m.t, m.acct.id, "live")).map((e) => [e.type, e.data.id]), [["message.created", live.id]]);
  });

  it("test helpers answer a live key 403 forbidden and do nothing", async () => {
    const inb = await m.t.call(m.acct.liveKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "hi" });
    assertError(inb, 403, "forbidden");
    const st = await m.t.call(m.acct.liveKey, "POST", `/v1/test_helpers/numbers/${FROM}/status`, { status: "offline" });
    assertError(st, 403, "forbidden");
    assert.deepEqual([(await list("", m.acct.liveKey)).data, (await list()).data], [[], []]);
    const numbers = (await m.t.call(m.acct.testKey, "GET", "/v1/numbers")).json().data as { status: string }[];
    assert.deepEqual(numbers.map((n) => n.status), ["online"]);
  });

  it("POST /v1/test_helpers/numbers/:handle/status: 404 for another account's or an unknown number; a number.status event once per change", async () => {
    assertError(await m.t.call(m.acct.testKey, "POST", `/v1/test_helpers/numbers/${OTHER_FROM}/status`, { status: "offline" }), 404, "not_found");
    assertError(await m.t.call(m.acct.testKey, "POST", "/v1/test_helpers/numbers/+15557770999/status", { status: "offline" }), 404, "not_found");
    assertError(await m.t.call(m.acct.testKey, "POST", `/v1/test_helpers/numbers/${FROM}/status`, { status: "asleep" }), 400, "invalid_request");
    await m.setStatus(FROM, "offline");
    await m.setStatus(FROM, "offline");
    const numbers = await m.t.call(m.acct.testKey, "GET", "/v1/numbers");
    assert.equal(numbers.json().data[0].status, "offline");
    // Only the test side: the live key still sees the device online.
    assert.equal((await m.t.call(m.acct.liveKey, "GET", "/v1/numbers")).json().data[0].status, "online");
    await m.setStatus(FROM, "online");
    const events = (await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "number.status");
    assert.deepEqual(events.map((e) => e.data), [{ handle: FROM, status: "offline" }, { handle: FROM, status: "online" }]);
  });

  describe("read and typing", () => {
    it("POST /read: 200 with the chat; POST /typing {state}: 200 for start and stop", async () => {
      const chat = (await inbound(ANYONE)).conversation_id;
      m.t.clock.advance(SEC);
      const read = await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/read`);
      assert.equal(read.statusCode, 200, read.body);
      assert.deepEqual(Object.keys(read.json().data), CHAT_FIELDS);
      assert.equal(read.json().data.id, chat);
      assert.deepEqual(read.json().data, await getChat(chat), "the answer is the chat as it is after the read");
      assert.equal((await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/read`, {})).statusCode, 200, "an empty JSON body is accepted");
      for (const state of ["start", "stop"]) {
        const res = await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/typing`, { state });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().data.id, chat);
      }
    });

    it("400 invalid_request for a bad typing body or a body on /read", async () => {
      const chat = (await inbound(ANYONE)).conversation_id;
      for (const body of [undefined, {}, { state: "typing" }, { state: "start", extra: 1 }]) {
        assertError(await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/typing`, body), 400, "invalid_request", JSON.stringify(body));
      }
      assertError(await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/read`, { all: true }), 400, "invalid_request");
    });

    it("503 device_offline for /read and /typing while the number's device is offline", async () => {
      const chat = (await inbound(ANYONE)).conversation_id;
      await m.setStatus(FROM, "offline");
      assertError(await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/read`), 503, "device_offline");
      assertError(await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/typing`, { state: "start" }), 503, "device_offline");
      await m.setStatus(FROM, "online");
      assert.equal((await m.t.call(m.acct.testKey, "POST", `/v1/chats/${chat}/read`)).statusCode, 200);
    });
  });

  it("400 invalid_request for a bad list query", async () => {
    for (const q of ["limit=0", "limit=101", "limit=x", "before=soon", "colour=red", "before=01a00000-0000-7000-8000-000000000000"]) {
      assertError(await m.t.call(m.acct.testKey, "GET", `/v1/chats?${q}`), 400, "invalid_request", q);
    }
  });
});
