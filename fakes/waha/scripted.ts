import type { FakeGroup, FakeSession, FakeWaMessage, GroupChange } from "./types.js";
import { ACK_NAMES, bareId, hex, isGroup, kindOf, parseId, toChatId, toJid } from "./wa-format.js";
import { WahaWebhooks } from "./webhooks.js";

/** The phone's side and the session lifecycle, driven from tests (and main.ts's `/fake/*` routes) and echoed as webhooks. */
export abstract class WahaScripted extends WahaWebhooks {
  protected readonly hangs: { ms: number; sent: boolean; status?: number }[] = [];
  protected readonly subscribed = new Set<string>();
  private readonly presences = new Map<string, string>();
  private readonly statuses = new Map<string, { status: string; timestamp: number }[]>();

  // ---------------------------------------------------------------- sessions

  addSession(name: string, opts: { status?: string; me?: string } = {}): void {
    const me = { id: toChatId(opts.me ?? "15550009999@c.us"), pushName: "Fake WAHA" };
    this.sessions.set(name, { name, status: opts.status ?? "WORKING", me, config: { webhooks: [] } });
    this.statuses.set(name, [{ status: opts.status ?? "WORKING", timestamp: this.now() }]);
  }

  async setStatus(name: string, status: string): Promise<void> {
    const s = this.sessions.get(name);
    if (!s) throw new Error(`no session ${name}`);
    this.changeStatus(s, status);
  }

  /** `session.status` → `{name, status, statuses}`; recent WAHA adds the status history (backends.md §2.1). */
  protected changeStatus(s: FakeSession, status: string): void {
    s.status = status;
    const history = this.statuses.get(s.name) ?? [];
    history.push({ status, timestamp: this.now() });
    this.statuses.set(s.name, history.slice(-5));
    this.emit(s.name, "session.status", { name: s.name, status, statuses: this.statuses.get(s.name) });
  }

  /** Start runs STARTING → WORKING when the device is linked (`me` set), else SCAN_QR_CODE. */
  protected boot(s: FakeSession): void {
    this.changeStatus(s, "STARTING");
    this.changeStatus(s, s.me ? "WORKING" : "SCAN_QR_CODE");
  }

  // ---------------------------------------------------------------- scripted behaviour

  hangNextSends(n: number, opts: { ms: number; sent: boolean; status?: number }): void {
    for (let i = 0; i < n; i++) this.hangs.push({ ...opts });
  }

  async receive(session: string, opts: { from: string; text: string; groupId?: string; participant?: string; replyTo?: string; media?: { mimetype: string; filename: string; data: Buffer } }): Promise<FakeWaMessage> {
    const from = toChatId(opts.from);
    const chatId = opts.groupId ?? from;
    const participant = opts.groupId ? toChatId(opts.participant ?? from) : null;
    const msg = this.store(session, "app", {
      // NOWEB builds a group message id from key.participant too: false_<group>_<ID>_<sender> (buildMessageId).
      id: `false_${chatId}_3A${hex(9)}${participant ? `_${participant}` : ""}`,
      chatId,
      from: participant ?? from,
      to: this.meId(session),
      fromMe: false,
      body: opts.text,
      ack: 2,
      media: opts.media ?? null,
      kind: opts.media ? kindOf(opts.media.mimetype) : "text",
      replyTo: opts.replyTo ?? null,
      participant,
    });
    this.emit(session, "message", this.wire(msg));
    this.emit(session, "message.any", this.wire(msg));
    this.settlePresence(session, chatId, participant ?? from);
    return msg;
  }

  /** waha#379 fix in NOWEB: a message from someone last seen "typing" issues presence.update "online" for them. */
  private settlePresence(session: string, chatId: string, participant: string): void {
    const key = `${session}|${chatId}|${participant}`;
    if (this.presences.get(key) !== "typing" || !this.subscribed.has(`${session}|${chatId}`)) return;
    this.presences.set(key, "online");
    this.emit(session, "presence.update", { id: chatId, presences: [{ participant, lastKnownPresence: "online", lastSeen: null }] });
  }

  /**
   * Fires `message.ack {id, from, to, participant, fromMe, ack, ackName}` exactly as told, including repeats and a late
   * DEVICE(2) after READ(3) (backends.md §0.8, §4.9). Group acks go out as `message.ack.group` (backends.md §4.9, waha#1865;
   * NOWEB splits receipts of groups off), and NOWEB builds their id with the receipt's participant (our own id) appended.
   */
  async ack(session: string, id: string, ack: number): Promise<void> {
    const m = this.find(id);
    if (!m?.fromMe) throw new Error(`no outbound message ${id}`);
    m.ack = ack;
    const group = isGroup(m.chatId);
    const payload = { id: group ? `${m.id}_${this.meId(session)}` : m.id, from: m.chatId, fromMe: true, ack, ackName: ACK_NAMES[String(ack)] ?? "UNKNOWN", _data: { key: this.key(m) } };
    this.emit(session, group ? "message.ack.group" : "message.ack", payload);
  }

  async react(session: string, opts: { from: string; messageId: string; text: string }): Promise<void> {
    const from = toChatId(opts.from);
    const chatId = this.find(opts.messageId)?.chatId ?? parseId(opts.messageId)?.chatId ?? from;
    this.applyReaction(opts.messageId, from, opts.text);
    const group = isGroup(chatId);
    const id = `false_${chatId}_3A${hex(9)}${group ? `_${from}` : ""}`;
    this.emit(session, "message.reaction", this.reactionPayload(id, chatId, false, group ? from : undefined, opts.messageId, opts.text));
  }

  /** `message.reaction` (NOWEB processMessageReaction): `from` is the chat; an empty text means removed (backends.md §5). */
  protected reactionPayload(id: string, chatId: string, fromMe: boolean, participant: string | undefined, messageId: string, text: string) {
    const to = participant ? chatId : undefined;
    return { id, timestamp: this.seconds(), from: chatId, fromMe, source: fromMe ? "api" : "app", to, participant, reaction: { text, messageId } };
  }

  protected applyReaction(messageId: string, from: string, text: string): void {
    const m = this.find(messageId);
    if (!m) return;
    m.reactions = m.reactions.filter((r) => r.from !== from);
    if (text) m.reactions.push({ from, text });
  }

  async editInbound(session: string, id: string, text: string): Promise<void> {
    const m = this.find(id);
    if (!m) throw new Error(`no message ${id}`);
    this.applyEdit(session, m, text);
  }

  /**
   * `message.edited` (NOWEB): the WAMessage of the *edit* message (its own new id), with `body` = the new text and
   * `editedMessageId` = the bare ID of the edited message, not its serialized id. Own edits fire it too (fromMe:true).
   */
  protected applyEdit(session: string, m: FakeWaMessage, text: string): FakeWaMessage {
    m.body = text;
    m.edited = true;
    const edit = this.protocolMessage(m, text);
    this.emit(session, "message.edited", { ...this.wire(edit, session), editedMessageId: bareId(m.id) });
    return edit;
  }

  async revokeInbound(session: string, id: string): Promise<void> {
    const m = this.find(id);
    if (!m) throw new Error(`no message ${id}`);
    this.applyRevoke(session, m);
  }

  /** `message.revoked` (NOWEB): `{after: <the revoke message>, before: null, revokedMessageId: <bare ID>}`; own revokes fire it too. */
  protected applyRevoke(session: string, m: FakeWaMessage): FakeWaMessage {
    m.revoked = true;
    const revoke = this.protocolMessage(m, "");
    this.emit(session, "message.revoked", { after: this.wire(revoke, session), before: null, revokedMessageId: bareId(m.id), _data: {} });
    return revoke;
  }

  /** The protocol (edit/revoke) message a device sends about `m`: same author and chat, a fresh id, not stored. */
  private protocolMessage(m: FakeWaMessage, body: string): FakeWaMessage {
    const id = `${m.fromMe}_${m.chatId}_${m.fromMe ? "3EB0" : "3A"}${hex(9)}${m.participant ? `_${m.participant}` : ""}`;
    return { ...m, id, body, timestamp: this.seconds(), hasMedia: false, media: null, kind: "text", replyTo: null, reactions: [] };
  }

  /**
   * presence.update `{id, presences:[{participant, lastKnownPresence, lastSeen}]}`. Only for chats the session subscribed
   * to with POST /api/{session}/presence/{chatId}/subscribe (backends.md §2.1 "Receiving presence requires …").
   */
  async presence(session: string, chatId: string, state: "typing" | "paused", participant?: string): Promise<void> {
    const chat = toChatId(chatId);
    const who = participant ? toChatId(participant) : chat;
    this.presences.set(`${session}|${chat}|${who}`, state);
    if (!this.subscribed.has(`${session}|${chat}`)) return;
    this.emit(session, "presence.update", { id: chat, presences: [{ participant: who, lastKnownPresence: state, lastSeen: null }] });
  }

  async groupEvent(session: string, groupId: string, change: GroupChange): Promise<void> {
    const g = this.groups.get(groupId) ?? { id: groupId, subject: "", participants: [] };
    this.groups.set(groupId, g);
    if (change.kind === "subject") {
      g.subject = change.subject;
      this.emitGroupUpdate(session, g, toChatId(change.by));
    } else {
      this.emitParticipants(session, g, change.kind, [toChatId(change.participant)], toChatId(change.by));
    }
  }

  /** group.v2.update `{timestamp, group: Partial<GroupInfo>, _data}`; NOWEB stamps group events with Date.now() (ms, not s). */
  protected emitGroupUpdate(session: string, g: FakeGroup, by: string): void {
    this.emit(session, "group.v2.update", { timestamp: this.now(), group: { id: g.id, subject: g.subject }, _data: { id: g.id, subject: g.subject, author: toJid(by) } });
  }

  /** group.v2.participants `{group:{id}, type: join|leave, timestamp(ms), participants:[{id, role}], _data}`; plus group.v2.leave when we are removed. */
  protected emitParticipants(session: string, g: FakeGroup, action: "add" | "remove", who: string[], by: string): void {
    g.participants = action === "add" ? [...new Set([...g.participants, ...who])] : g.participants.filter((p) => !who.includes(p));
    const _data = { id: g.id, author: toJid(by), participants: who.map(toJid), action };
    const role = action === "add" ? "participant" : "left";
    this.emit(session, "group.v2.participants", { group: { id: g.id }, type: action === "add" ? "join" : "leave", timestamp: this.now(), participants: who.map((id) => ({ id, role })), _data });
    if (action === "remove" && who.includes(this.meId(session))) this.emit(session, "group.v2.leave", { timestamp: this.now(), group: { id: g.id }, _data });
  }
}
