// Group operations run synchronously on the device (api.md §5 Conversations): the answer is the
// network's verdict. Offline → 503 device_offline, refused → 502 *_failed, and in both cases
// nothing is written (no chat change, message, event or idempotency key). Idempotent replay of
// POST /v1/chats and POST /participants: 200, the same chat, no second device call. Sends into a
// group go to the group on its channel.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { type Chat, type GroupApp, type GroupOp, groupApp, members } from "./group-support.js";
import { assertError, eventsOf, FROM, type Message, MIN, SEC, statusOf, untilStatus } from "./messaging-helpers.js";

describe("groups on the device", () => {
  let g: GroupApp;
  const [A, B, C, D] = members(4) as [string, string, string, string];
  const createBody = { from_handle: FROM, addresses: [A, B, C], title: "Crew", message: { text: "Welcome" } };
  /** The four group operations on `group`, as [operation, its error code when refused, call]. */
  const operations = (group: Chat): [GroupOp, string, () => ReturnType<GroupApp["t"]["call"]>][] => [
    ["createGroup", "chat_create_failed", () => g.t.call(g.acct.testKey, "POST", "/v1/chats", createBody, { "idempotency-key": "create-1" })],
    ["renameGroup", "rename_failed", () => g.t.call(g.acct.testKey, "PATCH", `/v1/chats/${group.id}`, { title: "Renamed" })],
    ["addParticipant", "participant_add_failed", () => g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, { handle: D }, { "idempotency-key": "add-1" })],
    ["removeParticipant", "participant_remove_failed", () => g.t.call(g.acct.testKey, "DELETE", `/v1/chats/${group.id}/participants/${encodeURIComponent(A)}`)],
  ];

  beforeEach(async () => {
    g = await groupApp();
  });
  afterEach(() => g.close());

  it("device offline: 503 device_offline for create, rename, add and remove; nothing written; the keys are not burnt", async () => {
    const group = await g.createGroup(createBody);
    const before = await g.counts();
    await g.setStatus(FROM, "offline");
    const offline = await g.counts(); // the number.status event
    for (const [op, , call] of operations(group)) assertError(await call(), 503, "device_offline", op);
    assert.deepEqual(await g.counts(), offline);
    assert.equal(offline.events, before.events + 1);
    assert.deepEqual(await g.getChat(group.id), group);
    await g.setStatus(FROM, "online");
    // The same keys work once the device is back: errors never burn a key.
    for (const [op, , call] of operations(group)) assert.ok([200, 201].includes((await call()).statusCode), op);
  });

  it("device offline as the device reports it (the number still looks online here): 503 and nothing written", async () => {
    const group = await g.createGroup(createBody);
    const before = await g.counts();
    // A device that drops between our status check and the call: its answer is what counts.
    g.device.unreachable = true;
    for (const [op, , call] of operations(group)) assertError(await call(), 503, "device_offline", op);
    assert.deepEqual(await g.counts(), before);
    assert.equal(g.device.calls.length, 1 + 4);
  });

  it("device refusal: 502 chat_create_failed / rename_failed / participant_add_failed / participant_remove_failed; nothing written", async () => {
    const group = await g.createGroup(createBody);
    const before = await g.counts();
    for (const [op, code, call] of operations(group)) {
      g.device.refuse.add(op);
      const body = assertError(await call(), 502, code as "rename_failed", op);
      assert.match(body.message, new RegExp(`refused ${op}`), "the device's reason is passed on");
      g.device.refuse.delete(op);
    }
    assert.deepEqual(await g.counts(), before);
    assert.deepEqual(await g.getChat(group.id), group);
    assert.deepEqual(
      (await eventsOf(g.t, g.acct.id)).map((e) => e.type),
      ["message.created", "message.sent"],
      "no chat.updated for refused changes",
    );
  });

  it("POST /v1/chats with an Idempotency-Key: a replay answers 200 with the same chat and calls no device", async () => {
    const headers = { "idempotency-key": "group-1" };
    const first = await g.t.call(g.acct.testKey, "POST", "/v1/chats", createBody, headers);
    assert.equal(first.statusCode, 201, first.body);
    g.t.clock.advance(SEC);
    const again = await g.t.call(g.acct.testKey, "POST", "/v1/chats", createBody, headers);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.headers["idempotent-replayed"], "true");
    assert.deepEqual(again.json().data, first.json().data);
    assert.equal(g.device.count("createGroup"), 1);
    const counts = await g.counts();
    assert.deepEqual([counts.chats, counts.messages], [1, 1]);
    // Another body under the same key: 422, still one group.
    assertError(await g.t.call(g.acct.testKey, "POST", "/v1/chats", { ...createBody, title: "Other" }, headers), 422, "idempotency_key_reused");
    // The replay shows the chat as it is now.
    const id = first.json().data.id as string;
    await g.t.call(g.acct.testKey, "PATCH", `/v1/chats/${id}`, { title: "Renamed" });
    const later = await g.t.call(g.acct.testKey, "POST", "/v1/chats", createBody, headers);
    assert.deepEqual([later.statusCode, later.json().data.title], [200, "Renamed"]);
    // The same key in live mode is another key.
    const live = await g.t.call(g.acct.liveKey, "POST", "/v1/chats", createBody, headers);
    assert.equal(live.statusCode, 201, live.body);
    assert.equal(g.device.count("createGroup"), 2);
  });

  it("POST /participants with an Idempotency-Key: a replay answers 200 and calls no device (no 409 for the member it added)", async () => {
    const group = await g.createGroup(createBody);
    const headers = { "idempotency-key": "add-d" };
    const first = await g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, { handle: D }, headers);
    assert.equal(first.statusCode, 200, first.body);
    assert.deepEqual(first.json().data.participants, [A, B, C, D]);
    const again = await g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, { handle: D }, headers);
    assert.deepEqual([again.statusCode, again.headers["idempotent-replayed"]], [200, "true"]);
    assert.deepEqual(again.json().data, first.json().data);
    assert.equal(g.device.count("addParticipant"), 1);
    assert.equal((await eventsOf(g.t, g.acct.id)).filter((e) => e.type === "chat.updated").length, 1);
  });

  it("changes racing on one group all land: two adds, a rename and a member's network change at once", async () => {
    const group = await g.createGroup(createBody);
    const E = "+15557719999";
    const results = await Promise.all([
      g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, { handle: D }),
      g.t.call(g.acct.testKey, "POST", `/v1/chats/${group.id}/participants`, { handle: E }),
      g.t.call(g.acct.testKey, "PATCH", `/v1/chats/${group.id}`, { title: "Racing" }),
      g.t.call(g.acct.testKey, "POST", "/v1/test_helpers/group_changes", { conversation_id: group.id, type: "participant_removed", handle: A, by: A }),
    ]);
    assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200], results.map((r) => r.body).join("\n"));
    const chat = await g.getChat(group.id);
    assert.equal(chat.title, "Racing");
    assert.deepEqual([...chat.participants].sort(), [B, C, D, E].sort());
    const updates = (await eventsOf(g.t, g.acct.id)).filter((e) => e.type === "chat.updated");
    assert.equal(updates.length, 4, "one event per change, none lost");
    assert.deepEqual(updates.at(-1)?.data.participants.length, 4);
  });

  it("sends into a group: to the group on its channel, delivered and never read; `to` and another channel are refused", async () => {
    const group = await g.createGroup(createBody);
    const sent = await g.send({ conversation_id: group.id, text: "Dinner at 8?" });
    assert.deepEqual([sent.conversation_id, sent.to, sent.from_handle, sent.status, sent.channel], [group.id, group.id, FROM, "queued", null]);
    await untilStatus(g.t, sent.id, "delivered");
    const msg = await g.get(sent.id);
    assert.deepEqual([msg.status, msg.channel, msg.read_at], ["delivered", "imessage", null]);
    // The device was asked to send to the group, by its device id, with the members.
    const out = g.device.groupSends.find((m) => m.id === sent.id);
    assert.ok(out?.group);
    assert.equal(out.to, out.group.chatDeviceId);
    assert.deepEqual([out.group.participants, out.group.channel, out.channel], [[A, B, C], "imessage", "imessage"]);
    assert.notEqual(out.group.chatDeviceId, group.id, "the device's id is its own, never shown in the API");
    // iMessage reports reads in 1:1 chats only: a group message stays delivered.
    g.t.clock.advance(10 * MIN);
    await g.t.app.services.dispatcher.runUntilIdle();
    assert.equal(await statusOf(g.t, sent.id), "delivered");
    const events = (await eventsOf(g.t, g.acct.id)).filter((e) => e.data.id === sent.id).map((e) => e.type);
    assert.deepEqual(events, ["message.created", "message.sent", "message.delivered"]);

    assertError(await g.t.call(g.acct.testKey, "POST", "/v1/messages", { conversation_id: group.id, to: A, text: "x" }), 400, "invalid_request", "to");
    const sms = assertError(await g.t.call(g.acct.testKey, "POST", "/v1/messages", { conversation_id: group.id, channel: "sms", text: "x" }), 400, "invalid_request", "sms");
    assert.match(sms.message, /imessage/);
    const same = await g.send({ conversation_id: group.id, channel: "imessage", text: "forced, same channel" });
    await untilStatus(g.t, same.id, "delivered");
  });

  it("the first message is delivered like any group message; messages into the group keep their order", async () => {
    const group = await g.createGroup(createBody);
    const first = ((await g.t.call(g.acct.testKey, "GET", `/v1/messages?conversation_id=${group.id}`)).json().data as Message[])[0] as Message;
    const second = await g.send({ conversation_id: group.id, text: "two" });
    const third = await g.send({ conversation_id: group.id, text: "three" });
    await untilStatus(g.t, third.id, "delivered");
    for (const id of [first.id, second.id]) assert.equal(await statusOf(g.t, id), "delivered");
    const sentAt = await Promise.all([second.id, third.id].map(async (id) => (await g.get(id)).sent_at ?? ""));
    assert.ok((sentAt[0] as string) <= (sentAt[1] as string), "accepted order is sent order");
    const history = await g.t.db.kysely.selectFrom("simulator_history").select(["message_id", "to_handle", "sends"]).orderBy("sent_at").execute();
    assert.deepEqual(history.map((h) => [h.message_id, h.sends]), [[first.id, 1], [second.id, 1], [third.id, 1]]);
    assert.ok(history.every((h) => h.to_handle === history[0]?.to_handle), "all three went to the one group on the device");
  });
});
