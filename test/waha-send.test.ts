/**
 * The WAHA back-end's outbound side against the fake WAHA over real HTTP: webhook subscription,
 * text, replies, media by URL and by data, voice notes, lookups, ambiguous sends reconciled
 * against the chat's history, and WAHA Core's refusal of media.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { deviceNumber } from "../src/backends/registry.js";
import type { LiveBackend } from "../src/backends/live.js";
import { noisyPng, opus, png } from "./attachment-support.js";
import { BOB, chatOf, type Json, NOBODY, NUMBER, SESSION, sentText, type WahaRig, wahaRig } from "./waha-support.js";

const bodyOf = (r: { body: unknown }) => r.body as Json;

describe("waha back-end: sends through a (fake) WAHA", () => {
  let r: WahaRig;
  before(async () => {
    r = await wahaRig({ DEVICE_SEND_TIMEOUT_MS: 200, DISPATCH_SEND_WAIT_MS: 20, MEDIA_LIMIT_WHATSAPP_IMAGE_BYTES: 20_000 });
  });
  after(() => r.close());

  test("the monitor finds the session WORKING and points its webhooks at our ingest URL, signed with the number's secret", async () => {
    const hooks = r.fake.sessions.get(SESSION)?.config.webhooks ?? [];
    assert.equal(hooks.length, 1);
    const hook = hooks[0];
    assert.equal(hook?.url, `${r.t.config.PUBLIC_URL}/ingest/waha/${r.numberId}?secret=${encodeURIComponent(r.settings.ingestSecret)}`);
    assert.deepEqual(hook?.hmac, { key: r.settings.ingestSecret });
    for (const e of ["message", "message.ack", "message.ack.group", "message.reaction", "message.edited", "message.revoked", "presence.update", "group.v2.participants", "group.v2.update"]) {
      assert.ok(hook?.events.includes(e), e);
    }
    const number = await r.t.db.kysely.selectFrom("numbers").selectAll().where("id", "=", r.numberId).executeTakeFirstOrThrow();
    assert.equal(number.status, "online");
  });

  test("subscribing keeps the operator's own webhooks, replaces an old one of ours (keeping its extra fields), and never restarts the session when nothing changes", async () => {
    const backend = r.t.app.services.backends.named("waha") as LiveBackend;
    const number = await r.t.db.kysely.selectFrom("numbers").selectAll().where("id", "=", r.numberId).executeTakeFirstOrThrow();
    const dn = deviceNumber(number, "live");
    const session = r.fake.sessions.get(SESSION);
    assert.ok(session);
    const ours = session.config.webhooks?.[0];
    const operator = { url: "https://ops.example/hook", events: ["session.status"], hmac: null };
    const retries = { policy: "exponential", delaySeconds: 2, attempts: 5 };
    session.config = { ...session.config, webhooks: [operator, { url: `http://old.example/ingest/waha/${r.numberId}?secret=old`, events: ["message"], retries }] };
    const puts = () => r.requests("PUT", `/api/sessions/${SESSION}`).length;
    const before = puts();
    await backend.subscribe(dn, ours?.url ?? "");
    assert.equal(puts(), before + 1);
    assert.deepEqual(
      session.config.webhooks?.map((h) => h.url),
      [operator.url, ours?.url],
    );
    assert.deepEqual(session.config.webhooks?.[1]?.retries, retries, "what the operator added to ours is kept");
    await backend.subscribe(dn, ours?.url ?? "");
    assert.equal(puts(), before + 1, "ours is there as it should be: no PUT (a PUT restarts the session)");
    await r.fake.flushWebhooks();
  });

  test("a session re-created without our webhook gets it back at the next health check", async () => {
    const session = r.fake.sessions.get(SESSION);
    assert.ok(session);
    const ours = session.config.webhooks?.at(-1);
    session.config = { webhooks: [] };
    await r.t.app.services.devices.tick();
    await r.fake.flushWebhooks();
    assert.deepEqual(
      session.config.webhooks?.map((h) => [h.url, h.hmac, h.events]),
      [[ours?.url, ours?.hmac, ours?.events]],
    );
    const puts = r.requests("PUT", `/api/sessions/${SESSION}`).length;
    await r.t.app.services.devices.tick();
    assert.equal(r.requests("PUT", `/api/sessions/${SESSION}`).length, puts, "present: left alone");
  });

  test("a text goes out with sendText to <digits>@c.us; WAHA's id is recorded and message.sent is emitted once", async () => {
    const m = await sentText(r, BOB, "hello from the API");
    assert.deepEqual(r.lastBody("POST", "/api/sendText"), { session: SESSION, chatId: chatOf(BOB), text: "hello from the API" });
    assert.equal((await r.eventsOf("message.sent")).filter((e) => e.id === m.id).length, 1);
    assert.equal((await r.message(m.id)).channel, "whatsapp");
  });

  test("NOWEB's raw Baileys answer (no top-level id) is serialized to WAHA's id, so acks find the message", async () => {
    r.fake.rawSendResponses = true;
    try {
      const m = await sentText(r, BOB, "raw answer");
      await r.fake.ack(SESSION, m.deviceId, 2);
      await r.settle();
      assert.equal((await r.message(m.id)).status, "delivered");
    } finally {
      r.fake.rawSendResponses = false;
    }
  });

  test("a reply names the replied-to message's WAHA id in reply_to", async () => {
    const inbound = await r.fake.receive(SESSION, { from: chatOf(BOB), text: "a question?" });
    await r.fake.flushWebhooks();
    const question = await r.received(inbound.id);
    const m = await r.send({ to: BOB, text: "the answer", reply_to: question.id });
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    assert.equal(r.lastBody("POST", "/api/sendText").reply_to, inbound.id);
    assert.equal(r.fake.sent.at(-1)?.replyTo, inbound.id);
  });

  test("an original upload goes by its signed URL (WAHA fetches the same bytes), the text as its caption", async () => {
    const bytes = await png(8, 8);
    const att = await r.upload("dot.png", "image/png", bytes);
    const texts = r.requests("POST", "/api/sendText").length;
    const m = await r.send({ to: BOB, text: "look at this", attachment_ids: [att.id] });
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    const body = r.lastBody("POST", "/api/sendImage");
    assert.equal(body.caption, "look at this");
    assert.equal(body.chatId, chatOf(BOB));
    assert.match(body.file.url, /\/v1\/attachments\/.+\/content\?expires=/);
    assert.equal(body.file.data, undefined);
    assert.equal(body.file.mimetype, "image/png");
    const onDevice = r.fake.sent.at(-1);
    assert.equal(onDevice?.kind, "image");
    assert.equal(onDevice?.body, "look at this");
    assert.ok(onDevice?.media?.data.equals(bytes), "the bytes WAHA fetched are the upload's");
    assert.equal(r.requests("POST", "/api/sendText").length, texts, "the text rode as the caption");
    assert.equal(await r.deviceIdOf(m.id), onDevice?.id);
  });

  test("an image transcoded for WhatsApp's limit goes as base64 file.data", async () => {
    const att = await r.upload("noise.png", "image/png", await noisyPng(160, 160));
    assert.ok(att.size_bytes > 20_000);
    const m = await r.send({ to: BOB, attachment_ids: [att.id] });
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    const body = r.lastBody("POST", "/api/sendImage");
    assert.equal(body.file.url, undefined);
    assert.equal(body.file.mimetype, "image/jpeg");
    assert.equal(body.caption, undefined);
    const onDevice = r.fake.sent.at(-1);
    assert.ok(onDevice?.media && onDevice.media.data.length <= 20_000 && onDevice.media.data.length > 0);
    assert.ok(onDevice.media.data.equals(Buffer.from(body.file.data, "base64")));
  });

  test("a voice memo goes through sendVoice as OGG/Opus; its text, which a voice note cannot carry, follows as a text", async () => {
    const att = await r.upload("memo.ogg", "audio/ogg", opus(3000));
    const m = await r.send({ to: BOB, text: "listen to this", voice_memo: true, attachment_ids: [att.id] });
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    const voice = r.lastBody("POST", "/api/sendVoice");
    assert.equal(voice.file.mimetype, "audio/ogg; codecs=opus");
    const [note, text] = r.fake.sent.slice(-2);
    assert.equal(note?.kind, "voice");
    assert.equal(text?.body, "listen to this");
    assert.equal(await r.deviceIdOf(m.id), note?.id, "the message's id is its first part's");
  });

  test("lookup asks check-exists: WhatsApp or not (no chatId key when not)", async () => {
    const yes = await r.call("GET", `/v1/lookup?handle=${encodeURIComponent(BOB)}&from_handle=${encodeURIComponent(NUMBER)}`);
    assert.equal(yes.statusCode, 200, yes.body);
    assert.deepEqual(yes.json().data, { handle: BOB, imessage: null, whatsapp: true, recommended_channel: "whatsapp" });
    const no = await r.call("GET", `/v1/lookup?handle=${encodeURIComponent(NOBODY)}&from_handle=${encodeURIComponent(NUMBER)}`);
    assert.deepEqual(no.json().data, { handle: NOBODY, imessage: null, whatsapp: false, recommended_channel: null });
    assert.equal(r.requests("GET", "/api/contacts/check-exists").at(-1)?.query.phone, NOBODY.slice(1));
  });

  test("a send that hangs past our timeout but went out is reconciled from the chat's history as sent, never resent", async () => {
    r.fake.hangNextSends(1, { ms: 5_000, sent: true });
    const m = await r.send({ to: BOB, text: "hung but sent" });
    await r.settle();
    r.t.clock.advance(r.t.config.DISPATCH_LEASE_MS + 1);
    await r.settle();
    const row = await r.message(m.id);
    assert.equal(row.status, "sent", JSON.stringify(row));
    assert.equal(r.fake.sent.filter((s) => s.body === "hung but sent").length, 1, "exactly one copy on WhatsApp");
    assert.equal(r.requests("POST", "/api/sendText").filter((q) => bodyOf(q).text === "hung but sent").length, 1, "never sent again");
    assert.equal(await r.deviceIdOf(m.id), r.fake.sent.find((s) => s.body === "hung but sent")?.id);
    assert.ok(r.requests("GET", `/api/${SESSION}/chats/${chatOf(BOB)}/messages`).some((q) => q.query.limit === "50" && q.query.downloadMedia === "false"));
    assert.equal((await r.eventsOf("message.sent")).filter((e) => e.id === m.id).length, 1);
  });

  test("a 500 from WAHA although the message went out is reconciled as sent", async () => {
    r.fake.hangNextSends(1, { ms: 0, sent: true, status: 500 });
    const m = await r.send({ to: BOB, text: "500 but sent" });
    await r.settle();
    r.t.clock.advance(r.t.config.DISPATCH_LEASE_MS + 1);
    await r.settle();
    assert.equal((await r.message(m.id)).status, "sent");
    assert.equal(r.fake.sent.filter((s) => s.body === "500 but sent").length, 1);
  });

  test("a send that hangs and did not go out is found absent and sent again exactly once", async () => {
    r.fake.hangNextSends(1, { ms: 5_000, sent: false });
    const m = await r.send({ to: BOB, text: "hung, not sent" });
    await r.settle();
    r.t.clock.advance(r.t.config.DISPATCH_LEASE_MS + 1);
    await r.settle();
    await r.settle();
    const row = await r.message(m.id);
    assert.equal(row.status, "sent", JSON.stringify(row));
    assert.equal(r.fake.sent.filter((s) => s.body === "hung, not sent").length, 1, "one copy on WhatsApp");
    assert.equal(r.requests("POST", "/api/sendText").filter((q) => bodyOf(q).text === "hung, not sent").length, 2, "the first attempt and one resend");
  });

  test("WAHA Core refuses media (422, Plus only): message.failed media_unsupported, naming WAHA Plus; text still goes", async () => {
    r.fake.plus = false;
    try {
      const att = await r.upload("dot.png", "image/png", await png(4, 4));
      const m = await r.send({ to: BOB, text: "a picture", attachment_ids: [att.id] });
      await r.settle();
      const row = await r.message(m.id);
      assert.equal(row.status, "failed");
      assert.equal(row.error.code, "media_unsupported");
      assert.match(row.error.message, /WAHA Plus/);
      const failed = (await r.eventsOf("message.failed")).filter((e) => e.id === m.id);
      assert.equal(failed.length, 1);
      assert.equal(failed[0]?.error.code, "media_unsupported");
      await sentText(r, BOB, "text works on Core");
    } finally {
      r.fake.plus = true;
    }
  });
});
