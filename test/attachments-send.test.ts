/**
 * Sending and receiving attachments: the single-use claim (also under concurrency and idempotent
 * replay), attachments in message objects and events, media limits per channel (transcoding of
 * images, refusal of video), voice memos, and inbound media with signed URLs.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { storeInboundMedia } from "../src/attachments/inbound.js";
import { applyDeviceEvents } from "../src/messages/ingest.js";
import { type Attachment, type AttachmentsTest, attachmentsApp, attachmentsOf, mediaOf, mp4, noisyPng, opus, png } from "./attachment-support.js";
import { dialectName } from "./helpers.js";
import { ANYONE, assertError, eventsOf, FROM, messageEvents, SIM, statusOf, untilStatus } from "./messaging-helpers.js";

/** A number of the account that serves SMS only (MMS limits apply to everything it sends). */
const SMS_ONLY_FROM = "+15557770003";

describe(`sending with attachment_ids (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp();
    await a.t.addNumber(a.acct.id, SMS_ONLY_FROM, "sms");
  });
  after(() => a.close());

  it("202: the message carries its attachments (claimed: message_id set), in the order sent, in the answer, GET, list and events", async () => {
    const first = await a.uploadOne({ filename: "one.png", data: await png() });
    const second = await a.uploadOne({ filename: "two.txt", data: Buffer.from("second") });
    const msg = await a.send({ to: ANYONE, from_handle: FROM, attachment_ids: [second.id, first.id] });
    assert.deepEqual(attachmentsOf(msg).map((x) => [x.id, x.message_id]), [[second.id, msg.id], [first.id, msg.id]]);
    assert.equal(msg.text, null);
    assert.equal((await a.signed(attachmentsOf(msg)[1]?.url ?? "")).statusCode, 200);
    assert.deepEqual(attachmentsOf(await a.get(msg.id)).map((x) => x.id), [second.id, first.id]);
    const list = (await a.t.call(a.acct.testKey, "GET", "/v1/messages?limit=5")).json().data as { id: string; attachments: Attachment[] }[];
    assert.deepEqual(list.find((m) => m.id === msg.id)?.attachments.map((x) => x.id), [second.id, first.id]);
    const owned = (await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${first.id}`)).json().data as Attachment;
    assert.equal(owned.message_id, msg.id);

    await untilStatus(a.t, msg.id, "read");
    const events = await messageEvents(a.t, a.acct.id, msg.id);
    assert.deepEqual(events.map((e) => e.type), ["message.created", "message.sent", "message.delivered", "message.read"]);
    for (const e of events) assert.deepEqual(e.data.attachments.map((x: Attachment) => x.id), [second.id, first.id], e.type);
    // The device got both files, byte for byte.
    assert.deepEqual((await mediaOf(a.t, msg.id)).map((m) => [m.filename, Number(m.size_bytes)]), [["two.txt", 6], ["one.png", first.size_bytes]]);
  });

  it("single use: a second message claiming the same attachment is 400 invalid_attachments, and nothing of it is stored", async () => {
    const att = await a.uploadOne({ filename: "once.txt", data: Buffer.from("once") });
    const used = await a.send({ to: ANYONE, from_handle: FROM, text: "first", attachment_ids: [att.id] });
    const before = (await eventsOf(a.t, a.acct.id)).length;
    const res = await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, text: "second", attachment_ids: [att.id] });
    assertError(res, 400, "invalid_attachments");
    assert.match(res.json().message, new RegExp(att.id));
    assert.equal((await eventsOf(a.t, a.acct.id)).length, before, "the refused send wrote nothing");
    // One good and one used id: refused as a whole, the good one stays unclaimed.
    const fresh = await a.uploadOne({ filename: "fresh.txt", data: Buffer.from("fresh") });
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, attachment_ids: [fresh.id, att.id] }), 400, "invalid_attachments");
    assert.equal(((await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${fresh.id}`)).json().data as Attachment).message_id, null);
    assert.equal(((await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${att.id}`)).json().data as Attachment).message_id, used.id);
  });

  it("two sends racing for one attachment: exactly one wins (202), the other gets 400 invalid_attachments", async () => {
    for (let round = 0; round < 5; round++) {
      const att = await a.uploadOne({ filename: `race${round}.txt`, data: Buffer.from(`race ${round}`) });
      const body = (text: string) => ({ to: ANYONE, from_handle: FROM, text, attachment_ids: [att.id] });
      const [x, y] = await Promise.all([a.t.call(a.acct.testKey, "POST", "/v1/messages", body("x")), a.t.call(a.acct.testKey, "POST", "/v1/messages", body("y"))]);
      const codes = [x.statusCode, y.statusCode].sort();
      assert.deepEqual(codes, [202, 400], `round ${round}: ${x.body} / ${y.body}`);
      const loser = x.statusCode === 400 ? x : y;
      const winner = x.statusCode === 202 ? x : y;
      assert.equal(loser.json().error, "invalid_attachments");
      const claimed = (await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${att.id}`)).json().data as Attachment;
      assert.equal(claimed.message_id, winner.json().data.id);
      const owners = await a.t.db.kysely.selectFrom("messages").select("id").where("attachment_count", ">", 0).where("text", "in", ["x", "y"]).execute();
      assert.equal(owners.filter((o) => o.id === winner.json().data.id).length, 1);
    }
  });

  it("an idempotent replay of a send with attachments is 200 with the same message and attachments, not an error", async () => {
    const att = await a.uploadOne({ filename: "idem.png", data: await png() });
    const headers = { "idempotency-key": "send-with-attachment" };
    const body = { to: ANYONE, from_handle: FROM, attachment_ids: [att.id] };
    const first = await a.t.call(a.acct.testKey, "POST", "/v1/messages", body, headers);
    assert.equal(first.statusCode, 202, first.body);
    const replay = await a.t.call(a.acct.testKey, "POST", "/v1/messages", body, headers);
    assert.equal(replay.statusCode, 200, replay.body);
    assert.equal(replay.headers["idempotent-replayed"], "true");
    assert.equal(replay.json().data.id, first.json().data.id);
    assert.deepEqual(replay.json().data.attachments.map((x: Attachment) => x.id), [att.id]);
    // Another key is another send: the attachment is used.
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", body, { "idempotency-key": "another" }), 400, "invalid_attachments");
  });

  it("another account's or the other mode's attachment is 400 invalid_attachments and stays unclaimed for its owner", async () => {
    const theirs = await a.uploadOne({ filename: "theirs.txt", data: Buffer.from("theirs") }, a.other.testKey);
    const live = await a.uploadOne({ filename: "live.txt", data: Buffer.from("live") }, a.acct.liveKey);
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, attachment_ids: [theirs.id] }), 400, "invalid_attachments");
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, attachment_ids: [live.id] }), 400, "invalid_attachments");
    const ok = await a.t.call(a.other.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: "+15557770002", attachment_ids: [theirs.id] });
    assert.equal(ok.statusCode, 202, ok.body);
  });

  it("an image above the SMS limit is transcoded at send time to a JPEG below it; over iMessage the original goes", async () => {
    const limit = a.t.config.MEDIA_LIMIT_SMS_BYTES;
    const big = await noisyPng(900, 700);
    assert.ok(big.length > 2 * limit, `test image of ${big.length} bytes is not above the SMS limit`);
    const att = await a.uploadOne({ filename: "noise.png", data: big });
    const sms = await a.send({ to: SIM.smsOnly, from_handle: FROM, attachment_ids: [att.id] });
    await untilStatus(a.t, sms.id, "delivered");
    assert.equal((await a.get(sms.id)).channel, "sms");
    const [sent] = await mediaOf(a.t, sms.id);
    assert.ok(sent);
    assert.equal(sent.mime_type, "image/jpeg");
    assert.equal(sent.filename, "noise.jpg");
    assert.ok(Number(sent.size_bytes) <= limit, `sent ${sent.size_bytes} bytes, limit ${limit}`);
    assert.ok(Number(sent.size_bytes) > limit / 10, "shrunk to fit, not to nothing");
    // The attachment itself is unchanged: its URL still serves the original.
    const original = await a.signed(attachmentsOf(await a.get(sms.id))[0]?.url ?? "");
    assert.equal(original.rawPayload.length, big.length);

    const other = await a.uploadOne({ filename: "noise2.png", data: big });
    const imessage = await a.send({ to: ANYONE, from_handle: FROM, attachment_ids: [other.id] });
    await untilStatus(a.t, imessage.id, "delivered");
    const [asIs] = await mediaOf(a.t, imessage.id);
    assert.deepEqual([asIs?.mime_type, Number(asIs?.size_bytes)], ["image/png", big.length]);
  });

  it("video above the limit: 400 attachment_too_large when no channel of the number could carry it; failed at send time when the chosen one cannot", async () => {
    const video = await a.uploadOne({ filename: "clip.mp4", data: mp4(a.t.config.MEDIA_LIMIT_SMS_BYTES + 1) });
    assert.equal(video.mime_type, "video/mp4");
    const refused = assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: SMS_ONLY_FROM, attachment_ids: [video.id] }), 400, "attachment_too_large");
    assert.match(refused.message, /video transcoding is not supported yet/);
    assert.equal(((await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${video.id}`)).json().data as Attachment).message_id, null, "a refused send claims nothing");
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, channel: "sms", attachment_ids: [video.id] }), 400, "attachment_too_large", "forced SMS");

    // iMessage could carry it, so it is accepted; the recipient turns out to be SMS-only.
    const msg = await a.send({ to: SIM.smsOnly, from_handle: FROM, attachment_ids: [video.id] });
    await untilStatus(a.t, msg.id, "failed");
    const failed = await a.get(msg.id);
    assert.equal(failed.error?.code, "attachment_too_large");
    assert.match(failed.error?.message ?? "", /sms limit/);
    assert.deepEqual(await mediaOf(a.t, msg.id), [], "nothing reached the device");
  });

  it("voice_memo: an audio attachment goes as a voice note over iMessage; SMS has none, so there it is a plain audio file", async () => {
    const voice = await a.uploadOne({ filename: "memo.ogg", data: opus(4000) });
    assert.match(voice.mime_type, /^audio\/ogg/);
    const msg = await a.send({ to: ANYONE, from_handle: FROM, voice_memo: true, attachment_ids: [voice.id] });
    assert.equal(msg.voice_memo, true);
    await untilStatus(a.t, msg.id, "sent");
    assert.deepEqual((await mediaOf(a.t, msg.id)).map((m) => [m.filename, m.voice_note]), [["memo.ogg", 1]]);

    const voice2 = await a.uploadOne({ filename: "memo2.ogg", data: opus(4000) });
    const picture = await a.uploadOne({ filename: "pic.png", data: await png() });
    const sms = await a.send({ to: SIM.smsOnly, from_handle: FROM, voice_memo: true, attachment_ids: [voice2.id, picture.id] });
    await untilStatus(a.t, sms.id, "sent");
    assert.deepEqual((await mediaOf(a.t, sms.id)).map((m) => [m.filename, m.voice_note]), [["memo2.ogg", 0], ["pic.png", 0]]);
    // Without voice_memo, audio is an ordinary file.
    const voice3 = await a.uploadOne({ filename: "memo3.ogg", data: opus(4000) });
    const plain = await a.send({ to: ANYONE, from_handle: FROM, attachment_ids: [voice3.id] });
    await untilStatus(a.t, plain.id, "sent");
    assert.deepEqual((await mediaOf(a.t, plain.id)).map((m) => m.voice_note), [0]);
  });
});

describe(`inbound media (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp();
  });
  after(() => a.close());

  it("test helper: the contact's files become attachments of the inbound message, in message.received with signed URLs that serve the bytes", async () => {
    const bytes = await png(12, 12);
    const photo = await a.uploadOne({ filename: "from-contact.png", data: bytes });
    const res = await a.t.call(a.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "look", attachment_ids: [photo.id] });
    assert.equal(res.statusCode, 201, res.body);
    const msg = res.json().data as { id: string; direction: string; attachments: Attachment[] };
    assert.equal(msg.direction, "inbound");
    assert.deepEqual(msg.attachments.map((x) => [x.id, x.message_id]), [[photo.id, msg.id]]);

    const received = (await eventsOf(a.t, a.acct.id)).find((e) => e.type === "message.received" && e.data.id === msg.id);
    assert.ok(received);
    const [att] = received.data.attachments as Attachment[];
    assert.ok(att);
    assert.equal(att.mime_type, "image/png");
    const served = await a.signed(att.url);
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers["content-type"], "image/png");
    assert.ok(Buffer.compare(served.rawPayload, bytes) === 0);
    // Webhook payload URLs outlive the delivery retry schedule (about three days), unlike API ones.
    const expires = Number(new URL(att.url).searchParams.get("expires")) * 1000;
    assert.ok(expires - a.t.clock.now() >= 75 * 3_600_000, "event URL lives through the retry schedule");
    a.t.clock.advance(2 * 3_600_000);
    assert.equal((await a.signed(att.url)).statusCode, 200);

    // Claimed by the inbound message: it cannot be sent out again.
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, attachment_ids: [photo.id] }), 400, "invalid_attachments");
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, attachment_ids: [photo.id] }), 400, "invalid_attachments");
  });

  it("device path: a back-end stores the media first (storeInboundMedia), then its received event claims it", async () => {
    const svc = a.t.app.services.attachments;
    const scope = { accountId: a.acct.id, mode: "test" as const };
    const id = await storeInboundMedia(a.t.db, svc, scope, { filename: "voice.ogg", mimeType: "audio/ogg", stream: Readable.from([opus(3000)]) });
    const now = a.t.clock.now();
    await a.t.db.transaction((trx) =>
      applyDeviceEvents(trx, a.t.clock, [
        { kind: "received", numberHandle: FROM, mode: "test", from: "+15557778888", text: null, channel: "imessage", deviceId: "dev-in-1", at: now, attachmentIds: [id] },
      ]),
    );
    const received = (await eventsOf(a.t, a.acct.id)).find((e) => e.type === "message.received" && e.data.from_handle === "+15557778888");
    assert.ok(received);
    assert.deepEqual(received.data.attachments.map((x: Attachment) => [x.id, x.filename, x.message_id]), [[id, "voice.ogg", received.data.id]]);
    assert.equal((await a.signed(received.data.attachments[0].url)).rawPayload.length, 3000);
    assert.equal(await statusOf(a.t, received.data.id), "received");
  });
});
