// WAHA's chatting API: sends, reactions, edits, revokes, history, media files, seen/typing/presence and check-exists.
import type { Engine } from "./engine.js";
import { HttpError, nest } from "./errors.js";
import { fail } from "./http.js";
import { need, obj, str } from "./json.js";
import { applyEdit, applyReaction, applyRevoke, reactionPayload } from "./scripted.js";
import type { Ctx, FakeSession, FakeWaMessage, Reply } from "./types.js";
import { bareId, digits, hex, isGroup, parseId, toChatId, toJid } from "./wa-format.js";

function sessionOf(e: Engine, c: Ctx): FakeSession {
  return e.working(str(c.body.session) ?? c.query.get("session") ?? "default");
}

/** Calls whose effect is only the request itself (sendSeen, typing, presence): session must be WORKING; 201, empty body. */
export function chatting(e: Engine, c: Ctx, session?: string): Reply {
  if (session) e.working(session);
  else sessionOf(e, c);
  return {};
}

export function subscribe(e: Engine, c: Ctx): Reply {
  const [session = "", chatId = ""] = c.params;
  e.working(session);
  e.subscribed.add(`${session}|${toChatId(chatId)}`);
  return {};
}

/** NOWEB checkNumberStatus: `{numberExists:true, chatId}` or just `{numberExists:false}` (no chatId key at all). */
export function checkExists(e: Engine, c: Ctx): Reply {
  sessionOf(e, c);
  const phone = digits(c.query.get("phone") ?? "");
  return { status: 200, body: e.fake.existing(phone) ? { numberExists: true, chatId: `${phone}@c.us` } : { numberExists: false } };
}

export async function send(e: Engine, c: Ctx, kind: FakeWaMessage["kind"]): Promise<Reply> {
  // NestJS validates the body (400) before the controller asks for a WORKING session (422).
  const chatId = toChatId(need(c.body, "chatId"));
  const text = kind === "text" ? need(c.body, "text") : (str(c.body.caption) ?? "");
  const s = sessionOf(e, c);
  // backends.md §2.1: Core throws AvailableInPlusVersion (an UnprocessableEntityException → NestJS 422 body).
  if (kind !== "text" && !e.fake.plus) throw nest(422, "Unprocessable Entity", "The feature is available only in Plus version for 'NOWEB' engine. Check this out: https://waha.devlike.pro/");
  if (isGroup(chatId) && !e.fake.groups.has(chatId)) throw fail(e, c, "item-not-found");
  const media = kind === "text" ? null : await loadFile(e, c, kind);
  // backends.md §0.5 / §4.5 (the same failure mode on WhatsApp): the call hangs, then errors, and the message may be out anyway.
  const hang = e.hangs.shift();
  const msg = hang && !hang.sent ? null : sendOut(e, s, chatId, text, kind, media, str(c.body.reply_to) ?? null);
  if (hang) {
    await e.sleep(hang.ms);
    throw fail(e, c, "Timed Out", hang.status ?? 500);
  }
  if (!msg) throw fail(e, c, "unreachable");
  return { body: e.fake.rawSendResponses ? e.baileys(msg) : e.wire(msg) };
}

/**
 * A send goes out even to a number that is not on WhatsApp (no error; it just never gets acks, backends.md §4.9).
 * It is recorded in `sent` (device history) and echoed as `message.any` (fromMe:true), as NOWEB does for own messages.
 */
function sendOut(e: Engine, s: FakeSession, chatId: string, body: string, kind: FakeWaMessage["kind"], media: FakeWaMessage["media"], replyTo: string | null): FakeWaMessage {
  const me = s.me?.id ?? "me";
  const msg = e.store(s.name, "api", { id: `true_${chatId}_3EB0${hex(18)}`, chatId, from: me, to: chatId, fromMe: true, body, ack: 1, media, kind, replyTo, participant: null });
  e.fake.sent.push(msg);
  e.hooks.emit(s.name, "message.any", e.wire(msg));
  return msg;
}

/** file: {mimetype, filename?, url | data(base64)}; a url is fetched like WAHA does; a failed fetch is an engine error. */
async function loadFile(e: Engine, c: Ctx, kind: FakeWaMessage["kind"]): Promise<NonNullable<FakeWaMessage["media"]>> {
  const file = obj(c.body.file);
  const mimetype = str(file.mimetype) ?? (kind === "voice" ? "audio/ogg; codecs=opus" : "application/octet-stream");
  const filename = str(file.filename) ?? null;
  const data = str(file.data);
  if (data) return { mimetype, filename, data: Buffer.from(data, "base64") };
  const url = str(file.url);
  if (!url) throw nest(422, "Unprocessable Entity", 'Either "file.url" or "file.data" must be specified.');
  try {
    const res = await fetch(url, { signal: e.abort.signal });
    if (!res.ok) throw new Error(`Request failed with status code ${res.status}`);
    return { mimetype, filename, data: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    throw fail(e, c, err instanceof Error ? err.message : String(err));
  }
}

/** PUT /api/reaction {messageId, reaction}: "" removes. An unparsable id makes NOWEB's parseMessageId throw (500). */
export function reaction(e: Engine, c: Ctx): Reply {
  const s = sessionOf(e, c);
  const messageId = need(c.body, "messageId");
  const text = str(c.body.reaction) ?? "";
  const parsed = parseId(messageId);
  if (e.fake.refuse.reaction) throw fail(e, c, "Internal Server Error: reaction refused");
  if (!parsed) throw fail(e, c, "Message id be in format false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA[_participant]");
  applyReaction(e, messageId, s.me?.id ?? "me", text);
  const id = `true_${parsed.chatId}_3EB0${hex(18)}`;
  e.hooks.emit(s.name, "message.reaction", reactionPayload(e, id, parsed.chatId, true, undefined, messageId, text));
  return { body: { key: { remoteJid: toJid(parsed.chatId), fromMe: true, id: bareId(id) }, messageTimestamp: e.seconds(), status: "PENDING" } };
}

/** Edit and revoke of a message this device does not have answer 404 (a fake's choice: real NOWEB sends blindly). */
function target(e: Engine, c: Ctx): { s: FakeSession; m: FakeWaMessage } {
  const [session = "", , messageId = ""] = c.params;
  const s = e.working(session);
  const m = e.find(messageId);
  if (!m || m.revoked) throw nest(404, "Not Found", `Message '${messageId}' not found`);
  return { s, m };
}

export function edit(e: Engine, c: Ctx): Reply {
  const { s, m } = target(e, c);
  const text = need(c.body, "text");
  if (e.fake.refuse.edit) throw fail(e, c, "Internal Server Error: edit refused");
  return { body: e.baileys(applyEdit(e, s.name, m, text)) };
}

export function revoke(e: Engine, c: Ctx): Reply {
  const { s, m } = target(e, c);
  if (e.fake.refuse.revoke) throw fail(e, c, "Internal Server Error: revoke refused");
  return { body: e.baileys(applyRevoke(e, s.name, m)) };
}

/**
 * GET /api/{session}/chats/{chatId}/messages?limit=&downloadMedia=: newest first, revoked messages gone, edits applied.
 * WAHA's defaults: limit 10 (the DTO default), downloadMedia true; with downloadMedia=false `media` is null but
 * `hasMedia` stays true (NOWEB toWAMessage).
 */
export function history(e: Engine, c: Ctx): Reply {
  const [session = "", chatId = ""] = c.params;
  e.working(session);
  const limit = Number(c.query.get("limit") ?? 10) || 10;
  const download = c.query.get("downloadMedia") !== "false";
  const chat = toChatId(chatId);
  const list = e.fake.messages.filter((m) => m.chatId === chat && !m.revoked && e.origin.get(m.id)?.session === session);
  const newestFirst = list.map((m, i) => ({ m, i })).sort((a, b) => b.m.timestamp - a.m.timestamp || b.i - a.i);
  return { body: newestFirst.slice(0, limit).map(({ m }) => e.wire(m, session, download)) };
}

/** GET /api/files/{session}/{messageId}.{ext}: served like WAHA's static files (X-Api-Key needed, ENOENT body on 404). */
export function file(e: Engine, c: Ctx): Reply {
  const name = c.params[1] ?? "";
  const m = e.find(name.slice(0, name.lastIndexOf(".")));
  if (!m?.media) throw new HttpError(404, { error: { code: 404, key: "FILE_NOT_FOUND", message: "File not found", details: "File not found or no longer available" } });
  return { status: 200, bytes: { type: m.media.mimetype, data: m.media.data } };
}
