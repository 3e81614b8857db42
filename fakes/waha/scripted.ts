// The phone's side and the session lifecycle, driven from tests (and main.ts's `/fake/*` routes) and echoed as webhooks.
// FakeWaha's scripted methods call the exported functions; the routes reuse the shared steps (changeStatus, applyEdit, …).
import type { Engine } from "./engine.js";
import type { FakeGroup, FakeSession, FakeWaMessage, GroupChange, HangOpts, InboundOpts } from "./types.js";
import { ACK_NAMES, bareId, hex, isGroup, kindOf, parseId, toChatId, toJid } from "./wa-format.js";

// ---------------------------------------------------------------- sessions

export function addSession(e: Engine, name: string, opts: { status?: string; me?: string } = {}): void {
  const me = { id: toChatId(opts.me ?? "15550009999@c.us"), pushName: "Fake WAHA" };
  e.fake.sessions.set(name, { name, status: opts.status ?? "WORKING", me, config: { webhooks: [] } });
  e.statuses.set(name, [{ status: opts.status ?? "WORKING", timestamp: e.now() }]);
}

export function setStatus(e: Engine, name: string, status: string): void {
  const s = e.fake.sessions.get(name);
  if (!s) throw new Error(`no session ${name}`);
  changeStatus(e, s, status);
}

/** `session.status` → `{name, status, statuses}`; recent WAHA adds the status history (backends.md §2.1). */
export function changeStatus(e: Engine, s: FakeSession, status: string): void {
  s.status = status;
  const history = e.statuses.get(s.name) ?? [];
  history.push({ status, timestamp: e.now() });
  e.statuses.set(s.name, history.slice(-5));
  e.hooks.emit(s.name, "session.status", { name: s.name, status, statuses: e.statuses.get(s.name) });
}

/** Start runs STARTING → WORKING when the device is linked (`me` set), else SCAN_QR_CODE. */
export function boot(e: Engine, s: FakeSession): void {
  changeStatus(e, s, "STARTING");
  changeStatus(e, s, s.me ? "WORKING" : "SCAN_QR_CODE");
}

// ---------------------------------------------------------------- scripted behaviour

export function hangNextSends(e: Engine, n: number, opts: HangOpts): void {
  for (let i = 0; i < n; i++) e.hangs.push({ ...opts });
}

export function receive(e: Engine, session: string, opts: InboundOpts): FakeWaMessage {
  const from = toChatId(opts.from);
  const chatId = opts.groupId ?? from;
  const participant = opts.groupId ? toChatId(opts.participant ?? from) : null;
  const msg = e.store(session, "app", {
    // NOWEB builds a group message id from key.participant too: false_<group>_<ID>_<sender> (buildMessageId).
    id: `false_${chatId}_3A${hex(9)}${participant ? `_${participant}` : ""}`,
    chatId,
    from: participant ?? from,
    to: e.meId(session),
    fromMe: false,
    body: opts.text,
    ack: 2,
    media: opts.media ?? null,
    kind: opts.media ? kindOf(opts.media.mimetype) : "text",
    replyTo: opts.replyTo ?? null,
    participant,
  });
  e.hooks.emit(session, "message", e.wire(msg));
  e.hooks.emit(session, "message.any", e.wire(msg));
  settlePresence(e, session, chatId, participant ?? from);
  return msg;
}

/** waha#379 fix in NOWEB: a message from someone last seen "typing" issues presence.update "online" for them. */
function settlePresence(e: Engine, session: string, chatId: string, participant: string): void {
  const key = `${session}|${chatId}|${participant}`;
  if (e.presences.get(key) !== "typing" || !e.subscribed.has(`${session}|${chatId}`)) return;
  e.presences.set(key, "online");
  e.hooks.emit(session, "presence.update", { id: chatId, presences: [{ participant, lastKnownPresence: "online", lastSeen: null }] });
}

/**
 * Fires `message.ack {id, from, to, participant, fromMe, ack, ackName}` exactly as told, including repeats and a late
 * DEVICE(2) after READ(3) (backends.md §0.8, §4.9). Group acks go out as `message.ack.group` (backends.md §4.9, waha#1865;
 * NOWEB splits receipts of groups off), and NOWEB builds their id with the receipt's participant (our own id) appended.
 */
export function ack(e: Engine, session: string, id: string, ack: number): void {
  const m = e.find(id);
  if (!m?.fromMe) throw new Error(`no outbound message ${id}`);
  m.ack = ack;
  const group = isGroup(m.chatId);
  const payload = { id: group ? `${m.id}_${e.meId(session)}` : m.id, from: m.chatId, fromMe: true, ack, ackName: ACK_NAMES[String(ack)] ?? "UNKNOWN", _data: { key: e.key(m) } };
  e.hooks.emit(session, group ? "message.ack.group" : "message.ack", payload);
}

export function react(e: Engine, session: string, opts: { from: string; messageId: string; text: string }): void {
  const from = toChatId(opts.from);
  const chatId = e.find(opts.messageId)?.chatId ?? parseId(opts.messageId)?.chatId ?? from;
  applyReaction(e, opts.messageId, from, opts.text);
  const group = isGroup(chatId);
  const id = `false_${chatId}_3A${hex(9)}${group ? `_${from}` : ""}`;
  e.hooks.emit(session, "message.reaction", reactionPayload(e, id, chatId, false, group ? from : undefined, opts.messageId, opts.text));
}

/** `message.reaction` (NOWEB processMessageReaction): `from` is the chat; an empty text means removed (backends.md §5). */
export function reactionPayload(e: Engine, id: string, chatId: string, fromMe: boolean, participant: string | undefined, messageId: string, text: string) {
  const to = participant ? chatId : undefined;
  return { id, timestamp: e.seconds(), from: chatId, fromMe, source: fromMe ? "api" : "app", to, participant, reaction: { text, messageId } };
}

export function applyReaction(e: Engine, messageId: string, from: string, text: string): void {
  const m = e.find(messageId);
  if (!m) return;
  m.reactions = m.reactions.filter((r) => r.from !== from);
  if (text) m.reactions.push({ from, text });
}

export function editInbound(e: Engine, session: string, id: string, text: string): void {
  const m = e.find(id);
  if (!m) throw new Error(`no message ${id}`);
  applyEdit(e, session, m, text);
}

/**
 * `message.edited` (NOWEB): the WAMessage of the *edit* message (its own new id), with `body` = the new text and
 * `editedMessageId` = the bare ID of the edited message, not its serialized id. Own edits fire it too (fromMe:true).
 */
export function applyEdit(e: Engine, session: string, m: FakeWaMessage, text: string): FakeWaMessage {
  m.body = text;
  m.edited = true;
  const edit = protocolMessage(e, m, text);
  e.hooks.emit(session, "message.edited", { ...e.wire(edit, session), editedMessageId: bareId(m.id) });
  return edit;
}

export function revokeInbound(e: Engine, session: string, id: string): void {
  const m = e.find(id);
  if (!m) throw new Error(`no message ${id}`);
  applyRevoke(e, session, m);
}

/** `message.revoked` (NOWEB): `{after: <the revoke message>, before: null, revokedMessageId: <bare ID>}`; own revokes fire it too. */
export function applyRevoke(e: Engine, session: string, m: FakeWaMessage): FakeWaMessage {
  m.revoked = true;
  const revoke = protocolMessage(e, m, "");
  e.hooks.emit(session, "message.revoked", { after: e.wire(revoke, session), before: null, revokedMessageId: bareId(m.id), _data: {} });
  return revoke;
}

/** The protocol (edit/revoke) message a device sends about `m`: same author and chat, a fresh id, not stored. */
function protocolMessage(e: Engine, m: FakeWaMessage, body: string): FakeWaMessage {
  const id = `${m.fromMe}_${m.chatId}_${m.fromMe ? "3EB0" : "3A"}${hex(9)}${m.participant ? `_${m.participant}` : ""}`;
  return { ...m, id, body, timestamp: e.seconds(), hasMedia: false, media: null, kind: "text", replyTo: null, reactions: [] };
}

/**
 * presence.update `{id, presences:[{participant, lastKnownPresence, lastSeen}]}`. Only for chats the session subscribed
 * to with POST /api/{session}/presence/{chatId}/subscribe (backends.md §2.1 "Receiving presence requires …").
 */
export function presence(e: Engine, session: string, chatId: string, state: "typing" | "paused", participant?: string): void {
  const chat = toChatId(chatId);
  const who = participant ? toChatId(participant) : chat;
  e.presences.set(`${session}|${chat}|${who}`, state);
  if (!e.subscribed.has(`${session}|${chat}`)) return;
  e.hooks.emit(session, "presence.update", { id: chat, presences: [{ participant: who, lastKnownPresence: state, lastSeen: null }] });
}

export function groupEvent(e: Engine, session: string, groupId: string, change: GroupChange): void {
  const g = e.fake.groups.get(groupId) ?? { id: groupId, subject: "", participants: [] };
  e.fake.groups.set(groupId, g);
  if (change.kind === "subject") {
    g.subject = change.subject;
    emitGroupUpdate(e, session, g, toChatId(change.by));
  } else {
    emitParticipants(e, session, g, change.kind, [toChatId(change.participant)], toChatId(change.by));
  }
}

/** group.v2.update `{timestamp, group: Partial<GroupInfo>, _data}`; NOWEB stamps group events with Date.now() (ms, not s). */
export function emitGroupUpdate(e: Engine, session: string, g: FakeGroup, by: string): void {
  e.hooks.emit(session, "group.v2.update", { timestamp: e.now(), group: { id: g.id, subject: g.subject }, _data: { id: g.id, subject: g.subject, author: toJid(by) } });
}

/** group.v2.participants `{group:{id}, type: join|leave, timestamp(ms), participants:[{id, role}], _data}`; plus group.v2.leave when we are removed. */
export function emitParticipants(e: Engine, session: string, g: FakeGroup, action: "add" | "remove", who: string[], by: string): void {
  g.participants = action === "add" ? [...new Set([...g.participants, ...who])] : g.participants.filter((p) => !who.includes(p));
  const _data = { id: g.id, author: toJid(by), participants: who.map(toJid), action };
  const role = action === "add" ? "participant" : "left";
  e.hooks.emit(session, "group.v2.participants", { group: { id: g.id }, type: action === "add" ? "join" : "leave", timestamp: e.now(), participants: who.map((id) => ({ id, role })), _data });
  if (action === "remove" && who.includes(e.meId(session))) e.hooks.emit(session, "group.v2.leave", { timestamp: e.now(), group: { id: g.id }, _data });
}
