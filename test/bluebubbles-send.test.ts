import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { addNumber } from "../src/numbers/store.js";
import { ALICE, type BlueBubblesRig, blueBubblesRig, BOB, NUMBER } from "./bluebubbles-support.js";

describe("bluebubbles back-end: sends through a (fake) Mac", () => {
  let r: BlueBubblesRig;
  before(async () => {
    r = await blueBubblesRig({ DEVICE_SEND_TIMEOUT_MS: 150, DISPATCH_SEND_WAIT_MS: 5_000 });
  });
  after(() => r.close());

  test("the monitor finds the Mac online and registers our ingest URL with a per-number secret", async () => {
    assert.equal(r.fake.webhooks.length, 1);
    const hook = r.fake.webhooks[0];
    assert.ok(hook?.url.startsWith(`${r.t.config.PUBLIC_URL}/ingest/bluebubbles/${r.numberId}?secret=`));
    await r.t.app.services.devices.tick();
    assert.equal(r.fake.webhooks.length, 1, "registration is idempotent");
  });

  test("a text goes out with our message id as tempGuid, then is delivered and read (updated-message has no chats)", async () => {
    const m = await r.send({ to: ALICE, text: "hello from the API" });
    await r.settle();
    const sent = r.fake.sent.filter((s) => s.tempGuid === m.id);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.chatGuid, `iMessage;-;${ALICE}`);
    assert.equal((await r.message(m.id)).status, "sent");
    await r.fake.deliver(sent[0]?.guid ?? "");
    await r.settle();
    assert.equal((await r.message(m.id)).status, "delivered");
    await r.fake.read(sent[0]?.guid ?? "");
    await r.settle();
    assert.equal((await r.message(m.id)).status, "read");
    const types = (await r.eventsOf("message.sent")).filter((e) => e.id === m.id);
    assert.equal(types.length, 1, "the echo and the send's own answer make one message.sent");
  });

  test("effects and replies go through the Private API with Apple's effect ids", async () => {
    const first = await r.send({ to: ALICE, text: "original" });
    await r.settle();
    const guid = r.fake.sent.find((s) => s.tempGuid === first.id)?.guid;
    const m = await r.send({ to: ALICE, text: "boom", effect: "slam", reply_to: first.id });
    await r.settle();
    const req = r.fake.requests.filter((q) => q.path === "/api/v1/message/text").at(-1);
    const body = req?.body as Record<string, unknown>;
    assert.equal(body.method, "private-api");
    assert.equal(body.effectId, "com.apple.MobileSMS.expressivesend.impact");
    assert.equal(body.selectedMessageGuid, guid);
    assert.equal(body.tempGuid, m.id);
  });

  test("an SMS send addresses the SMS chat", async () => {
    const m = await r.send({ to: BOB, text: "over sms", channel: "sms" });
    await r.settle();
    assert.equal(r.fake.sent.find((s) => s.tempGuid === m.id)?.chatGuid, `SMS;-;${BOB}`);
  });

  test("a send that hangs and returns 500 although it went out is reconciled as sent, never resent", async () => {
    r.fake.hangNextSends(1, { ms: 400, sent: true });
    const m = await r.send({ to: ALICE, text: "hang but sent" });
    await r.settle();
    const row = await r.message(m.id);
    assert.equal(row.status, "sent", JSON.stringify(row));
    assert.equal(r.fake.sent.filter((s) => s.text === "hang but sent").length, 1, "exactly one copy on the device");
  });

  test("a send answered 500 that did not go out stays unresolved until BlueBubbles must have given up, then is sent once", async () => {
    // Shorter than our send timeout: the Mac answers 500 (it does, after its 2-minute wait).
    r.fake.hangNextSends(1, { ms: 20, sent: false });
    const m = await r.send({ to: ALICE, text: "hang not sent" });
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sending", "not found yet: unknown, not absent");
    assert.equal(r.fake.sent.filter((s) => s.text === "hang not sent").length, 0);
    r.t.clock.advance(200_000);
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    assert.equal(r.fake.sent.filter((s) => s.text === "hang not sent").length, 1);
  });

  test("a send the network refuses (error code in data) fails with message.failed", async () => {
    r.fake.failNextSends(1, 22);
    const m = await r.send({ to: ALICE, text: "refused" });
    await r.settle();
    const row = await r.message(m.id);
    assert.equal(row.status, "failed");
    assert.deepEqual(row.error, { code: "undeliverable", message: "The network refused the message (BlueBubbles error 22)." });
  });

  test("attachments go as multipart `attachment` parts; a voice memo carries isAudioMessage", async () => {
    const up = await r.t.app.inject({
      method: "POST",
      url: "/v1/attachments",
      headers: { authorization: `Bearer ${r.account.liveKey}`, "content-type": "multipart/form-data; boundary=xx" },
      payload: Buffer.concat([
        Buffer.from('--xx\r\nContent-Disposition: form-data; name="file"; filename="memo.m4a"\r\nContent-Type: audio/mp4\r\n\r\n'),
        // An MPEG-4 audio header (ftyp M4A) so the type sniffed from the bytes is audio.
        Buffer.from("00000020667479704d344120000000004d3441206d70343269736f6d", "hex"),
        Buffer.alloc(64, 1),
        Buffer.from("\r\n--xx--\r\n"),
      ]),
    });
    assert.equal(up.statusCode, 201, up.body);
    const att = up.json().data[0];
    const m = await r.send({ to: ALICE, attachment_ids: [att.id], voice_memo: true });
    await r.settle();
    const row = await r.message(m.id);
    assert.equal(row.status, "sent", JSON.stringify(row));
    const onDevice = r.fake.sent.find((s) => s.tempGuid === `${m.id}:1`);
    assert.ok(onDevice, "the file part went out with tempGuid <id>:1");
    assert.equal(onDevice.isAudioMessage, true);
    assert.equal(onDevice.attachments[0]?.transferName, "memo.m4a");
    assert.equal(onDevice.attachments[0]?.bytes.length, 28 + 64);
  });

  test("reactions, edits and unsends are sent to the Mac; the Private API being down answers *_failed saying so", async () => {
    const m = await r.send({ to: ALICE, text: "react to me" });
    await r.settle();
    const guid = r.fake.sent.find((s) => s.tempGuid === m.id)?.guid ?? "";
    await r.fake.deliver(guid);
    await r.settle();
    const react = await r.t.call(r.account.liveKey, "POST", `/v1/messages/${m.id}/reactions`, { reaction: "love" });
    assert.equal(react.statusCode, 200, react.body);
    const tapback = r.fake.messages.find((x) => x.isFromMe && x.associatedMessageType === "love");
    assert.ok(tapback?.associatedMessageGuid?.endsWith(guid));
    const unreact = await r.t.call(r.account.liveKey, "POST", `/v1/messages/${m.id}/reactions`, { reaction: "love", remove: true });
    assert.equal(unreact.statusCode, 200, unreact.body);
    const edit = await r.t.call(r.account.liveKey, "PATCH", `/v1/messages/${m.id}`, { text: "edited on the Mac" });
    assert.equal(edit.statusCode, 200, edit.body);
    assert.equal(r.fake.messages.find((x) => x.guid === guid)?.text, "edited on the Mac");
    r.fake.helperConnected = false;
    const refused = await r.t.call(r.account.liveKey, "DELETE", `/v1/messages/${m.id}`);
    assert.equal(refused.statusCode, 502, refused.body);
    assert.equal(refused.json().error, "unsend_failed");
    assert.match(refused.json().message, /Private API helper is not connected/);
    r.fake.helperConnected = true;
    const unsend = await r.t.call(r.account.liveKey, "DELETE", `/v1/messages/${m.id}`);
    assert.equal(unsend.statusCode, 200, unsend.body);
    assert.ok(r.fake.messages.find((x) => x.guid === guid)?.dateRetracted);
  });

  test("mark read and typing go to the chat; lookup asks the Mac and is cached", async () => {
    const m = await r.send({ to: BOB, text: "for a chat" });
    await r.settle();
    const read = await r.t.call(r.account.liveKey, "POST", `/v1/chats/${m.conversation_id}/read`);
    assert.equal(read.statusCode, 200, read.body);
    const typing = await r.t.call(r.account.liveKey, "POST", `/v1/chats/${m.conversation_id}/typing`, { state: "start" });
    assert.equal(typing.statusCode, 200, typing.body);
    const paths = r.fake.requests.map((q) => `${q.method} ${decodeURIComponent(q.path)}`);
    assert.ok(paths.some((p) => p.startsWith("POST /api/v1/chat/") && p.endsWith("/read")));
    assert.ok(paths.some((p) => p.startsWith("POST /api/v1/chat/") && p.endsWith("/typing")));
    const asks = () => r.fake.requests.filter((q) => q.path === "/api/v1/handle/availability/imessage").length;
    const before = asks();
    const lookup = () => r.t.call(r.account.liveKey, "GET", `/v1/lookup?handle=${encodeURIComponent("+15557090001")}&from_handle=${encodeURIComponent(NUMBER)}`);
    const smsOnly = await lookup();
    assert.equal(smsOnly.statusCode, 200, smsOnly.body);
    assert.equal(smsOnly.json().data.imessage, false);
    assert.equal((await lookup()).json().data.imessage, false);
    assert.equal(asks(), before + 1, "the second answer came from the cache");
  });
});

describe("bluebubbles back-end: a slow Mac holds up nobody else", () => {
  let r: BlueBubblesRig;
  before(async () => {
    r = await blueBubblesRig({ DEVICE_SEND_TIMEOUT_MS: 5_000, DISPATCH_SEND_WAIT_MS: 20 });
  });
  after(() => r.close());

  test("a send still waiting on its device records itself later; other numbers' sends go out meanwhile", async () => {
    const other = "+15557010009";
    await addNumber(r.t.db.kysely, r.t.clock, { accountId: r.account.id, handle: other, channels: "imessage,sms", backend: "bluebubbles", settings: { url: r.fake.url, password: r.fake.password } });
    await r.t.app.services.devices.tick();
    r.fake.hangNextSends(1, { ms: 1_500, sent: true });
    const slow = await r.send({ to: ALICE, text: "slow one" });
    r.t.clock.advance(1_000);
    await r.t.app.services.dispatcher.tick(); // returns after DISPATCH_SEND_WAIT_MS, the send still in flight
    assert.equal((await r.message(slow.id)).status, "sending");
    const res = await r.t.call(r.account.liveKey, "POST", "/v1/messages", { from_handle: other, to: BOB, text: "fast one" });
    const fast = res.json().data as { id: string };
    await r.t.app.services.dispatcher.tick();
    assert.ok(r.fake.sent.some((x) => x.tempGuid === fast.id), "the other number's send reached its device");
    assert.equal((await r.message(slow.id)).status, "sending", "while the slow send still waits");
    await r.settle();
    assert.equal((await r.message(fast.id)).status, "sent");
    assert.equal((await r.message(slow.id)).status, "sent");
    assert.equal(r.fake.sent.filter((s) => s.text === "slow one").length, 1);
  });

  test("message-send-error for a message already sent fails it (BlueBubbles reports late errors)", async () => {
    const m = await r.send({ to: ALICE, text: "fails later" });
    await r.settle();
    const guid = r.fake.sent.find((s) => s.tempGuid === m.id)?.guid ?? "";
    const hook = new URL(r.fake.webhooks[0]?.url ?? "");
    const res = await r.t.app.inject({
      method: "POST",
      url: `${hook.pathname}${hook.search}`,
      payload: { type: "message-send-error", data: { guid, tempGuid: m.id, isFromMe: true, text: "fails later", error: 4, dateCreated: r.t.clock.now() } },
    });
    assert.equal(res.statusCode, 200, res.body);
    const row = await r.message(m.id);
    assert.equal(row.status, "failed");
    assert.deepEqual(row.error, { code: "undeliverable", message: "BlueBubbles reported send error 4." });
  });
});
