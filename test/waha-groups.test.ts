/**
 * WhatsApp groups through the WAHA back-end: create (with its first message), send into, rename,
 * add and remove members through the API — each echoed back by WAHA authored by us, which adds
 * nothing — and the same changes made on the network by another member.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BOB, CAROL, chatOf, DAVE, type Json, NUMBER, SESSION, type WahaRig, wahaRig } from "./waha-support.js";

describe("waha back-end: groups", () => {
  let r: WahaRig;
  let chat: Json;
  let gid = "";
  before(async () => {
    r = await wahaRig();
  });
  after(() => r.close());

  const changes = async () => (await r.eventsOf("chat.updated")).filter((e) => e.id === chat.id).map((e) => [e.change.type, e.change.handle ?? e.title, e.change.source, e.change.by]);

  test("creating a group makes it on WhatsApp, then sends its first message into it", async () => {
    const res = await r.call("POST", "/v1/chats", { from_handle: NUMBER, addresses: [BOB, CAROL], title: "Project", message: { text: "welcome, all" } });
    assert.equal(res.statusCode, 201, res.body);
    chat = res.json().data;
    assert.equal(chat.is_group, true);
    assert.equal(chat.channel, "whatsapp");
    assert.deepEqual(r.lastBody("POST", `/api/${SESSION}/groups`), { name: "Project", participants: [{ id: chatOf(BOB) }, { id: chatOf(CAROL) }] });
    const [group] = [...r.fake.groups.values()];
    assert.ok(group);
    gid = group.id;
    assert.equal(group.subject, "Project");
    const first = r.fake.sent.at(-1);
    assert.equal(first?.chatId, gid);
    assert.equal(first?.body, "welcome, all");
    const row = await r.t.db.kysely.selectFrom("messages").selectAll().where("chat_id", "=", chat.id).executeTakeFirstOrThrow();
    assert.equal(row.device_message_id, first?.id);
    assert.equal(row.status, "sent");
  });

  test("a message into the group goes to its @g.us id; a group ack (id suffixed with our own) delivers it", async () => {
    const res = await r.call("POST", "/v1/messages", { conversation_id: chat.id, text: "second message" });
    assert.equal(res.statusCode, 202, res.body);
    const m = res.json().data;
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    const onDevice = r.fake.sent.at(-1);
    assert.equal(onDevice?.chatId, gid);
    assert.equal(onDevice?.body, "second message");
    await r.fake.ack(SESSION, onDevice?.id ?? "", 2);
    await r.fake.flushWebhooks();
    assert.equal(r.fake.deliveries.at(-1)?.event, "message.ack.group");
    assert.equal((await r.message(m.id)).status, "delivered");
  });

  test("rename, add and remove run on WhatsApp; WAHA's echoes of our own changes add no second event", async () => {
    const renamed = await r.call("PATCH", `/v1/chats/${chat.id}`, { title: "Project X" });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.deepEqual(r.lastBody("PUT", `/api/${SESSION}/groups/${gid}/subject`), { subject: "Project X" });
    const added = await r.call("POST", `/v1/chats/${chat.id}/participants`, { handle: DAVE });
    assert.equal(added.statusCode, 200, added.body);
    assert.deepEqual(r.lastBody("POST", `/api/${SESSION}/groups/${gid}/participants/add`), { participants: [{ id: chatOf(DAVE) }] });
    const removed = await r.call("DELETE", `/v1/chats/${chat.id}/participants/${encodeURIComponent(DAVE)}`);
    assert.equal(removed.statusCode, 200, removed.body);
    assert.ok(r.requests("POST", `/api/${SESSION}/groups/${gid}/participants/remove`).length === 1);
    await r.fake.flushWebhooks();
    assert.deepEqual(await changes(), [
      ["renamed", "Project X", "api", NUMBER],
      ["participant_added", DAVE, "api", NUMBER],
      ["participant_removed", DAVE, "api", NUMBER],
    ]);
    assert.deepEqual(r.fake.groups.get(gid)?.participants.sort(), [chatOf(NUMBER), chatOf(BOB), chatOf(CAROL)].sort());
  });

  test("a WhatsApp group cannot lose its name: renaming to null is refused (502 rename_failed)", async () => {
    const res = await r.call("PATCH", `/v1/chats/${chat.id}`, { title: null });
    assert.equal(res.statusCode, 502, res.body);
    assert.equal(res.json().error, "rename_failed");
  });

  test("changes another member makes on WhatsApp are chat.updated from the network, by them", async () => {
    const before = (await changes()).length;
    await r.fake.groupEvent(SESSION, gid, { kind: "subject", subject: "Bob's project", by: chatOf(BOB) });
    await r.fake.groupEvent(SESSION, gid, { kind: "add", participant: chatOf(DAVE), by: chatOf(BOB) });
    await r.fake.groupEvent(SESSION, gid, { kind: "remove", participant: chatOf(CAROL), by: chatOf(BOB) });
    await r.fake.flushWebhooks();
    assert.deepEqual((await changes()).slice(before), [
      ["renamed", "Bob's project", "network", BOB],
      ["participant_added", DAVE, "network", BOB],
      ["participant_removed", CAROL, "network", BOB],
    ]);
    const now = (await r.call("GET", `/v1/chats/${chat.id}`)).json().data;
    assert.equal(now.title, "Bob's project");
    assert.deepEqual([...now.participants].sort(), [BOB, DAVE].sort());
  });

  test("WAHA refusing a group call answers 502 in our words (never its own error text); nothing is stored", async () => {
    r.fake.refuse.group = true;
    try {
      const res = await r.call("POST", "/v1/chats", { from_handle: NUMBER, addresses: [BOB, CAROL], message: { text: "never" } });
      assert.equal(res.statusCode, 502, res.body);
      assert.equal(res.json().error, "chat_create_failed");
      assert.equal(res.json().message, "WAHA refused the request (HTTP 500).");
      const add = await r.call("POST", `/v1/chats/${chat.id}/participants`, { handle: CAROL });
      assert.equal(add.statusCode, 502, add.body);
      assert.equal(add.json().error, "participant_add_failed");
    } finally {
      r.fake.refuse.group = false;
    }
  });

  test("an untitled group is named after its members on WhatsApp (a subject is required there)", async () => {
    const res = await r.call("POST", "/v1/chats", { from_handle: NUMBER, addresses: [CAROL, DAVE], message: { text: "no title" } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().data.title, null);
    assert.equal(r.lastBody("POST", `/api/${SESSION}/groups`).name, `${CAROL}, ${DAVE}`);
  });
});
