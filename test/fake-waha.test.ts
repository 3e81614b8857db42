/**
 * The WAHA fake against its contract (backends.md §0.7, §2.1, §4, §5 and WAHA's NOWEB source): auth, 422 when the
 * session is not WORKING, sends, webhook envelope + HMAC, and the quirks it reproduces. A tiny node:http receiver
 * captures the webhooks; nothing sleeps except the hanging-send test (50 ms).
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { FakeWaha } from "../fakes/waha/server.js";

// biome-ignore lint/suspicious/noExplicitAny: wire payloads are checked field by field
type Json = Record<string, any>;
interface Hook {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  json: Json;
}

/** A receiver for webhooks (and a file server for `file.url`), on 127.0.0.1:0. */
class Receiver {
  hooks: Hook[] = [];
  server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "GET") {
        res.writeHead(200, { "Content-Type": "image/png" }).end(Buffer.from("PNGDATA"));
        return;
      }
      const raw = Buffer.concat(chunks).toString("utf8");
      this.hooks.push({ path: req.url ?? "", headers: req.headers, raw, json: JSON.parse(raw) });
      res.writeHead(200).end("ok");
    });
  });
  url = "";
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  events(name: string): Json[] {
    return this.hooks.filter((h) => h.json.event === name).map((h) => h.json.payload);
  }
}

const KEY = "test-key";
const ME = "15550009999@c.us";
const BOB = "15551234567@c.us";
let fake: FakeWaha;
let rx: Receiver;

async function call(method: string, path: string, body?: unknown, key: string | null = KEY): Promise<{ status: number; body: Json; raw: Buffer }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (key !== null) headers["X-Api-Key"] = key;
  const res = await fetch(`${fake.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const raw = Buffer.from(await res.arrayBuffer());
  const text = raw.toString("utf8");
  let parsed: Json = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = {};
  }
  return { status: res.status, body: parsed, raw };
}

const sendText = (chatId = BOB, text = "hi", extra: Json = {}) => call("POST", "/api/sendText", { session: "default", chatId, text, ...extra });

before(async () => {
  rx = new Receiver();
  await rx.start();
});
after(() => new Promise<void>((r) => rx.server.close(() => r())));

beforeEach(async () => {
  rx.hooks = [];
  fake = new FakeWaha({ apiKey: KEY });
  fake.addSession("default", { me: ME });
  await fake.start();
  const s = fake.sessions.get("default");
  assert.ok(s);
  s.config = { webhooks: [{ url: `${rx.url}/hook`, events: ["*"], hmac: { key: "hmac-secret" } }] };
});
afterEach(() => fake.stop());

describe("auth and sessions", () => {
  test("missing or wrong X-Api-Key → 401 NestJS body; the query parameter works too", async () => {
    for (const key of [null, "nope"]) {
      const res = await call("GET", "/api/sessions/default", undefined, key);
      assert.equal(res.status, 401);
      assert.deepEqual(res.body, { message: "Unauthorized", statusCode: 401 });
    }
    const viaQuery = await call("GET", `/api/sessions/default?x-api-key=${KEY}`, undefined, null);
    assert.equal(viaQuery.status, 200);
    assert.equal(fake.requests.length, 3);
  });

  test("GET session → {name, status, config, me, engine}; unknown session → 404", async () => {
    const res = await call("GET", "/api/sessions/default");
    assert.equal(res.status, 200);
    assert.equal(res.body.status, "WORKING");
    assert.deepEqual(res.body.me, { id: ME, pushName: "Fake WAHA" });
    assert.deepEqual(res.body.engine, { engine: "NOWEB" });
    assert.equal((await call("GET", "/api/sessions/other")).status, 404);
    assert.equal((await sendText(BOB, "x", { session: "other" })).status, 404);
  });

  test("not WORKING → 422 {error, session, status, expected} on every chatting call, and session.status fires", async () => {
    await fake.setStatus("default", "SCAN_QR_CODE");
    const expected = { error: "Session status is not as expected. Try again later or restart the session", session: "default", status: "SCAN_QR_CODE", expected: ["WORKING"] };
    for (const res of [await sendText(), await call("GET", "/api/contacts/check-exists?session=default&phone=15551234567"), await call("POST", "/api/startTyping", { session: "default", chatId: BOB })]) {
      assert.equal(res.status, 422);
      assert.deepEqual(res.body, expected);
    }
    await fake.flushWebhooks();
    const [status] = rx.events("session.status");
    assert.equal(status?.name, "default");
    assert.equal(status?.status, "SCAN_QR_CODE");
  });

  test("PUT config replaces the webhooks and restarts a running session (STARTING → WORKING to the new hooks)", async () => {
    const res = await call("PUT", "/api/sessions/default", { config: { webhooks: [{ url: `${rx.url}/new`, events: ["session.status"] }] } });
    assert.equal(res.status, 200);
    assert.equal(res.body.config.webhooks[0].url, `${rx.url}/new`);
    await fake.flushWebhooks();
    assert.deepEqual(rx.hooks.map((h) => [h.path, h.json.payload.status]), [["/new", "STARTING"], ["/new", "WORKING"]]);
    assert.equal((await call("POST", "/api/sessions/default/stop")).body.status, "STOPPED");
    assert.equal((await call("POST", "/api/sessions/default/start")).status, 201);
  });
});

describe("sending", () => {
  test("sendText → 201 WAMessage with a string id true_<chat>_3EB0…; NOWEB wire: from = chat, no `to` in a DM", async () => {
    const res = await sendText(BOB, "hello");
    assert.equal(res.status, 201);
    assert.match(res.body.id, /^true_15551234567@c\.us_3EB0[0-9A-F]+$/);
    assert.equal(res.body.fromMe, true);
    assert.equal(res.body.from, BOB);
    assert.equal("to" in res.body, false);
    assert.equal(res.body.body, "hello");
    assert.equal(res.body.ack, 1);
    assert.equal(res.body.ackName, "SERVER");
    assert.equal(fake.sent.length, 1);
    assert.equal(fake.sent[0]?.id, res.body.id);
    await fake.flushWebhooks();
    assert.equal(rx.events("message.any")[0]?.id, res.body.id);
    assert.equal(rx.events("message").length, 0);
  });

  test("reply_to is kept; replyTo on the wire is {id: <bare ID>, participant, body}", async () => {
    const inbound = await fake.receive("default", { from: BOB, text: "question" });
    const res = await sendText(BOB, "answer", { reply_to: inbound.id });
    assert.equal(fake.sent[0]?.replyTo, inbound.id);
    assert.deepEqual(res.body.replyTo, { id: inbound.id.split("_")[2], participant: BOB, body: "question" });
  });

  test("rawSendResponses gives the real NOWEB answer: the Baileys message, no top-level id", async () => {
    fake.rawSendResponses = true;
    const res = await sendText();
    assert.equal(res.body.id, undefined);
    assert.equal(res.body.key.fromMe, true);
    assert.equal(res.body.key.remoteJid, "15551234567@s.whatsapp.net");
  });

  test("missing chatId → 400; sending to an unknown group → 500 engine error", async () => {
    assert.equal((await call("POST", "/api/sendText", { session: "default", text: "x" })).status, 400);
    const res = await sendText("999@g.us");
    assert.equal(res.status, 500);
    assert.equal(res.body.statusCode, 500);
    assert.equal(res.body.exception.message, "item-not-found");
  });

  test("media sends store the bytes from data or from a fetched url; Core (plus=false) → 422 AvailableInPlusVersion", async () => {
    const img = await call("POST", "/api/sendImage", { session: "default", chatId: BOB, caption: "look", file: { mimetype: "image/png", url: `${rx.url}/pic.png` } });
    assert.equal(img.status, 201);
    assert.equal(fake.sent[0]?.media?.data.toString(), "PNGDATA");
    assert.equal(fake.sent[0]?.kind, "image");
    const voice = await call("POST", "/api/sendVoice", { session: "default", chatId: BOB, file: { data: Buffer.from("OPUS").toString("base64") } });
    assert.equal(voice.status, 201);
    assert.equal(fake.sent[1]?.media?.mimetype, "audio/ogg; codecs=opus");
    assert.equal(fake.sent[1]?.kind, "voice");
    fake.plus = false;
    const core = await call("POST", "/api/sendFile", { session: "default", chatId: BOB, file: { mimetype: "application/pdf", data: "AA==" } });
    assert.equal(core.status, 422);
    assert.equal(core.body.statusCode, 422);
    assert.match(core.body.message, /available only in Plus version/);
    assert.equal(fake.sent.length, 2);
  });

  test("hangNextSends: hangs, answers 500, and the message went out (or not) as scripted", async () => {
    fake.hangNextSends(1, { ms: 50, sent: true });
    fake.hangNextSends(1, { ms: 50, sent: false, status: 504 });
    const t0 = Date.now();
    const first = await sendText(BOB, "one");
    assert.ok(Date.now() - t0 >= 45);
    assert.equal(first.status, 500);
    assert.equal(fake.sent.length, 1);
    assert.equal((await sendText(BOB, "two")).status, 504);
    assert.equal(fake.sent.length, 1);
    assert.equal((await sendText(BOB, "three")).status, 201);
    assert.deepEqual(fake.sent.map((m) => m.body), ["one", "three"]);
  });

  test("stop() ends a hanging request at once", async () => {
    fake.hangNextSends(1, { ms: 60_000, sent: false });
    const pending = sendText().then(
      () => "answered",
      () => "closed",
    );
    while (fake.requests.length === 0) await new Promise((r) => setImmediate(r));
    await fake.stop();
    assert.equal(await pending, "closed");
  });
});

describe("webhooks", () => {
  test("envelope {id, timestamp, session, engine, me, environment, event, payload}, X-Webhook-Request-Id and HMAC-SHA512", async () => {
    await fake.receive("default", { from: BOB, text: "hello" });
    await fake.flushWebhooks();
    const hook = rx.hooks.find((h) => h.json.event === "message");
    assert.ok(hook);
    const env = hook.json;
    assert.match(env.id, /^evt_[0-9a-f]+$/);
    assert.equal(typeof env.timestamp, "number");
    assert.equal(env.session, "default");
    assert.equal(env.engine, "NOWEB");
    assert.deepEqual(env.me, { id: ME, pushName: "Fake WAHA" });
    assert.equal(env.environment.tier, "PLUS");
    assert.ok(hook.headers["x-webhook-request-id"]);
    assert.equal(hook.headers["x-webhook-hmac-algorithm"], "sha512");
    assert.equal(hook.headers["x-webhook-hmac"], createHmac("sha512", "hmac-secret").update(hook.raw).digest("hex"));
  });

  test("only subscribed events go out; no hmac key → no signature headers; custom headers are sent", async () => {
    const s = fake.sessions.get("default");
    assert.ok(s);
    s.config = { webhooks: [{ url: `${rx.url}/only`, events: ["message"], customHeaders: [{ name: "X-Token", value: "t1" }] }] };
    await fake.receive("default", { from: BOB, text: "hello" });
    await sendText();
    await fake.flushWebhooks();
    assert.deepEqual(rx.hooks.map((h) => h.json.event), ["message"]);
    assert.equal(rx.hooks[0]?.headers["x-webhook-hmac"], undefined);
    assert.equal(rx.hooks[0]?.headers["x-token"], "t1");
  });

  test("one attempt, no retries: a dead receiver is recorded and skipped", async () => {
    const s = fake.sessions.get("default");
    assert.ok(s);
    s.config = { webhooks: [{ url: "http://127.0.0.1:1/dead", events: ["*"] }] };
    await fake.receive("default", { from: BOB, text: "hello" });
    await fake.flushWebhooks();
    assert.equal(fake.deliveries.length, 2);
    assert.ok(fake.deliveries.every((d) => d.status === null && d.error));
  });

  test("inbound DM: message + message.any, fromMe false, from = sender, body, ack DEVICE", async () => {
    const msg = await fake.receive("default", { from: "15551234567", text: "yo" });
    assert.match(msg.id, /^false_15551234567@c\.us_[0-9A-F]+$/);
    await fake.flushWebhooks();
    const [p] = rx.events("message");
    assert.equal(p?.id, msg.id);
    assert.equal(p?.from, BOB);
    assert.equal(p?.fromMe, false);
    assert.equal(p?.body, "yo");
    assert.equal(p?.hasMedia, false);
    assert.equal(p?.media, null);
    assert.equal(rx.events("message.any")[0]?.id, msg.id);
  });

  test("inbound group message: id carries the participant, from = group, to = group, participant = sender", async () => {
    const msg = await fake.receive("default", { from: BOB, text: "hi all", groupId: "120363000000000001@g.us" });
    assert.match(msg.id, /^false_120363000000000001@g\.us_[0-9A-F]+_15551234567@c\.us$/);
    await fake.flushWebhooks();
    const [p] = rx.events("message");
    assert.equal(p?.from, "120363000000000001@g.us");
    assert.equal(p?.to, "120363000000000001@g.us");
    assert.equal(p?.participant, BOB);
  });

  test("inbound media: media {url, mimetype, filename}; the file needs X-Api-Key; empty caption → body null", async () => {
    const data = Buffer.from("JPEGBYTES");
    await fake.receive("default", { from: BOB, text: "", media: { mimetype: "image/jpeg", filename: "a.jpg", data } });
    await fake.flushWebhooks();
    const [p] = rx.events("message");
    assert.equal(p?.hasMedia, true);
    assert.equal(p?.body, null);
    assert.equal(p?.media.mimetype, "image/jpeg");
    assert.equal(p?.media.filename, "a.jpg");
    const path = new URL(p?.media.url).pathname;
    assert.match(path, /^\/api\/files\/default\/false_.+\.jpeg$/);
    assert.equal((await call("GET", path, undefined, null)).status, 401);
    const file = await call("GET", path);
    assert.equal(file.status, 200);
    assert.deepEqual(file.raw, data);
  });
});

describe("acks, reactions, edits, revokes", () => {
  test("acks go out exactly as told: repeated, and a late DEVICE after READ", async () => {
    const { body } = await sendText();
    for (const ack of [2, 3, 3, 2]) await fake.ack("default", body.id, ack);
    await fake.flushWebhooks();
    const acks = rx.events("message.ack");
    assert.deepEqual(acks.map((a) => [a.ack, a.ackName]), [[2, "DEVICE"], [3, "READ"], [3, "READ"], [2, "DEVICE"]]);
    assert.equal(acks[0]?.id, body.id);
    assert.equal(acks[0]?.from, BOB);
    assert.equal(acks[0]?.fromMe, true);
    await fake.ack("default", body.id, -1);
    await fake.flushWebhooks();
    assert.equal(rx.events("message.ack").at(-1)?.ackName, "ERROR");
  });

  test("group acks are message.ack.group, with our id appended to the message id", async () => {
    fake.groups.set("120363000000000002@g.us", { id: "120363000000000002@g.us", subject: "G", participants: [ME, BOB] });
    const { body } = await sendText("120363000000000002@g.us");
    await fake.ack("default", body.id, 3);
    await fake.flushWebhooks();
    assert.equal(rx.events("message.ack").length, 0);
    assert.equal(rx.events("message.ack.group")[0]?.id, `${body.id}_${ME}`);
  });

  test("inbound reaction and removal; our own reaction echoes as message.reaction fromMe", async () => {
    const { body } = await sendText();
    await fake.react("default", { from: BOB, messageId: body.id, text: "👍" });
    assert.deepEqual(fake.sent[0]?.reactions, [{ from: BOB, text: "👍" }]);
    await fake.react("default", { from: BOB, messageId: body.id, text: "" });
    assert.deepEqual(fake.sent[0]?.reactions, []);
    const mine = await call("PUT", "/api/reaction", { session: "default", messageId: body.id, reaction: "❤️" });
    assert.equal(mine.status, 200);
    await fake.flushWebhooks();
    const reactions = rx.events("message.reaction");
    assert.deepEqual(reactions.map((r) => [r.fromMe, r.from, r.reaction.text, r.reaction.messageId]), [
      [false, BOB, "👍", body.id],
      [false, BOB, "", body.id],
      [true, BOB, "❤️", body.id],
    ]);
    assert.equal((await call("PUT", "/api/reaction", { session: "default", messageId: "garbage", reaction: "x" })).status, 500);
  });

  test("edit and revoke our message; unknown message → 404; message.edited/revoked carry bare ids", async () => {
    const { body } = await sendText(BOB, "v1");
    const path = `/api/default/chats/${encodeURIComponent(BOB)}/messages/${encodeURIComponent(body.id)}`;
    assert.equal((await call("PUT", path, { text: "v2" })).status, 200);
    assert.equal(fake.sent[0]?.body, "v2");
    assert.equal(fake.sent[0]?.edited, true);
    assert.equal((await call("DELETE", path)).status, 200);
    assert.equal(fake.sent[0]?.revoked, true);
    assert.equal((await call("DELETE", path)).status, 404);
    assert.equal((await call("PUT", `/api/default/chats/${BOB}/messages/true_${BOB}_NOPE`, { text: "x" })).status, 404);
    await fake.flushWebhooks();
    const [edited] = rx.events("message.edited");
    assert.equal(edited?.editedMessageId, body.id.split("_")[2]);
    assert.equal(edited?.body, "v2");
    assert.notEqual(edited?.id, body.id);
    const [revoked] = rx.events("message.revoked");
    assert.equal(revoked?.revokedMessageId, body.id.split("_")[2]);
    assert.equal(revoked?.before, null);
    assert.equal(revoked?.after.fromMe, true);
  });

  test("editInbound / revokeInbound fire the events for a message from them", async () => {
    const msg = await fake.receive("default", { from: BOB, text: "typo" });
    await fake.editInbound("default", msg.id, "fixed");
    await fake.revokeInbound("default", msg.id);
    await fake.flushWebhooks();
    assert.equal(rx.events("message.edited")[0]?.fromMe, false);
    assert.equal(rx.events("message.edited")[0]?.body, "fixed");
    assert.equal(rx.events("message.revoked")[0]?.revokedMessageId, msg.id.split("_")[2]);
  });

  test("refuse.* makes reaction, edit, revoke and group calls answer 500 while set", async () => {
    const { body } = await sendText();
    fake.refuse = { reaction: true, edit: true, revoke: true, group: true };
    const path = `/api/default/chats/${BOB}/messages/${body.id}`;
    assert.equal((await call("PUT", "/api/reaction", { session: "default", messageId: body.id, reaction: "x" })).status, 500);
    assert.equal((await call("PUT", path, { text: "x" })).status, 500);
    assert.equal((await call("DELETE", path)).status, 500);
    assert.equal((await call("POST", "/api/default/groups", { name: "g", participants: [] })).status, 500);
    fake.refuse = {};
    assert.equal((await call("DELETE", path)).status, 200);
  });
});

describe("presence, numbers, history, groups", () => {
  test("presence.update only after subscribe; a message from a typing sender issues 'online'", async () => {
    await fake.presence("default", BOB, "typing");
    assert.equal((await call("POST", `/api/default/presence/${BOB}/subscribe`)).status, 201);
    await fake.presence("default", BOB, "typing");
    await fake.receive("default", { from: BOB, text: "done typing" });
    await fake.flushWebhooks();
    const presences = rx.events("presence.update");
    assert.deepEqual(presences.map((p) => [p.id, p.presences[0].participant, p.presences[0].lastKnownPresence, p.presences[0].lastSeen]), [
      [BOB, BOB, "typing", null],
      [BOB, BOB, "online", null],
    ]);
    assert.equal((await call("POST", "/api/startTyping", { session: "default", chatId: BOB })).status, 201);
  });

  test("check-exists: {numberExists, chatId}; a missing number has no chatId key", async () => {
    const yes = await call("GET", "/api/contacts/check-exists?session=default&phone=%2B15551234567");
    assert.deepEqual(yes.body, { numberExists: true, chatId: BOB });
    const no = await call("GET", "/api/contacts/check-exists?session=default&phone=15550000001");
    assert.deepEqual(no.body, { numberExists: false });
  });

  test("chat history: newest first, limit, revoked gone, downloadMedia=false keeps hasMedia but drops media", async () => {
    await fake.receive("default", { from: BOB, text: "pic", media: { mimetype: "image/png", filename: "p.png", data: Buffer.from("x") } });
    await sendText(BOB, "a");
    const { body } = await sendText(BOB, "b");
    await sendText(BOB, "c");
    await fake.revokeInbound("default", body.id);
    const res = await call("GET", `/api/default/chats/${BOB}/messages?limit=10&downloadMedia=false`);
    assert.deepEqual(res.body.map((m: Json) => m.body), ["c", "a", "pic"]);
    assert.equal(res.body[2].hasMedia, true);
    assert.equal(res.body[2].media, null);
    const two = await call("GET", `/api/default/chats/${BOB}/messages?limit=2`);
    assert.equal(two.body.length, 2);
  });

  test("groups: create (Baileys metadata), subject, participants; our changes come back as group.v2.* events", async () => {
    const created = await call("POST", "/api/default/groups", { name: "Team", participants: [{ id: BOB }] });
    assert.equal(created.status, 201);
    const gid: string = created.body.id;
    assert.match(gid, /^\d+@g\.us$/);
    assert.deepEqual(created.body.participants.map((p: Json) => p.id), ["15550009999@s.whatsapp.net", "15551234567@s.whatsapp.net"]);
    assert.equal((await call("PUT", `/api/default/groups/${gid}/subject`, { subject: "Renamed" })).status, 200);
    assert.equal(fake.groups.get(gid)?.subject, "Renamed");
    assert.equal((await call("POST", `/api/default/groups/${gid}/participants/add`, { participants: [{ id: "15557654321@c.us" }] })).status, 201);
    assert.equal((await call("POST", `/api/default/groups/${gid}/participants/remove`, { participants: [{ id: BOB }] })).status, 201);
    assert.deepEqual(fake.groups.get(gid)?.participants, [ME, "15557654321@c.us"]);
    assert.equal((await call("GET", `/api/default/groups/${gid}`)).body.subject, "Renamed");
    assert.equal((await call("GET", "/api/default/groups/1@g.us")).status, 500);
    await fake.groupEvent("default", gid, { kind: "subject", subject: "Theirs", by: BOB });
    await fake.groupEvent("default", gid, { kind: "add", participant: BOB, by: "15557654321@c.us" });
    await fake.flushWebhooks();
    assert.deepEqual(rx.events("group.v2.update").map((e) => e.group.subject), ["Renamed", "Theirs"]);
    const parts = rx.events("group.v2.participants");
    assert.deepEqual(parts.map((e) => [e.type, e.participants[0].id]), [
      ["join", "15557654321@c.us"],
      ["leave", BOB],
      ["join", BOB],
    ]);
    assert.equal(rx.events("group.v2.join")[0]?.group.id, gid);
  });
});
