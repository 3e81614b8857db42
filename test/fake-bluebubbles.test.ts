// The BlueBubbles fake (fakes/bluebubbles/server.ts) against its contract, shared/spec/backends.md §1:
// query-string auth, the {status,message,data} / {status,message,error:{type,message}} envelopes,
// sends and their quirks (duplicate new-message, tempGuid echo, hangs that did send, failures with
// data.error), reads, chats and groups, and {type,data} webhooks captured by a local receiver.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, it } from "node:test";
import { FakeBlueBubbles } from "../fakes/bluebubbles/server.js";

// biome-ignore lint/suspicious/noExplicitAny: wire payloads are checked field by field
type Json = Record<string, any>;
interface Hook { type: string; data: Json; headers: http.IncomingHttpHeaders }

const BOB = "+15555550123";
const SMS_ONLY = "+15555550001";
const PA_GATE = "Please make sure you have completed the setup for the Private API, and your helper is connected!";

describe("FakeBlueBubbles", () => {
  let fake: FakeBlueBubbles;
  let receiver: http.Server;
  let hookUrl: string;
  let hooks: Hook[];
  let t: number;

  const api = async (method: string, path: string, body?: unknown, auth = `password=${fake.password}`) => {
    const sep = path.includes("?") ? "&" : "?";
    const res = await fetch(`${fake.url}/api/v1${path}${auth ? sep + auth : ""}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Json };
  };
  const register = (events = ["*"]) => api("POST", "/webhook", { url: hookUrl, events });
  const received = async (type?: string) => {
    await fake.flushWebhooks();
    return hooks.filter((h) => type === undefined || h.type === type);
  };
  const sendText = (text: string, extra: Json = {}) =>
    api("POST", "/message/text", { chatGuid: `iMessage;-;${BOB}`, tempGuid: `tmp-${text}`, message: text, ...extra });
  const createGroup = async () => {
    const res = await api("POST", "/chat/new", { addresses: [BOB, "+15555550124"], message: "Welcome", method: "private-api", tempGuid: "tmp-group" });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    return res.json.data.guid as string;
  };

  beforeEach(async () => {
    t = 1_750_000_000_000;
    fake = new FakeBlueBubbles({ now: () => t });
    await fake.start();
    hooks = [];
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const { type, data } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        hooks.push({ type, data, headers: req.headers });
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/bb?secret=s3cret`;
  });

  afterEach(async () => {
    await fake.stop();
    await new Promise<void>((resolve) => { receiver.close(() => resolve()); receiver.closeAllConnections(); });
  });

  describe("auth and envelopes", () => {
    it("401 without or with a wrong password; ?password, ?guid and ?token are accepted after trimming", async () => {
      const missing = await api("GET", "/ping", undefined, "");
      assert.equal(missing.status, 401);
      assert.deepEqual(missing.json, {
        status: 401, message: "You are not authorized to access this resource",
        error: { type: "Authentication Error", message: "Missing server password!" },
      });
      const wrong = await api("GET", "/ping", undefined, "password=nope");
      assert.equal(wrong.status, 401);
      assert.equal(wrong.json.error.type, "Authentication Error");
      assert.equal((await api("GET", "/ping", undefined, `guid=${fake.password}`)).status, 200);
      assert.equal((await api("GET", "/ping", undefined, `token=%20${fake.password}%20`)).status, 200);
      // guid wins over password, as in authMiddleware's `guid ?? password ?? token`.
      assert.equal((await api("GET", "/ping", undefined, `guid=nope&password=${fake.password}`)).status, 401);
      assert.equal(fake.requests.length, 2, "only authenticated calls are recorded");
    });

    it("ping and server/info answer the success envelope; unknown routes the NotFound envelope", async () => {
      assert.deepEqual((await api("GET", "/ping")).json, { status: 200, message: "Ping received!", data: "pong" });
      fake.helperConnected = false;
      const info = await api("GET", "/server/info");
      assert.equal(info.json.data.private_api, true);
      assert.equal(info.json.data.helper_connected, false);
      assert.equal(info.json.data.server_version, "1.9.9");
      assert.deepEqual(info.json.data.local_ipv4s, ["127.0.0.1"]);
      const unknown = await api("GET", "/nope");
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.error.type, "Database Error");
    });

    it("offline resets every connection without an answer", async () => {
      fake.offline = true;
      await assert.rejects(api("GET", "/ping"));
      fake.offline = false;
      assert.equal((await api("GET", "/ping")).status, 200);
    });

    it("Private API routes answer 500 iMessage Error while the helper is disconnected", async () => {
      fake.helperConnected = false;
      const res = await api("GET", `/handle/availability/imessage?address=${encodeURIComponent(BOB)}`);
      assert.equal(res.status, 500);
      assert.deepEqual(res.json, { status: 500, message: PA_GATE, error: { type: "iMessage Error", message: "iMessage Private API Helper is not connected!" } });
      fake.helperConnected = true;
      assert.deepEqual((await api("GET", `/handle/availability/imessage?address=${encodeURIComponent(BOB)}`)).json.data, { available: true });
      assert.deepEqual((await api("GET", `/handle/availability/imessage?address=${encodeURIComponent(SMS_ONLY)}`)).json.data, { available: false });
    });
  });

  describe("webhooks", () => {
    it("registers only known events, keeps the first registration of a URL, deletes by id", async () => {
      const bad = await api("POST", "/webhook", { url: hookUrl, events: ["new-message", "bogus"] });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.type, "Validation Error");
      const created = await register(["new-message"]);
      assert.deepEqual(created.json.data, { id: 1, url: hookUrl, events: ["new-message"] });
      const again = await register(["*"]);
      assert.deepEqual(again.json.data.events, ["new-message"], "an existing URL is returned unchanged");
      assert.equal((await api("GET", "/webhook")).json.data.length, 1);
      assert.equal((await api("DELETE", "/webhook/1")).status, 200);
      assert.equal((await api("DELETE", "/webhook/1")).status, 404);
      assert.deepEqual(fake.webhooks, []);
    });

    it("POSTs {type,data} with no signature header; filtered by event; dropWebhooks sends nothing", async () => {
      await register(["updated-message"]);
      const m = await fake.receive({ from: BOB, text: "hi" });
      assert.deepEqual(await received(), []);
      fake.dropWebhooks = true;
      await fake.read(m.guid);
      assert.deepEqual(await received(), []);
      fake.webhooks = fake.webhooks.map((w) => ({ ...w, events: ["*"] }));
      fake.dropWebhooks = false;
      await fake.receive({ from: BOB, text: "again" });
      const [hook] = await received("new-message");
      assert.equal(hook?.headers["content-type"], "application/json");
      assert.equal(Object.keys(hook?.headers ?? {}).some((h) => /signature|^webhook-|^x-/i.test(h)), false);
    });
  });

  describe("sending text", () => {
    beforeEach(() => register());

    it("validateText: apple-script needs tempGuid and message; effectId forces the Private API", async () => {
      const noTemp = await api("POST", "/message/text", { chatGuid: `iMessage;-;${BOB}`, message: "x" });
      assert.equal(noTemp.status, 400);
      assert.match(noTemp.json.error.message, /tempGuid/);
      assert.equal((await api("POST", "/message/text", { chatGuid: `iMessage;-;${BOB}`, tempGuid: "a", message: "" })).status, 400);
      assert.equal((await api("POST", "/message/text", { tempGuid: "a", message: "x" })).status, 400);
      fake.helperConnected = false;
      const effect = await sendText("boom", { effectId: "com.apple.MobileSMS.expressivesend.impact" });
      assert.equal(effect.status, 500);
      assert.equal(effect.json.error.type, "iMessage Error");
      assert.equal((await sendText("plain")).status, 200, "a plain AppleScript send needs no helper");
    });

    it("answers Message sent! with tempGuid, stores the row, and fires new-message twice (tempGuid first)", async () => {
      const res = await sendText("hello");
      assert.equal(res.status, 200);
      assert.equal(res.json.message, "Message sent!");
      const data = res.json.data;
      assert.match(data.guid, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
      assert.equal(data.tempGuid, "tmp-hello");
      assert.equal(data.isFromMe, true);
      assert.equal(data.error, 0);
      assert.equal(data.dateCreated, t);
      assert.equal(data.handle.address, BOB);
      assert.equal(data.chats[0].guid, `iMessage;-;${BOB}`);
      assert.deepEqual(fake.sent.map((m) => m.guid), [data.guid]);
      assert.equal(fake.messages[0]?.tempGuid, "tmp-hello");
      const news = await received("new-message");
      assert.equal(news.length, 2);
      assert.equal(news[0]?.data.tempGuid, "tmp-hello");
      assert.equal("tempGuid" in (news[1]?.data ?? {}), false);
      assert.equal(news[1]?.data.guid, data.guid);
      assert.deepEqual(Object.keys(news[0]?.data.chats[0]), ["originalROWID", "guid", "style", "chatIdentifier", "isArchived", "displayName"]);
      assert.equal("isAudioMessage" in (news[0]?.data ?? {}), false, "webhook payloads are the notification form");
      fake.duplicateNewMessage = false;
      await sendText("once");
      assert.equal((await received("new-message")).length, 3);
    });

    it("stores 1:1 chats under the chatGuidPrefix form (macOS 26 any;-;) and looks them up by any form", async () => {
      fake.chatGuidPrefix = "any";
      const res = await sendText("tahoe");
      assert.equal(res.json.data.chats[0].guid, `any;-;${BOB}`);
      assert.equal(fake.messages[0]?.chatGuid, `any;-;${BOB}`);
      const chat = await api("GET", `/chat/${encodeURIComponent(`iMessage;-;${BOB}`)}?with=participants`);
      assert.equal(chat.json.data.guid, `any;-;${BOB}`);
      assert.deepEqual(chat.json.data.participants.map((p: Json) => p.address), [BOB]);
      const sms = await api("POST", "/message/text", { chatGuid: `SMS;-;${SMS_ONLY}`, tempGuid: "s", message: "txt" });
      assert.equal(sms.json.data.handle.service, "SMS");
      assert.equal(fake.messages[1]?.chatGuid, `SMS;-;${SMS_ONLY}`);
    });

    it("an unknown group is 404 Chat does not exist", async () => {
      const res = await api("POST", "/message/text", { chatGuid: "iMessage;+;chat000", tempGuid: "g", message: "x" });
      assert.equal(res.status, 404);
      assert.equal(res.json.error.message, "Chat does not exist!");
    });

    it("hangNextSends: blocks, answers 500 although sent, and rejects the same tempGuid while in flight", async () => {
      fake.hangNextSends(1, { ms: 50, sent: true });
      const started = Date.now();
      const hanging = sendText("slow");
      while (fake.sent.length === 0) await new Promise((resolve) => setTimeout(resolve, 1)); // the row exists once it hangs
      const dup = await sendText("slow");
      assert.equal(dup.status, 400);
      assert.match(dup.json.error.message, /already queued/);
      const res = await hanging;
      assert.ok(Date.now() - started >= 45);
      assert.equal(res.status, 500);
      assert.equal(res.json.message, "Message failed to send!");
      assert.equal(res.json.error.type, "iMessage Error");
      assert.equal(fake.sent.length, 1);
      const news = await received("new-message");
      assert.ok(news.length >= 1);
      assert.ok(news.every((h) => !("tempGuid" in h.data)), "the send promise never matched, so no tempGuid");
      assert.equal((await sendText("slow")).status, 200, "the tempGuid is free again afterwards");
    });

    it("hangNextSends with sent:false sends nothing", async () => {
      fake.hangNextSends(1, { ms: 1, sent: false });
      assert.equal((await sendText("lost")).status, 500);
      assert.deepEqual(fake.sent, []);
      assert.deepEqual(await received(), []);
    });

    it("failNextSends: 500 with data.error = code, message-send-error fired, nothing in sent", async () => {
      fake.failNextSends(1, 22);
      const res = await sendText("fail");
      assert.equal(res.status, 500);
      assert.equal(res.json.error.type, "iMessage Error");
      assert.equal(res.json.data.error, 22);
      assert.equal(res.json.data.tempGuid, "tmp-fail");
      assert.deepEqual(fake.sent, []);
      const [err] = await received("message-send-error");
      assert.equal(err?.data.error, 22);
      assert.equal(err?.data.tempGuid, "tmp-fail");
      assert.equal((await sendText("next")).status, 200);
    });
  });

  describe("status updates, reactions, edits", () => {
    beforeEach(() => register());

    it("deliver and read fire updated-message WITHOUT chats; a group message is never read", async () => {
      const sent = (await sendText("status")).json.data;
      t += 1000;
      await fake.deliver(sent.guid);
      t += 1000;
      await fake.read(sent.guid);
      const updates = await received("updated-message");
      assert.equal(updates.length, 2);
      assert.equal("chats" in (updates[0]?.data ?? {}), false);
      assert.equal(updates[0]?.data.dateDelivered, t - 1000);
      assert.equal(updates[1]?.data.dateRead, t);
      const group = await createGroup();
      const g = (await api("POST", "/message/text", { chatGuid: group, tempGuid: "gm", message: "all" })).json.data;
      await fake.read(g.guid);
      assert.equal(fake.messages.find((m) => m.guid === g.guid)?.dateRead, null);
    });

    it("react: PA, six names (or -name), target must exist; creates a fromMe tapback row", async () => {
      const target = (await sendText("nice")).json.data;
      const bad = await api("POST", "/message/react", { chatGuid: `iMessage;-;${BOB}`, selectedMessageGuid: target.guid, reaction: "wow" });
      assert.equal(bad.status, 400);
      const missing = await api("POST", "/message/react", { chatGuid: `iMessage;-;${BOB}`, selectedMessageGuid: "NOPE", reaction: "love" });
      assert.equal(missing.status, 400);
      assert.equal(missing.json.error.message, "Selected message does not exist!");
      const res = await api("POST", "/message/react", { chatGuid: `iMessage;-;${BOB}`, selectedMessageGuid: target.guid, reaction: "-love" });
      assert.equal(res.status, 200);
      assert.equal(res.json.data.associatedMessageGuid, `p:0/${target.guid}`);
      assert.equal(res.json.data.associatedMessageType, "-love");
      assert.equal(res.json.data.isFromMe, true);
      fake.refuse.react = true;
      assert.equal((await api("POST", "/message/react", { chatGuid: `iMessage;-;${BOB}`, selectedMessageGuid: target.guid, reaction: "like" })).status, 500);
    });

    it("inbound tapback, edit and unsend from a contact", async () => {
      const sent = (await sendText("question?")).json.data;
      const tap = await fake.tapback(BOB, sent.guid, "laugh");
      assert.equal(tap.associatedMessageGuid, `p:0/${sent.guid}`);
      const inbound = await fake.receive({ from: BOB, text: "typo" });
      await fake.editInbound(inbound.guid, "fixed");
      await fake.unsendInbound(inbound.guid);
      const news = await received("new-message");
      assert.ok(news.some((h) => h.data.associatedMessageType === "laugh" && h.data.handle.address === BOB));
      const updates = await received("updated-message");
      assert.equal(updates[0]?.data.text, "fixed");
      assert.equal(typeof updates[0]?.data.dateEdited, "number");
      assert.equal(typeof updates[1]?.data.dateRetracted, "number");
    });

    it("edit and unsend own messages through the API", async () => {
      const sent = (await sendText("draft")).json.data;
      t += 5;
      const edited = await api("POST", `/message/${sent.guid}/edit`, { editedMessage: "final", backwardsCompatibilityMessage: "Edited to final", partIndex: 0 });
      assert.equal(edited.status, 200);
      assert.equal(edited.json.data.text, "final");
      assert.equal(edited.json.data.dateEdited, t);
      const unsent = await api("POST", `/message/${sent.guid}/unsend`, { partIndex: 0 });
      assert.equal(unsent.json.data.dateRetracted, t);
      assert.equal((await received("updated-message")).length, 2);
      fake.refuse.edit = true;
      assert.equal((await api("POST", `/message/${sent.guid}/edit`, { editedMessage: "x", backwardsCompatibilityMessage: "x" })).status, 500);
    });
  });

  describe("reading messages", () => {
    it("GET /message/:guid and 404; query filters on dateCreated, supports where guid, with chats, metadata", async () => {
      const first = (await sendText("one")).json.data;
      t += 10;
      const second = (await sendText("two")).json.data;
      t += 10;
      await fake.deliver(first.guid);
      assert.equal((await api("GET", `/message/${first.guid}`)).json.data.dateDelivered, t);
      assert.equal((await api("GET", "/message/NOPE")).status, 404);

      const after = await api("POST", "/message/query", { after: second.dateCreated, sort: "ASC", limit: 10, with: ["chats"] });
      assert.deepEqual(after.json.data.map((m: Json) => m.guid), [second.guid], "a later delivery does not make a row match");
      assert.deepEqual(after.json.metadata, { offset: 0, limit: 10, total: 1, count: 1 });
      assert.equal(after.json.data[0].chats[0].guid, `iMessage;-;${BOB}`);

      const byGuid = await api("POST", "/message/query", { where: [{ statement: "message.guid = :guid", args: { guid: first.guid } }], limit: 1 });
      assert.deepEqual(byGuid.json.data.map((m: Json) => m.guid), [first.guid]);
      assert.deepEqual(byGuid.json.data[0].chats, [], "chats only when asked for");

      const desc = await api("POST", "/message/query", { chatGuid: `any;-;${BOB}`, offset: 1, limit: 1 });
      assert.deepEqual(desc.json.data.map((m: Json) => m.guid), [first.guid], "DESC by default; 1:1 GUID forms are one chat");
      assert.equal((await api("POST", "/message/query", { limit: 1001 })).status, 400);
    });

    it("attachments: multipart send, isAudioMessage, download of the bytes", async () => {
      await register();
      const form = new FormData();
      form.set("chatGuid", `iMessage;-;${BOB}`);
      form.set("tempGuid", "tmp-voice");
      form.set("name", "memo.caf");
      form.set("isAudioMessage", "true");
      form.set("attachment", new Blob([Buffer.from("caf-bytes\r\n--not-a-boundary")], { type: "audio/x-caf" }), "memo.caf");
      const res = await fetch(`${fake.url}/api/v1/message/attachment?password=${fake.password}`, { method: "POST", body: form });
      const json = (await res.json()) as Json;
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.equal(json.message, "Attachment sent!");
      assert.equal(json.data.isAudioMessage, true);
      const row = fake.messages[0];
      assert.equal(row?.isAudioMessage, true);
      assert.equal(row?.attachments[0]?.bytes.toString(), "caf-bytes\r\n--not-a-boundary");
      assert.equal(json.data.attachments[0].mimeType, "audio/x-caf");
      const [hook] = await received("new-message");
      assert.equal(hook?.data.tempGuid, "tmp-voice");
      assert.equal(hook?.data.attachments[0].transferName, "memo.caf");

      const download = await fetch(`${fake.url}/api/v1/attachment/${row?.attachments[0]?.guid}/download?password=${fake.password}`);
      assert.equal(download.headers.get("content-type"), "audio/x-caf");
      assert.equal(Buffer.from(await download.arrayBuffer()).toString(), "caf-bytes\r\n--not-a-boundary");

      const inbound = await fake.receive({ from: BOB, text: "", attachments: [{ name: "pic.jpg", mimeType: "image/jpeg", bytes: Buffer.from("jpg") }] });
      const got = await api("GET", `/message/${inbound.guid}?with=attachments`);
      assert.equal(got.json.data.attachments[0].uti, "public.jpeg");
      assert.deepEqual((await api("GET", `/message/${inbound.guid}`)).json.data.attachments, [], "attachments only when asked for");
    });
  });

  describe("chats and groups", () => {
    beforeEach(() => register());

    it("chat/new: a group needs the Private API; creates iMessage;+;chat… with participants and the first message", async () => {
      const apple = await api("POST", "/chat/new", { addresses: [BOB, "+15555550124"], message: "hi", tempGuid: "x" });
      assert.equal(apple.status, 500);
      assert.equal(apple.json.error.message, "Cannot create group chats on macOS Big Sur or newer!");
      fake.helperConnected = false;
      assert.equal((await api("POST", "/chat/new", { addresses: [BOB, "+15555550124"], message: "hi", method: "private-api" })).status, 500);
      fake.helperConnected = true;
      const res = await api("POST", "/chat/new", { addresses: [BOB, "+15555550124"], message: "Welcome", method: "private-api", tempGuid: "tmp-g" });
      assert.equal(res.status, 200);
      const chat = res.json.data;
      assert.match(chat.guid, /^iMessage;\+;chat\d+$/);
      assert.equal(chat.style, 43);
      assert.deepEqual(chat.participants.map((p: Json) => p.address), [BOB, "+15555550124"]);
      assert.equal(chat.messages[0].tempGuid, "tmp-g");
      assert.equal(chat.messages[0].text, "Welcome");
      const [hook] = await received("new-message");
      assert.equal(hook?.data.chats[0].guid, chat.guid);
      assert.equal(hook?.data.chats[0].participants.length, 2, "group chats carry participants in new-message");
      const dm = await api("POST", "/chat/new", { addresses: [BOB], message: "solo", tempGuid: "tmp-dm" });
      assert.equal(dm.json.data.guid, `iMessage;-;${BOB}`);
      assert.equal(dm.json.data.style, 45);
    });

    it("rename, add and remove through the API fire group events and change GET /chat", async () => {
      const group = await createGroup();
      const path = `/chat/${encodeURIComponent(group)}`;
      const renamed = await api("PUT", path, { displayName: "Team" });
      assert.equal(renamed.json.data.displayName, "Team");
      const [nameHook] = await received("group-name-change");
      assert.equal(nameHook?.data.itemType, 2);
      assert.equal(nameHook?.data.groupTitle, "Team");
      assert.equal(nameHook?.data.isFromMe, true);
      assert.equal((await api("POST", `${path}/participant/add`, { address: "+15555550125" })).status, 200);
      assert.equal((await api("POST", `${path}/participant/remove`, { address: BOB })).status, 200);
      const [added] = await received("participant-added");
      assert.equal(added?.data.itemType, 1);
      assert.equal(added?.data.groupActionType, 0);
      assert.equal(typeof added?.data.otherHandle, "number");
      const got = await api("GET", `${path}?with=participants`);
      assert.deepEqual(got.json.data.participants.map((p: Json) => p.address), ["+15555550124", "+15555550125"]);
      const dm = await api("PUT", `/chat/${encodeURIComponent(`iMessage;-;${BOB}`)}`, { displayName: "x" });
      assert.equal(dm.status, 404, "no such 1:1 chat yet");
      await sendText("make the dm");
      const rename1to1 = await api("PUT", `/chat/${encodeURIComponent(`iMessage;-;${BOB}`)}`, { displayName: "x" });
      assert.equal(rename1to1.status, 500);
      assert.equal(rename1to1.json.message, "Cannot rename a non-group chat!");
      fake.helperConnected = false;
      assert.equal((await api("PUT", path, { displayName: "Other" })).json.message, PA_GATE);
    });

    it("groupEvent: a member's rename, add, remove and leave; inbound group messages", async () => {
      const group = await createGroup();
      await fake.groupEvent(group, { kind: "rename", title: "Club", by: BOB });
      await fake.groupEvent(group, { kind: "added", handle: "+15555550126", by: BOB });
      await fake.groupEvent(group, { kind: "left", handle: "+15555550124" });
      const left = (await received("participant-left"))[0];
      assert.equal(left?.data.itemType, 3);
      assert.equal(left?.data.handle.address, "+15555550124");
      assert.equal((await received("group-name-change"))[0]?.data.handle.address, BOB);
      assert.deepEqual(fake.chats.get(group)?.participants, [BOB, "+15555550126"]);
      const inbound = await fake.receive({ from: BOB, text: "hey all", chatGuid: group });
      assert.equal(inbound.chatGuid, group);
      assert.equal((await api("GET", `/chat/${encodeURIComponent(group)}`)).json.data.displayName, "Club");
    });

    it("read, typing and inbound typing-indicator (DMs only)", async () => {
      await sendText("dm");
      const dmPath = `/chat/${encodeURIComponent(`iMessage;-;${BOB}`)}`;
      assert.equal((await api("POST", `${dmPath}/read`)).json.message, "Successfully marked chat as read!");
      assert.equal((await api("POST", `${dmPath}/typing`)).status, 200);
      assert.equal((await api("DELETE", `${dmPath}/typing`)).status, 200);
      fake.refuse.typing = true;
      assert.equal((await api("POST", `${dmPath}/typing`)).status, 500);
      assert.equal((await api("POST", "/chat/iMessage%3B%2B%3Bchat1/read")).status, 404);
      await fake.typing(`iMessage;-;${BOB}`, true);
      await fake.typing("iMessage;+;chat1", true);
      assert.deepEqual((await received("typing-indicator")).map((h) => h.data), [{ display: true, guid: `iMessage;-;${BOB}` }]);
      assert.deepEqual((await received("chat-read-status-changed"))[0]?.data, { chatGuid: `iMessage;-;${BOB}`, read: true });
    });

    it("receive picks SMS for SMS-only contacts", async () => {
      const m = await fake.receive({ from: SMS_ONLY, text: "sms" });
      assert.equal(m.chatGuid, `SMS;-;${SMS_ONLY}`);
      const [hook] = await received("new-message");
      assert.equal(hook?.data.handle.service, "SMS");
      assert.equal(hook?.data.isFromMe, false);
    });
  });

  describe("lifecycle and manual control", () => {
    it("stop() closes hanging requests", async () => {
      fake.hangNextSends(1, { ms: 60_000, sent: false });
      const hanging = sendText("forever").catch((e: unknown) => e);
      while (fake.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      await fake.stop();
      assert.ok((await hanging) instanceof Error);
    });

    it("POST /fake/receive and /fake/deliver/:guid need the password", async () => {
      await register();
      const post = (path: string, body?: unknown, q = `?password=${fake.password}`) =>
        fetch(`${fake.url}${path}${q}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body ?? {}) });
      assert.equal((await post("/fake/receive", { from: BOB, text: "x" }, "")).status, 401);
      const res = await post("/fake/receive", { from: BOB, text: "from curl" });
      assert.equal(res.status, 200);
      const sent = (await sendText("to deliver")).json.data;
      assert.equal((await post(`/fake/deliver/${sent.guid}`)).status, 200);
      assert.equal((await post(`/fake/read/${sent.guid}`)).status, 200);
      assert.equal((await post("/fake/read/NOPE")).status, 404);
      assert.equal((await received("updated-message")).length, 2);
      assert.equal(fake.messages[0]?.text, "from curl");
    });
  });
});
