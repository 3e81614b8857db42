// The group lifecycle on the simulator, on the ManualClock: create → send into it → inbound group
// messages land in it (the simulator's echoing member, and one injected through the test helper)
// → rename → add → remove through the API → the same changes made by members on the network
// (test helper), each with its `chat.updated` event in the same transaction and the participants
// right at every step. Then inbound messages of a group we never created, straight from device
// events.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { applyDeviceEvents } from "../src/messages/ingest.js";
import { type Chat, type GroupApp, groupApp, members } from "./group-support.js";
import { assertError, CHAT_FIELDS, elapse, type EventRecord, eventsOf, FROM, iso, type Message, SEC, SIM } from "./messaging-helpers.js";

const DELIVERY = 300;
const READ = 700;

describe("group lifecycle through the simulator", () => {
  let g: GroupApp;
  let t0: number;
  const [A, B, D, E] = members(4) as [string, string, string, string];
  const at = (ms: number) => iso(t0 + ms);
  const messagesIn = async (chatId: string) =>
    ((await g.t.call(g.acct.testKey, "GET", `/v1/messages?conversation_id=${chatId}`)).json().data as Message[]).reverse();
  /** The chat.updated events written since `seen` events, each checked against the chat's shape. */
  const updatesAfter = async (seen: number): Promise<EventRecord[]> => {
    const updates = (await eventsOf(g.t, g.acct.id)).slice(seen).filter((e) => e.type === "chat.updated");
    for (const u of updates) assert.deepEqual(Object.keys(u.data), [...CHAT_FIELDS, "change"]);
    return updates;
  };
  const eventCount = async () => (await eventsOf(g.t, g.acct.id)).length;
  const change = (body: Record<string, unknown>) => g.t.call(g.acct.testKey, "POST", "/v1/test_helpers/group_changes", body);

  beforeEach(async () => {
    g = await groupApp({ config: { SIMULATOR_DELIVERY_MS: DELIVERY, SIMULATOR_READ_MS: READ } });
    t0 = g.t.clock.now();
  });
  afterEach(() => g.close());

  it("create → send → inbound → rename → add → remove, then the same from the network, with chat.updated at each step", async () => {
    // 1. Create, with the simulator's echoing member among the three.
    const group = await g.createGroup({ addresses: [A, SIM.echoes, B], title: "Crew", message: { text: "Welcome" } });
    assert.deepEqual([group.participants, group.title, group.created_at], [[A, SIM.echoes, B], "Crew", at(0)]);

    // 2. The first message is delivered, and the echoing member answers in the group.
    await elapse(g.t, DELIVERY + READ);
    let thread = await messagesIn(group.id);
    assert.deepEqual(thread.map((m) => [m.direction, m.status, m.from_handle, m.to, m.text]), [
      ["outbound", "delivered", FROM, group.id, "Welcome"],
      ["inbound", "received", SIM.echoes, FROM, "Welcome"],
    ]);
    assert.deepEqual([thread[0]?.delivered_at, thread[1]?.created_at, thread[1]?.channel], [at(DELIVERY), at(DELIVERY + READ), "imessage"]);

    // 3. Send into it: it goes to the group, and the echo comes back into the group too.
    const sent = await g.send({ conversation_id: group.id, text: "Dinner at 8?" });
    await elapse(g.t, DELIVERY + READ);
    thread = await messagesIn(group.id);
    assert.deepEqual(thread.slice(2).map((m) => [m.id === sent.id, m.direction, m.status, m.text]), [
      [true, "outbound", "delivered", "Dinner at 8?"],
      [false, "inbound", "received", "Dinner at 8?"],
    ]);

    // 4. An inbound group message from another member, through the test helper.
    g.t.clock.advance(SEC);
    const inbound = await g.t.call(g.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: A, text: "I'm in", conversation_id: group.id });
    assert.equal(inbound.statusCode, 201, inbound.body);
    const received = inbound.json().data as Message;
    assert.deepEqual([received.conversation_id, received.from_handle, received.to, received.channel], [group.id, A, FROM, "imessage"]);
    const afterInbound = await g.getChat(group.id);
    assert.equal(afterInbound.last_message_at, received.created_at);
    // Group messages never make 1:1 threads with their senders.
    const chats = (await g.t.call(g.acct.testKey, "GET", "/v1/chats")).json().data as Chat[];
    assert.deepEqual(chats.map((c) => c.id), [group.id]);
    const received_ = (await eventsOf(g.t, g.acct.id)).filter((e) => e.type === "message.received");
    assert.deepEqual(received_.map((e) => [e.data.conversation_id, e.data.from_handle]), [[group.id, SIM.echoes], [group.id, SIM.echoes], [group.id, A]]);

    // 5. Rename, add, remove through the API: one chat.updated each, with the chat after it.
    let seen = await eventCount();
    g.t.clock.advance(SEC);
    const renamed = (await g.t.call(g.acct.testKey, "PATCH", `/v1/chats/${group.id}`, { title: "Dinner crew" })).json().data as Chat;
    assert.deepEqual([renamed.title, renamed.updated_at, renamed.last_message_at], ["Dinner crew", iso(g.t.clock.now()), afterInbound.last_message_at]);
    const added = (await g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, { handle: D })).json().data as Chat;
    assert.deepEqual(added.participants, [A, SIM.echoes, B, D]);
    const removed = (await g.t.call(g.acct.testKey, "DELETE", `/v1/chats/${group.id}/participants/${encodeURIComponent(B)}`)).json().data as Chat;
    assert.deepEqual(removed.participants, [A, SIM.echoes, D]);
    let updates = await updatesAfter(seen);
    assert.deepEqual(updates.map((u) => u.data.change), [
      { type: "renamed", handle: null, previous_title: "Crew", by: FROM, source: "api" },
      { type: "participant_added", handle: D, previous_title: null, by: FROM, source: "api" },
      { type: "participant_removed", handle: B, previous_title: null, by: FROM, source: "api" },
    ]);
    // Each event carries the chat exactly as the API answered it at that step.
    assert.deepEqual(updates.map(({ data: { change: _, ...chat } }) => chat), [renamed, added, removed]);
    assert.ok(updates.every((u) => u.mode === "test"));
    assert.deepEqual(await g.getChat(group.id), removed);

    // The device was told each change with the members as they were.
    assert.deepEqual(g.device.calls.slice(1), [["renameGroup", "Dinner crew"], ["addParticipant", D], ["removeParticipant", B]]);

    // 6. Members change the group on the network: a rename by A, E added by A, D leaves.
    seen = await eventCount();
    g.t.clock.advance(SEC);
    for (const body of [
      { type: "renamed", title: "Dinner club", by: A },
      { type: "participant_added", handle: E, by: A },
      { type: "participant_removed", handle: D, by: D },
      { type: "participant_removed", handle: SIM.echoes },
    ]) {
      const res = await change({ conversation_id: group.id, ...body });
      assert.equal(res.statusCode, 200, res.body);
    }
    const final = await g.getChat(group.id);
    assert.deepEqual([final.title, final.participants], ["Dinner club", [A, E]]);
    updates = await updatesAfter(seen);
    assert.deepEqual(updates.map((u) => u.data.change), [
      { type: "renamed", handle: null, previous_title: "Dinner crew", by: A, source: "network" },
      { type: "participant_added", handle: E, previous_title: null, by: A, source: "network" },
      { type: "participant_removed", handle: D, previous_title: null, by: D, source: "network" },
      { type: "participant_removed", handle: SIM.echoes, previous_title: null, by: null, source: "network" },
    ]);
    assert.deepEqual(updates.map((u) => u.data.participants), [[A, SIM.echoes, D], [A, SIM.echoes, D, E], [A, SIM.echoes, E], [A, E]]);
    assert.deepEqual({ ...updates.at(-1)?.data, change: undefined }, { ...final, change: undefined });

    // 7. Devices repeat themselves: the same change again is nothing, and no event.
    seen = await eventCount();
    for (const body of [{ type: "renamed", title: "Dinner club" }, { type: "participant_added", handle: E }, { type: "participant_removed", handle: D }]) {
      assert.equal((await change({ conversation_id: group.id, ...body })).statusCode, 200);
    }
    assert.equal(await eventCount(), seen);
    assert.deepEqual(await g.getChat(group.id), final);

    // 8. With the echoing member gone, a send is delivered and nobody echoes.
    const quiet = await g.send({ conversation_id: group.id, text: "anyone?" });
    await elapse(g.t, DELIVERY + 2 * READ);
    const last = (await messagesIn(group.id)).at(-1);
    assert.deepEqual([last?.id, last?.status], [quiet.id, "delivered"]);
  });

  it("test helpers refuse what the network would not do: a non-member writing or changing, a wrong number, malformed changes", async () => {
    const group = await g.createGroup({ addresses: [A, B], title: "Crew" });
    const inbound = (body: Record<string, unknown>) => g.t.call(g.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: A, text: "x", conversation_id: group.id, ...body });
    assertError(await inbound({ remote_handle: D }), 400, "invalid_request", "not a member");
    await g.t.addNumber(g.acct.id, "+15557770009", "imessage");
    assertError(await inbound({ from_handle: "+15557770009" }), 400, "invalid_request", "another number");
    assertError(await inbound({ conversation_id: "01a00000-0000-7000-8000-000000000000" }), 404, "not_found", "missing chat");
    assertError(await change({ conversation_id: group.id, type: "renamed", title: "x", by: D }), 400, "invalid_request", "by a non-member");
    assertError(await change({ conversation_id: group.id, type: "renamed" }), 400, "invalid_request", "rename without title");
    assertError(await change({ conversation_id: group.id, type: "renamed", title: "x", handle: A }), 400, "invalid_request", "rename with handle");
    assertError(await change({ conversation_id: group.id, type: "participant_added" }), 400, "invalid_request", "add without handle");
    assertError(await change({ conversation_id: group.id, type: "participant_added", handle: "nope" }), 400, "invalid_handle");
    assertError(await change({ conversation_id: group.id, type: "archived" }), 400, "invalid_request", "unknown type");
    assertError(await change({ conversation_id: group.id, type: "renamed", title: "t".repeat(101) }), 400, "invalid_request", "101");
    assert.deepEqual(await g.getChat(group.id), group);
    const res = await change({ conversation_id: group.id, type: "renamed", title: null, by: B });
    assert.deepEqual([res.statusCode, res.json().data.title], [200, null]);
  });

  it("device events of a group we never created: the first message makes the group chat, later ones land in it; changes to unknown groups are dropped", async () => {
    const now = g.t.clock.now();
    const received = (text: string, from: string, deviceId: string) => ({
      kind: "received" as const, numberHandle: FROM, mode: "test" as const, from, text, channel: "imessage" as const, deviceId, at: now,
      group: { chatDeviceId: "iMessage;+;chat0001", participants: [A, FROM, B, A], title: "Their group" },
    });
    await g.t.db.transaction((trx) => applyDeviceEvents(trx, g.t.clock, [
      { kind: "group_changed", numberHandle: FROM, mode: "test", chatDeviceId: "iMessage;+;chat0001", change: { type: "renamed", title: "early" }, by: A, at: now },
      received("hello group", A, "dev-1"),
      received("hi!", B, "dev-2"),
      received("hi!", B, "dev-2"), // a repeat of the same device message
    ]));
    const chats = (await g.t.call(g.acct.testKey, "GET", "/v1/chats")).json().data as Chat[];
    assert.equal(chats.length, 1);
    const chat = chats[0] as Chat;
    assert.deepEqual(
      [chat.is_group, chat.remote_handle, chat.title, chat.participants, chat.channel, chat.from_handle],
      [true, null, "Their group", [A, B], "imessage", FROM],
      "our own number is never a participant; members count once",
    );
    assert.deepEqual((await messagesIn(chat.id)).map((m) => [m.from_handle, m.text]), [[A, "hello group"], [B, "hi!"]]);
    assert.deepEqual((await eventsOf(g.t, g.acct.id)).map((e) => e.type), ["message.received", "message.received"], "no chat.updated for the unknown group");
    // We can answer into it like any group.
    const reply = await g.send({ conversation_id: chat.id, text: "Thanks for adding me" });
    await elapse(g.t, DELIVERY);
    assert.equal((await g.get(reply.id)).status, "delivered");
    assert.equal(g.device.groupSends.at(-1)?.to, "iMessage;+;chat0001");
    // The same device group in live mode is another chat (test and live never meet).
    await g.t.db.transaction((trx) => applyDeviceEvents(trx, g.t.clock, [{ ...received("live one", A, "dev-3"), mode: "live" }]));
    const live = (await g.t.call(g.acct.liveKey, "GET", "/v1/chats")).json().data as Chat[];
    assert.equal(live.length, 1);
    assert.notEqual(live[0]?.id, chat.id);
  });
});
