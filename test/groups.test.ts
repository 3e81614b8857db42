// Group chats, the rules of the API (api.md §5 Conversations): POST /v1/chats with 2–31 addresses,
// a required first message and a title of at most 100 characters; 409 not_a_group on every
// group-only route for a 1:1 chat; participant rules; 404 across accounts and modes; test/live
// separation. The group lifecycle is in groups-lifecycle.test.ts, device outcomes in
// groups-device.test.ts.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { errorBody } from "./auth-contract.js";
import { type Chat, type GroupApp, groupApp, members } from "./group-support.js";
import { ANYONE, assertError, CHAT_FIELDS, eventsOf, FROM, iso, MESSAGE_FIELDS, type Message, OTHER_FROM, SIM } from "./messaging-helpers.js";

describe("groups: POST /v1/chats", () => {
  let g: GroupApp;
  const post = (body: Record<string, unknown>, key = g.acct.testKey) => g.t.call(key, "POST", "/v1/chats", body);
  const valid = (over: Record<string, unknown> = {}) => ({ from_handle: FROM, addresses: members(2), message: { text: "hi all" }, ...over });

  beforeEach(async () => {
    g = await groupApp();
  });
  afterEach(() => g.close());

  it("201 with the group chat; its first message is stored sent, with message.created and message.sent", async () => {
    const [a, b] = members(2) as [string, string];
    const res = await post({ from_handle: FROM, addresses: [a, b], title: "Launch crew", message: { text: "Welcome!", effect: "confetti", metadata: { ref: "42" } } });
    assert.equal(res.statusCode, 201, res.body);
    const chat = res.json().data as Chat;
    const now = iso(g.t.clock.now());
    assert.deepEqual(Object.keys(chat), CHAT_FIELDS);
    assert.deepEqual(
      { ...chat, id: "*" },
      { id: "*", from_handle: FROM, remote_handle: null, is_group: true, title: "Launch crew", last_message_at: now, created_at: now, updated_at: now, participants: [a, b], channel: "imessage" },
    );
    assert.deepEqual(await g.getChat(chat.id), chat);

    const list = (await g.t.call(g.acct.testKey, "GET", `/v1/messages?conversation_id=${chat.id}`)).json().data as Message[];
    assert.equal(list.length, 1);
    const first = list[0] as Message;
    assert.deepEqual(Object.keys(first), MESSAGE_FIELDS);
    assert.deepEqual(
      [first.direction, first.status, first.channel, first.text, first.effect, first.metadata, first.from_handle, first.to, first.sent_at, first.conversation_id],
      ["outbound", "sent", "imessage", "Welcome!", "confetti", { ref: "42" }, FROM, chat.id, now, chat.id],
    );
    const events = await eventsOf(g.t, g.acct.id);
    assert.deepEqual(events.map((e) => [e.type, e.data.id, e.data.status]), [["message.created", first.id, "sent"], ["message.sent", first.id, "sent"]]);
    assert.deepEqual(events[1]?.data, first);
    // The device got one create, with the members and the first message under our message id.
    assert.deepEqual(g.device.calls, [["createGroup", { addresses: [a, b], title: "Launch crew", channel: "imessage", firstMessage: { id: first.id, text: "Welcome!", effect: "confetti" } }]]);
  });

  it("addresses: 1 and 32 are refused with 400 invalid_request; 2 and 31 are accepted", async () => {
    assertError(await post(valid({ addresses: members(1) })), 400, "invalid_request", "1 address");
    assertError(await post(valid({ addresses: members(32) })), 400, "invalid_request", "32 addresses");
    assertError(await post(valid({ addresses: [] })), 400, "invalid_request", "none");
    assertError(await post(valid({ addresses: ANYONE })), 400, "invalid_request", "not an array");
    assert.equal((await g.createGroup({ addresses: members(2) })).participants.length, 2);
    assert.deepEqual((await g.createGroup({ addresses: members(31, 15557720000) })).participants, members(31, 15557720000));
    assert.equal(g.device.count("createGroup"), 2, "refused requests never reach the device");
  });

  it("addresses are normalised and counted once; not your own number; each a valid handle", async () => {
    const chat = await g.createGroup({ addresses: [" +15557731001", "Ann@Example.com", "+15557731001", "ann@example.com"] });
    assert.deepEqual(chat.participants, ["+15557731001", "ann@example.com"]);
    const dup = assertError(await post(valid({ addresses: ["+15557731001", "+15557731001"] })), 400, "invalid_request");
    assert.match(dup.message, /at least 2 different/);
    const own = assertError(await post(valid({ addresses: [FROM, "+15557731001", "+15557731002"] })), 400, "invalid_request");
    assert.match(own.message, /from_handle/);
    const bad = assertError(await post(valid({ addresses: ["+15557731001", "not-a-handle"] })), 400, "invalid_handle");
    assert.match(bad.message, /addresses\[1\]/);
  });

  it("title: 100 characters are accepted, 101 and an empty one are refused", async () => {
    const title = "t".repeat(100);
    assert.equal((await g.createGroup({ addresses: members(2), title })).title, title);
    // Characters, not bytes or UTF-16 units: 100 emoji are 100 characters.
    const emoji = "🎉".repeat(100);
    assert.equal((await g.createGroup({ addresses: members(2), title: emoji })).title, emoji);
    assertError(await post(valid({ title: "t".repeat(101) })), 400, "invalid_request", "101");
    assertError(await post(valid({ title: "" })), 400, "invalid_request", "empty");
    assertError(await post(valid({ title: null })), 400, "invalid_request", "null");
    assert.equal((await g.createGroup({ addresses: members(2) })).title, null, "no title: null");
  });

  it("the first message is required and follows the send rules", async () => {
    for (const [label, body] of [
      ["missing", { from_handle: FROM, addresses: members(2) }],
      ["empty object", valid({ message: {} })],
      ["empty text", valid({ message: { text: "" } })],
      ["10,001 characters", valid({ message: { text: "x".repeat(10_001) } })],
      ["a string", valid({ message: "hi" })],
      ["unknown effect", valid({ message: { text: "hi", effect: "wobble" } })],
      ["attachment_ids", valid({ message: { text: "hi", attachment_ids: ["01a00000-0000-7000-8000-000000000000"] } })],
      ["unknown field", valid({ colour: "red" })],
      ["from_handle missing", { addresses: members(2), message: { text: "hi" } }],
    ] as const) {
      assertError(await post(body), 400, "invalid_request", label);
    }
    assert.equal((await g.createGroup({ addresses: members(2), message: { text: "x".repeat(10_000) } })).is_group, true);
  });

  it("from_handle: another account's number or an SMS-only one → 400 invalid_from_handle", async () => {
    assertError(await post(valid({ from_handle: OTHER_FROM })), 400, "invalid_from_handle", "another account's");
    assertError(await post(valid({ from_handle: "+15557770888" })), 400, "invalid_from_handle", "nobody's");
    assertError(await post(valid({ from_handle: "nope" })), 400, "invalid_handle");
    await g.t.addNumber(g.acct.id, "+15557770003", "sms");
    const sms = assertError(await post(valid({ from_handle: "+15557770003" })), 400, "invalid_from_handle");
    assert.match(sms.message, /SMS only/);
    assert.deepEqual(await g.counts(), { chats: 0, messages: 0, events: 0, idempotency_keys: 0, simulator_history: 0, simulator_timers: 0 });
  });
});

describe("groups: rename and participants", () => {
  let g: GroupApp;
  let group: Chat;
  const [A, B, C] = members(3) as [string, string, string];
  const patch = (id: string, body: unknown, key = g.acct.testKey) => g.t.call(key, "PATCH", `/v1/chats/${id}`, body);
  const add = (id: string, handle: string, key = g.acct.testKey) => g.t.call(key, "POST", `/v1/chats/${id}/participants`, { handle });
  const remove = (id: string, handle: string, key = g.acct.testKey) => g.t.call(key, "DELETE", `/v1/chats/${id}/participants/${encodeURIComponent(handle)}`);

  beforeEach(async () => {
    g = await groupApp();
    group = await g.createGroup({ addresses: [A, B, C], title: "Crew" });
    g.device.calls.length = 0;
  });
  afterEach(() => g.close());

  it("409 not_a_group on PATCH, POST participants and DELETE participants for a 1:1 chat; nothing reaches the device", async () => {
    const oneToOne = (await g.send({ to: ANYONE, from_handle: FROM, text: "hi" })).conversation_id;
    const before = await g.counts();
    assertError(await patch(oneToOne, { title: "New" }), 409, "not_a_group", "rename");
    assertError(await add(oneToOne, "+15557731999"), 409, "not_a_group", "add");
    assertError(await remove(oneToOne, ANYONE), 409, "not_a_group", "remove");
    assertError(await patch(oneToOne, { title: null }), 409, "not_a_group", "rename to null");
    assert.deepEqual(g.device.calls, []);
    assert.deepEqual(await g.counts(), before);
    // A test helper's group change is refused alike.
    const change = await g.t.call(g.acct.testKey, "POST", "/v1/test_helpers/group_changes", { conversation_id: oneToOne, type: "renamed", title: "x" });
    assertError(change, 409, "not_a_group", "test helper");
  });

  it("PATCH title: 100 characters accepted, 101 and empty refused; null removes the title; the same title is a no-op", async () => {
    const hundred = "r".repeat(100);
    const res = await patch(group.id, { title: hundred });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().data.title, hundred);
    assertError(await patch(group.id, { title: "r".repeat(101) }), 400, "invalid_request", "101");
    assertError(await patch(group.id, { title: "" }), 400, "invalid_request", "empty");
    assertError(await patch(group.id, {}), 400, "invalid_request", "no title");
    assertError(await patch(group.id, { title: "x", participants: [] }), 400, "invalid_request", "unknown field");
    const cleared = await patch(group.id, { title: null });
    assert.equal(cleared.json().data.title, null);
    const calls = g.device.count("renameGroup");
    const events = (await eventsOf(g.t, g.acct.id)).length;
    const same = await patch(group.id, { title: null });
    assert.equal(same.statusCode, 200);
    assert.equal(g.device.count("renameGroup"), calls, "renaming to the current title calls no device");
    assert.equal((await eventsOf(g.t, g.acct.id)).length, events, "and writes no event");
  });

  it("POST participants: 400 for a bad or own handle, 409 conflict for a member; DELETE: 404 for a non-member, 400 for a bad handle", async () => {
    assertError(await add(group.id, "not-a-handle"), 400, "invalid_handle");
    assertError(await add(group.id, FROM), 400, "invalid_request", "own number");
    assertError(await add(group.id, A), 409, "conflict", "already in");
    assertError(await g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, {}), 400, "invalid_request", "no handle");
    assertError(await remove(group.id, "+15557731999"), 404, "not_found", "not a member");
    assertError(await remove(group.id, "not-a-handle"), 400, "invalid_handle");
    assert.deepEqual(g.device.calls, []);
    // The handle in the path is normalised like any handle: the + may be sent raw or encoded.
    const raw = await g.t.call(g.acct.testKey, "DELETE", `/v1/chats/${group.id}/participants/${B}`);
    assert.equal(raw.statusCode, 200, raw.body);
    assert.deepEqual(raw.json().data.participants, [A, C]);
  });

  it("404 not_found, byte-identical, for another account's group, the other mode's group and a missing id", async () => {
    const live = await g.createGroup({ addresses: [A, B, C] }, g.acct.liveKey);
    const theirs = await g.createGroup({ from_handle: OTHER_FROM, addresses: [A, B, C] }, g.other.testKey);
    const missingId = "01a00000-0000-7000-8000-000000000000";
    g.device.calls.length = 0;
    const calls: [string, (id: string) => ReturnType<typeof patch>][] = [
      ["GET", (id) => g.t.call(g.acct.testKey, "GET", `/v1/chats/${id}`)],
      ["PATCH", (id) => patch(id, { title: "x" })],
      ["POST participants", (id) => add(id, "+15557731999")],
      ["DELETE participants", (id) => remove(id, A)],
    ];
    for (const [label, call] of calls) {
      const missing = errorBody(await call(missingId), 404, "not_found", `${label} missing`);
      assert.equal(errorBody(await call(theirs.id), 404, "not_found", `${label} another account's`), missing, label);
      assert.equal(errorBody(await call(live.id), 404, "not_found", `${label} live group with a test key`), missing, label);
    }
    assert.deepEqual(g.device.calls, []);
    assert.deepEqual((await g.getChat(theirs.id, g.other.testKey)).title, null);
  });

  it("test and live are separate: a live group is invisible to the test key, and its events are live events", async () => {
    const live = await g.createGroup({ addresses: [A, B] }, g.acct.liveKey);
    const testIds = ((await g.t.call(g.acct.testKey, "GET", "/v1/chats")).json().data as Chat[]).map((c) => c.id);
    const liveIds = ((await g.t.call(g.acct.liveKey, "GET", "/v1/chats")).json().data as Chat[]).map((c) => c.id);
    assert.deepEqual([testIds, liveIds], [[group.id], [live.id]]);
    const renamed = await patch(live.id, { title: "Live crew" }, g.acct.liveKey);
    assert.equal(renamed.statusCode, 200, renamed.body);
    const liveEvents = await eventsOf(g.t, g.acct.id, "live");
    assert.deepEqual(liveEvents.map((e) => [e.type, e.mode]), [["message.created", "live"], ["message.sent", "live"], ["chat.updated", "live"]]);
    assert.ok((await eventsOf(g.t, g.acct.id, "test")).every((e) => e.data.id !== live.id && e.data.conversation_id !== live.id));
    // A test key cannot send into the live group, nor inject into it.
    assertError(await g.t.call(g.acct.testKey, "POST", "/v1/messages", { conversation_id: live.id, text: "x" }), 404, "not_found");
    const inject = await g.t.call(g.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: A, text: "x", conversation_id: live.id });
    assertError(inject, 404, "not_found");
  });

  it("the simulator's network rules: an SMS-only or unreachable member cannot join; fewer than two members cannot remain", async () => {
    const smsOnly = assertError(await g.t.call(g.acct.testKey, "POST", "/v1/chats", { from_handle: FROM, addresses: [A, SIM.smsOnly], message: { text: "x" } }), 502, "chat_create_failed");
    assert.match(smsOnly.message, /not on iMessage/);
    assertError(await g.t.call(g.acct.testKey, "POST", "/v1/chats", { from_handle: FROM, addresses: [A, SIM.fails], message: { text: "x" } }), 502, "chat_create_failed");
    assertError(await add(group.id, SIM.fails), 502, "participant_add_failed");
    assert.equal((await remove(group.id, C)).statusCode, 200);
    const last = assertError(await remove(group.id, B), 502, "participant_remove_failed");
    assert.match(last.message, /four or more/);
    assert.deepEqual((await g.getChat(group.id)).participants, [A, B]);
    // 31 others at most: the 32nd is the network's "no".
    const full = await g.createGroup({ addresses: members(31, 15557740000) });
    assertError(await add(full.id, "+15557731999"), 502, "participant_add_failed", "32nd member");
  });
});
