import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { ALICE, type BlueBubblesRig, blueBubblesRig, BOB, NUMBER } from "./bluebubbles-support.js";

const CAROL = "+15557010004";
const DAVE = "+15557010005";

describe("bluebubbles back-end: events from the (fake) Mac", () => {
  let r: BlueBubblesRig;
  before(async () => {
    r = await blueBubblesRig();
  });
  after(() => r.close());

  const inbound = async (text: string) =>
    (await r.t.db.kysely.selectFrom("messages").selectAll().where("direction", "=", "inbound").where("text", "=", text).execute());

  test("an inbound message fired twice by BlueBubbles is one message and one message.received", async () => {
    await r.fake.receive({ from: ALICE, text: "hi there" });
    await r.settle();
    assert.equal((await inbound("hi there")).length, 1);
    assert.equal((await r.eventsOf("message.received")).filter((e) => e.text === "hi there").length, 1);
  });

  test("iMessage;-;, SMS;-; and any;-; GUIDs of one address are one thread; outbound and inbound share the chat", async () => {
    const m = await r.send({ to: BOB, text: "outbound first" });
    await r.settle();
    r.fake.chatGuidPrefix = "any";
    await r.fake.receive({ from: BOB, text: "reply on macOS 26" });
    await r.settle();
    r.fake.chatGuidPrefix = "iMessage";
    const [row] = await inbound("reply on macOS 26");
    assert.equal(row?.chat_id, m.conversation_id);
  });

  test("a wrong or missing ingest secret is 401 and applies nothing", async () => {
    const url = new URL(r.fake.webhooks[0]?.url ?? "");
    url.searchParams.set("secret", "wrong");
    const body = { type: "new-message", data: { guid: "X-FORGED", text: "forged", isFromMe: false, handle: { address: ALICE, service: "iMessage" }, dateCreated: r.t.clock.now() } };
    const wrong = await r.t.app.inject({ method: "POST", url: `${url.pathname}${url.search}`, payload: body });
    assert.equal(wrong.statusCode, 401, wrong.body);
    const none = await r.t.app.inject({ method: "POST", url: url.pathname, payload: body });
    assert.equal(none.statusCode, 401, none.body);
    assert.equal((await inbound("forged")).length, 0);
  });

  test("a contact's tapback (fired twice) is one message.reaction; its removal is another", async () => {
    const m = await r.send({ to: ALICE, text: "tap me" });
    await r.settle();
    const guid = r.fake.sent.find((s) => s.tempGuid === m.id)?.guid ?? "";
    await r.fake.tapback(ALICE, guid, "like");
    await r.settle();
    let reactions = (await r.eventsOf("message.reaction")).filter((e) => e.message_id === m.id);
    assert.deepEqual(reactions.map((e) => [e.reaction, e.handle, e.removed]), [["like", ALICE, false]]);
    assert.deepEqual(((await r.message(m.id)).reactions as { reaction: string }[]).map((x) => x.reaction), ["like"]);
    await r.fake.tapback(ALICE, guid, "-like");
    await r.settle();
    reactions = (await r.eventsOf("message.reaction")).filter((e) => e.message_id === m.id);
    assert.deepEqual(reactions.map((e) => e.removed), [false, true]);
  });

  test("a contact's edit and unsend (updated-message without chats) are message.edited and message.unsent", async () => {
    const msg = await r.fake.receive({ from: ALICE, text: "typo hree" });
    await r.settle();
    await r.fake.editInbound(msg.guid, "typo here");
    await r.settle();
    const [row] = await inbound("typo here");
    assert.ok(row?.edited_at);
    assert.equal((await r.eventsOf("message.edited")).filter((e) => e.id === row?.id).length, 1);
    await r.fake.unsendInbound(msg.guid);
    await r.settle();
    assert.equal((await r.eventsOf("message.unsent")).filter((e) => e.id === row?.id).length, 1);
  });

  test("typing-indicator becomes chat.typing start and stop", async () => {
    await r.fake.typing(`iMessage;-;${ALICE}`, true);
    await r.fake.typing(`iMessage;-;${ALICE}`, false);
    await r.settle();
    const typing = (await r.eventsOf("chat.typing")).filter((e) => e.remote_handle === ALICE);
    assert.deepEqual(typing.map((e) => e.state), ["start", "stop"]);
  });

  test("inbound media is stored as an attachment and appears in message.received with a signed URL that serves it", async () => {
    const bytes = await sharp({ create: { width: 4, height: 4, channels: 3, background: "#3478f6" } }).png().toBuffer();
    await r.fake.receive({ from: ALICE, text: "a picture", attachments: [{ name: "pic.png", mimeType: "image/png", bytes }] });
    await r.settle();
    const event = (await r.eventsOf("message.received")).find((e) => e.text === "a picture") as { attachments: { url: string; mime_type: string; filename: string }[] };
    assert.equal(event.attachments.length, 1);
    assert.equal(event.attachments[0]?.mime_type, "image/png");
    const url = new URL(event.attachments[0]?.url ?? "");
    const file = await r.t.app.inject({ method: "GET", url: `${url.pathname}${url.search}` });
    assert.equal(file.statusCode, 200);
    assert.deepEqual(file.rawPayload, bytes);
  });

  test("groups: create (Private API), rename, add and remove on the Mac; an inbound group message lands in the group", async () => {
    const res = await r.t.call(r.account.liveKey, "POST", "/v1/chats", { from_handle: NUMBER, addresses: [ALICE, BOB], title: "Crew", message: { text: "Welcome, crew" } });
    assert.equal(res.statusCode, 201, res.body);
    const chat = res.json().data as { id: string; participants: string[] };
    const device = [...r.fake.chats.values()].find((c) => c.style === 43);
    assert.ok(device);
    assert.equal(device.displayName, "Crew");
    assert.deepEqual([...device.participants].sort(), [ALICE, BOB].sort());
    assert.equal((await r.t.call(r.account.liveKey, "PATCH", `/v1/chats/${chat.id}`, { title: "Dinner crew" })).statusCode, 200);
    assert.equal(r.fake.chats.get(device.guid)?.displayName, "Dinner crew");
    assert.equal((await r.t.call(r.account.liveKey, "POST", `/v1/chats/${chat.id}/participants`, { handle: CAROL })).statusCode, 200);
    assert.ok(r.fake.chats.get(device.guid)?.participants.includes(CAROL));
    assert.equal((await r.t.call(r.account.liveKey, "DELETE", `/v1/chats/${chat.id}/participants/${encodeURIComponent(BOB)}`)).statusCode, 200);
    assert.ok(!r.fake.chats.get(device.guid)?.participants.includes(BOB));
    await r.settle();
    await r.fake.receive({ from: ALICE, text: "hello group", chatGuid: device.guid });
    await r.settle();
    const [row] = await inbound("hello group");
    assert.equal(row?.chat_id, chat.id);
    const send = await r.send({ conversation_id: chat.id, text: "to the group" });
    await r.settle();
    assert.equal(r.fake.sent.find((s) => s.tempGuid === send.id)?.chatGuid, device.guid);
  });

  test("group changes made on the Mac by members are chat.updated events (rename, added, left)", async () => {
    const res = await r.t.call(r.account.liveKey, "POST", "/v1/chats", { from_handle: NUMBER, addresses: [ALICE, BOB], message: { text: "second group" } });
    const chat = res.json().data as { id: string };
    const guid = [...r.fake.chats.values()].filter((c) => c.style === 43).at(-1)?.guid ?? "";
    await r.settle();
    await r.fake.groupEvent(guid, { kind: "rename", title: "Renamed by Alice", by: ALICE });
    await r.fake.groupEvent(guid, { kind: "added", handle: DAVE, by: ALICE });
    await r.fake.groupEvent(guid, { kind: "left", handle: BOB });
    await r.settle();
    const got = await r.t.call(r.account.liveKey, "GET", `/v1/chats/${chat.id}`);
    const data = got.json().data as { title: string; participants: string[] };
    assert.equal(data.title, "Renamed by Alice");
    assert.deepEqual([...data.participants].sort(), [ALICE, DAVE].sort());
    const changes = (await r.eventsOf("chat.updated")).filter((e) => e.id === chat.id).map((e) => (e.change as { type: string; source: string }));
    assert.deepEqual(changes.filter((c) => c.source === "network").map((c) => c.type), ["renamed", "participant_added", "participant_removed"]);
  });

  test("status never goes backwards: a delivered that arrives after read changes nothing", async () => {
    const m = await r.send({ to: ALICE, text: "will read" });
    await r.settle();
    const guid = r.fake.sent.find((s) => s.tempGuid === m.id)?.guid ?? "";
    await r.fake.read(guid);
    await r.settle();
    await r.fake.deliver(guid); // a late delivered after read
    await r.settle();
    assert.equal((await r.message(m.id)).status, "read");
  });
});

describe("bluebubbles back-end: health and the reconciliation poller", () => {
  let r: BlueBubblesRig;
  before(async () => {
    r = await blueBubblesRig();
  });
  after(() => r.close());

  const status = async () => (await r.t.db.kysely.selectFrom("numbers").select("status").where("id", "=", r.numberId).executeTakeFirstOrThrow()).status;

  test("an unreachable Mac turns the number offline (number.status), sends answer 503 device_offline; it comes back online", async () => {
    r.fake.offline = true;
    await r.t.app.services.devices.tick();
    assert.equal(await status(), "offline");
    const res = await r.t.call(r.account.liveKey, "POST", "/v1/messages", { from_handle: NUMBER, to: ALICE, text: "while offline" });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.json().error, "device_offline");
    r.fake.offline = false;
    await r.t.app.services.devices.tick();
    assert.equal(await status(), "online");
    const events = (await r.eventsOf("number.status")).map((e) => e.status);
    assert.deepEqual(events, ["offline", "online"]);
  });

  test("a new PUBLIC_URL replaces our old registration on the Mac (and leaves others' webhooks alone)", async () => {
    const theirs = await fetch(`${r.fake.url}/api/v1/webhook?password=${r.fake.password}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: "http://127.0.0.1:9/other-integration", events: ["new-message"] }),
    });
    assert.equal(theirs.status, 200);
    const previous = r.t.config.PUBLIC_URL;
    r.t.config.PUBLIC_URL = previous?.replace("127.0.0.1", "localhost");
    try {
      await r.t.app.services.devices.tick();
      const urls = r.fake.webhooks.map((h) => h.url);
      assert.equal(urls.filter((u) => u.includes(`/ingest/bluebubbles/${r.numberId}`)).length, 1);
      assert.ok(urls.some((u) => u.startsWith(`${r.t.config.PUBLIC_URL}/ingest/`)));
      assert.ok(urls.includes("http://127.0.0.1:9/other-integration"));
    } finally {
      r.t.config.PUBLIC_URL = previous;
      await r.t.app.services.devices.tick();
    }
  });

  test("events BlueBubbles never delivered (webhooks lost) are recovered by the poller, once", async () => {
    const m = await r.send({ to: ALICE, text: "poll me" });
    await r.settle();
    const guid = r.fake.sent.find((s) => s.tempGuid === m.id)?.guid ?? "";
    r.fake.dropWebhooks = true;
    await r.fake.deliver(guid);
    await r.fake.receive({ from: BOB, text: "missed webhook" });
    r.t.clock.advance(5_000);
    await r.t.app.services.devices.tick();
    await r.t.app.services.devices.tick();
    r.fake.dropWebhooks = false;
    assert.equal((await r.message(m.id)).status, "delivered");
    const rows = await r.t.db.kysely.selectFrom("messages").select("id").where("text", "=", "missed webhook").execute();
    assert.equal(rows.length, 1);
    assert.equal((await r.eventsOf("message.received")).filter((e) => e.text === "missed webhook").length, 1);
    assert.equal((await r.eventsOf("message.delivered")).filter((e) => e.id === m.id).length, 1);
  });
});
