/**
 * A faithful local fake of WAHA (devlikeapro/waha), engine NOWEB, for tests and for running by hand.
 * The contract is /work/shared/spec/backends.md §0.7, §2.1, §4 and §5, and WAHA's own source where
 * backends.md is silent (`src/core/engines/noweb/session.noweb.core.ts`, `src/structures/*.dto.ts`,
 * `src/api/exception.filter.ts`). Each reproduced quirk has a comment naming where it comes from.
 *
 * Scripted behaviour (hanging sends, refusals, inbound traffic, acks, presence, group changes) is
 * driven from the test through the public methods; webhooks are POSTed to the session's
 * `config.webhooks`, and `flushWebhooks()` resolves once every POST fired so far is answered.
 */
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface FakeWaMessage {
  id: string;
  chatId: string;
  from: string;
  to: string;
  fromMe: boolean;
  body: string;
  timestamp: number;
  ack: number;
  hasMedia: boolean;
  media: { mimetype: string; filename: string | null; data: Buffer } | null;
  replyTo: string | null;
  kind: "text" | "image" | "file" | "voice" | "video";
  edited: boolean;
  revoked: boolean;
  reactions: { from: string; text: string }[];
  participant: string | null;
}
export interface FakeWebhookConfig {
  url: string;
  events: string[];
  hmac?: { key: string } | null;
  retries?: unknown;
  customHeaders?: { name: string; value: string }[] | null;
}
export interface FakeSession {
  name: string;
  status: string;
  me: { id: string; pushName: string } | null;
  config: { webhooks?: FakeWebhookConfig[] | null; [key: string]: unknown };
}
export interface FakeGroup {
  id: string;
  subject: string;
  participants: string[];
}
type GroupChange = { kind: "subject"; subject: string; by: string } | { kind: "add" | "remove"; participant: string; by: string };
type Json = Record<string, unknown>;
type Reply = { status?: number; body?: unknown; bytes?: { type: string; data: Buffer } };
interface Ctx {
  method: string;
  path: string;
  params: string[];
  query: URLSearchParams;
  body: Json;
}
type Handler = (c: Ctx) => Promise<Reply> | Reply;

export const WAHA_VERSION = "2025.9.1";
const ACK_NAMES: Record<string, string> = { "-1": "ERROR", "0": "PENDING", "1": "SERVER", "2": "DEVICE", "3": "READ", "4": "PLAYED" };
const NOT_WORKING = "Session status is not as expected. Try again later or restart the session";
const EXT: Record<string, string> = { "image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "video/mp4": "mp4", "audio/ogg": "oga", "audio/mpeg": "mp3", "application/pdf": "pdf" };

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}
/** NestJS's own error body, `{message, error, statusCode}`: 400 validation, 401 auth guard, 404, 422. */
const nest = (status: number, error: string, message: unknown) => new HttpError(status, { message, error, statusCode: status });

const digits = (s: string) => (s.split("@")[0] ?? "").replace(/\D/g, "");
const isGroup = (chatId: string) => chatId.endsWith("@g.us");
const toChatId = (raw: string) => (isGroup(raw) ? raw : `${digits(raw)}@c.us`);
const toJid = (chatId: string) => (isGroup(chatId) ? chatId : `${digits(chatId)}@s.whatsapp.net`);
const hex = (bytes: number) => randomBytes(bytes).toString("hex").toUpperCase();
/** `<fromMe>_<chatId>_<ID>[_<participant>]` → the bare WhatsApp ID, which is all `editedMessageId`, `revokedMessageId` and `replyTo.id` carry (NOWEB source). */
const bareId = (id: string) => id.split("_")[2] ?? id;
const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});

function parseId(id: string): { fromMe: boolean; chatId: string; key: string } | null {
  const parts = id.split("_");
  if ((parts.length !== 3 && parts.length !== 4) || !parts[1] || !parts[2]) return null;
  return { fromMe: parts[0] === "true", chatId: parts[1], key: parts[2] };
}

function need(body: Json, field: string): string {
  const v = str(body[field]);
  if (!v) throw nest(400, "Bad Request", [`${field} must be a string`]);
  return v;
}

function kindOf(mimetype: string): FakeWaMessage["kind"] {
  if (mimetype.startsWith("image/")) return "image";
  if (mimetype.startsWith("video/")) return "video";
  if (mimetype.startsWith("audio/ogg")) return "voice";
  return "file";
}

/** The Baileys content a NOWEB `_data.message` would hold, enough to tell a voice note from a file. */
function content(m: FakeWaMessage): Json {
  const media = { mimetype: m.media?.mimetype, caption: m.body || undefined };
  if (m.kind === "text") return { conversation: m.body };
  if (m.kind === "voice") return { audioMessage: { mimetype: m.media?.mimetype, ptt: true } };
  if (m.kind === "file") return { documentMessage: { ...media, fileName: m.media?.filename ?? undefined } };
  return { [`${m.kind}Message`]: media };
}

export class FakeWaha {
  readonly apiKey: string;
  url = "";
  sessions = new Map<string, FakeSession>();
  messages: FakeWaMessage[] = [];
  sent: FakeWaMessage[] = [];
  requests: { method: string; path: string; query: Record<string, string>; body: unknown; headers: Record<string, string | string[] | undefined> }[] = [];
  /** Every webhook POST attempted, with the receiver's status or the network error (not part of WAHA). */
  deliveries: { url: string; event: string; status: number | null; error: string | null }[] = [];
  existing: (phoneDigits: string) => boolean = (d) => !d.endsWith("0001");
  /** WAHA Plus. With `false` (Core), media sends answer 422 AvailableInPlusVersion (backends.md §2.1 "Core edition limits"). */
  plus = true;
  /**
   * Real NOWEB answers a send with the raw Baileys message `{key:{remoteJid, fromMe, id}, message, messageTimestamp, status}`
   * (the engine returns `sock.sendMessage(...)` as is), not a WAMessage. Off by default: sends answer a WAMessage with a
   * string `id`, as the brief asks; switch it on to check a back-end copes with the real shape.
   */
  rawSendResponses = false;
  groups = new Map<string, FakeGroup>();
  /** While a flag is true every such call answers WAHA's 500 (an engine error); set it back to false to recover. */
  refuse: { reaction?: boolean; edit?: boolean; revoke?: boolean; group?: boolean } = {};

  private readonly now: () => number;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly pending = new Set<Promise<void>>();
  private readonly chains = new Map<string, Promise<void>>();
  private abort = new AbortController();
  private readonly hangs: { ms: number; sent: boolean; status?: number }[] = [];
  private readonly origin = new Map<string, { session: string; source: "api" | "app" }>();
  private readonly subscribed = new Set<string>();
  private readonly presences = new Map<string, string>();
  private readonly statuses = new Map<string, { status: string; timestamp: number }[]>();
  private readonly routes: [string, RegExp, Handler][];

  constructor(opts: { apiKey?: string; now?: () => number } = {}) {
    this.apiKey = opts.apiKey ?? "fake-key";
    this.now = opts.now ?? Date.now;
    this.routes = this.routeTable();
  }

  // ---------------------------------------------------------------- lifecycle

  start(port = 0): Promise<string> {
    this.abort = new AbortController();
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const addr = server.address();
        this.url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : port}`;
        resolve(this.url);
      });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.pending]);
  }

  /** Extra routes on the same server and behind the same X-Api-Key check (main.ts adds `/fake/*`). */
  addRoute(method: string, path: string, handler: (body: Json) => Promise<unknown>): void {
    this.routes.push([method, new RegExp(`^${path}$`), async (c) => ({ status: 200, body: await handler(c.body) })]);
  }

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
  private changeStatus(s: FakeSession, status: string): void {
    s.status = status;
    const history = this.statuses.get(s.name) ?? [];
    history.push({ status, timestamp: this.now() });
    this.statuses.set(s.name, history.slice(-5));
    this.emit(s.name, "session.status", { name: s.name, status, statuses: this.statuses.get(s.name) });
  }

  /** Start runs STARTING → WORKING when the device is linked (`me` set), else SCAN_QR_CODE. */
  private boot(s: FakeSession): void {
    this.changeStatus(s, "STARTING");
    this.changeStatus(s, s.me ? "WORKING" : "SCAN_QR_CODE");
  }

  private sessionInfo(s: FakeSession) {
    return { name: s.name, status: s.status, config: s.config, me: s.me, engine: { engine: "NOWEB" } };
  }

  private session(name: string): FakeSession {
    const s = this.sessions.get(name);
    if (!s) throw nest(404, "Not Found", `We didn't find a session with name '${name}'.\nPlease start it first by using POST /api/sessions/${name}/start request`);
    return s;
  }

  /** backends.md §0.7 / §2.1: every chatting call goes through getWorkingSession() → 422 {error, session, status, expected}. */
  private working(name: string): FakeSession {
    const s = this.session(name);
    if (s.status !== "WORKING") throw new HttpError(422, { error: NOT_WORKING, session: name, status: s.status, expected: ["WORKING"] });
    return s;
  }

  private meId(session: string): string {
    return this.sessions.get(session)?.me?.id ?? "me";
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
  private reactionPayload(id: string, chatId: string, fromMe: boolean, participant: string | undefined, messageId: string, text: string) {
    const to = participant ? chatId : undefined;
    return { id, timestamp: this.seconds(), from: chatId, fromMe, source: fromMe ? "api" : "app", to, participant, reaction: { text, messageId } };
  }

  private applyReaction(messageId: string, from: string, text: string): void {
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
  private applyEdit(session: string, m: FakeWaMessage, text: string): FakeWaMessage {
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
  private applyRevoke(session: string, m: FakeWaMessage): FakeWaMessage {
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
  private emitGroupUpdate(session: string, g: FakeGroup, by: string): void {
    this.emit(session, "group.v2.update", { timestamp: this.now(), group: { id: g.id, subject: g.subject }, _data: { id: g.id, subject: g.subject, author: toJid(by) } });
  }

  /** group.v2.participants `{group:{id}, type: join|leave, timestamp(ms), participants:[{id, role}], _data}`; plus group.v2.leave when we are removed. */
  private emitParticipants(session: string, g: FakeGroup, action: "add" | "remove", who: string[], by: string): void {
    g.participants = action === "add" ? [...new Set([...g.participants, ...who])] : g.participants.filter((p) => !who.includes(p));
    const _data = { id: g.id, author: toJid(by), participants: who.map(toJid), action };
    const role = action === "add" ? "participant" : "left";
    this.emit(session, "group.v2.participants", { group: { id: g.id }, type: action === "add" ? "join" : "leave", timestamp: this.now(), participants: who.map((id) => ({ id, role })), _data });
    if (action === "remove" && who.includes(this.meId(session))) this.emit(session, "group.v2.leave", { timestamp: this.now(), group: { id: g.id }, _data });
  }

  // ---------------------------------------------------------------- messages

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  private find(id: string): FakeWaMessage | undefined {
    return this.messages.find((m) => m.id === id);
  }

  private store(session: string, source: "api" | "app", m: Omit<FakeWaMessage, "timestamp" | "hasMedia" | "edited" | "revoked" | "reactions">): FakeWaMessage {
    const msg: FakeWaMessage = { ...m, timestamp: this.seconds(), hasMedia: m.media !== null, edited: false, revoked: false, reactions: [] };
    this.messages.push(msg);
    this.origin.set(msg.id, { session, source });
    return msg;
  }

  private key(m: FakeWaMessage) {
    return { remoteJid: toJid(m.chatId), fromMe: m.fromMe, id: bareId(m.id), participant: m.participant ? toJid(m.participant) : undefined };
  }

  private mediaUrl(session: string, m: FakeWaMessage): string {
    const type = (m.media?.mimetype ?? "").split(";")[0] ?? "";
    return `${this.url}/api/files/${session}/${m.id}.${EXT[type] ?? type.split("/")[1] ?? "bin"}`;
  }

  /**
   * The WAMessage NOWEB puts on the wire (toWAMessage): `from` is always the chat (remoteJid), for our own messages too;
   * `to` and `participant` exist only for group messages from others (key.participant set) and are absent otherwise;
   * `body` is null when empty; `replyTo` is `{id: <bare ID>, participant, body}`; `media` is null when not downloaded.
   */
  private wire(m: FakeWaMessage, sessionHint?: string, downloadMedia = true): Json {
    const origin = this.origin.get(m.id);
    const session = origin?.session ?? sessionHint ?? "default";
    const media = m.media && downloadMedia ? { url: this.mediaUrl(session, m), mimetype: m.media.mimetype, filename: m.media.filename, error: null } : null;
    return {
      id: m.id,
      timestamp: m.timestamp,
      from: m.chatId,
      fromMe: m.fromMe,
      source: origin?.source ?? (m.fromMe ? "api" : "app"),
      body: m.body || null,
      to: m.participant ? m.chatId : undefined,
      participant: m.participant ?? undefined,
      hasMedia: m.hasMedia,
      media,
      ack: m.ack,
      ackName: ACK_NAMES[String(m.ack)] ?? "UNKNOWN",
      location: null,
      vCards: [],
      replyTo: this.replyInfo(m.replyTo, session),
      _data: { key: this.key(m), messageTimestamp: m.timestamp, message: content(m) },
    };
  }

  private replyInfo(replyTo: string | null, session: string) {
    if (!replyTo) return null;
    const q = this.find(replyTo);
    return { id: bareId(replyTo), participant: q ? (q.fromMe ? this.meId(session) : (q.participant ?? q.chatId)) : undefined, body: q?.body ?? null };
  }

  /** What NOWEB really answers for sends, reactions, edits and revokes: the raw Baileys message from sock.sendMessage(). */
  private baileys(m: FakeWaMessage): Json {
    return { key: this.key(m), message: content(m), messageTimestamp: m.timestamp, status: "PENDING" };
  }

  // ---------------------------------------------------------------- webhooks

  /** One envelope per event, POSTed to every webhook subscribed to it (or "*"): one attempt, no retries (WAHA Core). */
  private emit(session: string, event: string, payload: unknown): void {
    const s = this.sessions.get(session);
    if (!s) return;
    const env = { environment: { version: WAHA_VERSION, engine: "NOWEB", tier: this.plus ? "PLUS" : "CORE", browser: null } };
    const envelope = { id: `evt_${randomBytes(13).toString("hex")}`, timestamp: this.now(), session, metadata: {}, engine: "NOWEB", me: s.me ?? undefined, ...env, event, payload };
    const body = JSON.stringify(envelope);
    for (const hook of s.config.webhooks ?? []) {
      if (hook.events.includes(event) || hook.events.includes("*")) this.deliver(hook, event, body);
    }
  }

  /**
   * Deliveries to one URL are serialised so tests see events in the order they were fired; real WAHA POSTs each
   * event independently, so a receiver must not rely on order (out-of-order acks are scripted with ack()).
   */
  private deliver(hook: FakeWebhookConfig, event: string, body: string): void {
    const prev = this.chains.get(hook.url) ?? Promise.resolve();
    const next = prev.then(() => this.post(hook, event, body));
    this.chains.set(hook.url, next);
    this.pending.add(next);
    void next.finally(() => this.pending.delete(next));
  }

  private async post(hook: FakeWebhookConfig, event: string, body: string): Promise<void> {
    const headers: Record<string, string> = { "Content-Type": "application/json", "X-Webhook-Request-Id": randomUUID(), "X-Webhook-Timestamp": String(this.now()) };
    // HMAC per WAHA docs: hex HMAC-SHA512 of the raw body (confirmed by several WAHA integrations' verifiers).
    if (hook.hmac?.key) {
      headers["X-Webhook-Hmac"] = createHmac("sha512", hook.hmac.key).update(body).digest("hex");
      headers["X-Webhook-Hmac-Algorithm"] = "sha512";
    }
    for (const h of hook.customHeaders ?? []) headers[h.name] = h.value;
    const record = { url: hook.url, event, status: null as number | null, error: null as string | null };
    this.deliveries.push(record);
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(10_000)]);
      const res = await fetch(hook.url, { method: "POST", headers, body, signal });
      await res.arrayBuffer();
      record.status = res.status;
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    }
  }

  async flushWebhooks(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  // ---------------------------------------------------------------- HTTP plumbing

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const raw = await readBody(req);
    let body: unknown;
    let bad: string | null = null;
    try {
      body = raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
    } catch (err) {
      bad = err instanceof Error ? err.message : "Invalid JSON";
    }
    this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body, headers: req.headers });
    try {
      if (!this.authorized(req, url)) throw new HttpError(401, { message: "Unauthorized", statusCode: 401 });
      if (bad) throw nest(400, "Bad Request", bad);
      const reply = await this.dispatch({ method, path: url.pathname, params: [], query: url.searchParams, body: obj(body) });
      respond(res, reply.status ?? (method === "POST" ? 201 : 200), reply);
    } catch (err) {
      if (err instanceof HttpError) respond(res, err.status, { body: err.body });
      else respond(res, 500, { body: this.engineError(method, url, body, err instanceof Error ? err.message : String(err)) });
    }
  }

  /** X-Api-Key header, or the `x-api-key` query parameter (HeaderOrQueryApiKeyStrategy), on every route. */
  private authorized(req: IncomingMessage, url: URL): boolean {
    const header = req.headers["x-api-key"];
    return (typeof header === "string" ? header : url.searchParams.get("x-api-key")) === this.apiKey;
  }

  private async dispatch(c: Ctx): Promise<Reply> {
    for (const [method, pattern, handler] of this.routes) {
      const m = method === c.method ? pattern.exec(c.path) : null;
      if (m) return handler({ ...c, params: m.slice(1).map((p) => decodeURIComponent(p)) });
    }
    throw nest(404, "Not Found", `Cannot ${c.method} ${c.path}`);
  }

  /** WAHA's AllExceptionsFilter body for a non-HTTP error (an engine failure): 500 with the exception serialized. */
  private engineError(method: string, url: URL, body: unknown, message: string, status = 500) {
    const request = { path: url.pathname, method, body, query: Object.fromEntries(url.searchParams) };
    return { statusCode: status, timestamp: new Date(this.now()).toISOString(), exception: { message, name: "Error" }, request, version: WAHA_VERSION };
  }

  private fail(c: Ctx, message: string, status = 500): HttpError {
    return new HttpError(status, this.engineError(c.method, new URL(c.path, "http://fake"), c.body, message, status));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  // ---------------------------------------------------------------- routes

  private routeTable(): [string, RegExp, Handler][] {
    const P = "([^/]+)";
    const r = (method: string, path: string, h: Handler): [string, RegExp, Handler] => [method, new RegExp(`^${path.replaceAll("{}", P)}$`), h];
    return [
      r("GET", "/api/sessions", () => ({ body: [...this.sessions.values()].map((s) => this.sessionInfo(s)) })),
      r("GET", "/api/sessions/{}", (c) => ({ body: this.sessionInfo(this.session(c.params[0] ?? "")) })),
      r("PUT", "/api/sessions/{}", (c) => this.updateSession(c)),
      r("POST", "/api/sessions/{}/(start|stop|restart)", (c) => this.lifecycle(c)),
      r("POST", "/api/sendText", (c) => this.send(c, "text")),
      r("POST", "/api/sendImage", (c) => this.send(c, "image")),
      r("POST", "/api/sendFile", (c) => this.send(c, "file")),
      r("POST", "/api/sendVoice", (c) => this.send(c, "voice")),
      r("POST", "/api/sendVideo", (c) => this.send(c, "video")),
      r("PUT", "/api/reaction", (c) => this.reaction(c)),
      r("PUT", "/api/{}/chats/{}/messages/{}", (c) => this.edit(c)),
      r("DELETE", "/api/{}/chats/{}/messages/{}", (c) => this.revoke(c)),
      r("GET", "/api/{}/chats/{}/messages", (c) => this.history(c)),
      r("POST", "/api/sendSeen", (c) => this.chatting(c)),
      r("POST", "/api/startTyping", (c) => this.chatting(c)),
      r("POST", "/api/stopTyping", (c) => this.chatting(c)),
      r("POST", "/api/{}/presence", (c) => this.chatting(c, c.params[0])),
      r("POST", "/api/{}/presence/{}/subscribe", (c) => this.subscribe(c)),
      r("GET", "/api/contacts/check-exists", (c) => this.checkExists(c)),
      r("GET", "/api/files/{}/{}", (c) => this.file(c)),
      r("POST", "/api/{}/groups", (c) => this.createGroup(c)),
      r("GET", "/api/{}/groups/{}", (c) => ({ body: this.groupMetadata(c.params[0] ?? "", this.group(c)) })),
      r("PUT", "/api/{}/groups/{}/subject", (c) => this.setSubject(c)),
      r("POST", "/api/{}/groups/{}/participants/(add|remove)", (c) => this.participants(c)),
      r("POST", "/api/{}/groups/{}/leave", (c) => this.leaveGroup(c)),
    ];
  }

  /**
   * PUT /api/sessions/{session} {config}: "Updates a session with a full new configuration. If the session is not in a
   * STOPPED status, it will be stopped and started with the new configuration" (WAHA docs, how-to/sessions), so a
   * running session passes through STARTING again, announced to the new webhooks.
   */
  private updateSession(c: Ctx): Reply {
    const s = this.session(c.params[0] ?? "");
    s.config = obj(c.body.config) as FakeSession["config"];
    if (s.status !== "STOPPED") this.boot(s);
    return { body: this.sessionInfo(s) };
  }

  private lifecycle(c: Ctx): Reply {
    const s = this.session(c.params[0] ?? "");
    const action = c.params[1];
    if (action === "stop" || action === "restart") this.changeStatus(s, "STOPPED");
    if (action !== "stop" && s.status === "STOPPED") this.boot(s);
    return { body: this.sessionInfo(s) };
  }

  private sessionOf(c: Ctx): FakeSession {
    return this.working(str(c.body.session) ?? c.query.get("session") ?? "default");
  }

  /** Calls whose effect is only the request itself (sendSeen, typing, presence): session must be WORKING; 201, empty body. */
  private chatting(c: Ctx, session?: string): Reply {
    if (session) this.working(session);
    else this.sessionOf(c);
    return {};
  }

  private subscribe(c: Ctx): Reply {
    const [session = "", chatId = ""] = c.params;
    this.working(session);
    this.subscribed.add(`${session}|${toChatId(chatId)}`);
    return {};
  }

  /** NOWEB checkNumberStatus: `{numberExists:true, chatId}` or just `{numberExists:false}` (no chatId key at all). */
  private checkExists(c: Ctx): Reply {
    this.sessionOf(c);
    const phone = digits(c.query.get("phone") ?? "");
    return { status: 200, body: this.existing(phone) ? { numberExists: true, chatId: `${phone}@c.us` } : { numberExists: false } };
  }

  private async send(c: Ctx, kind: FakeWaMessage["kind"]): Promise<Reply> {
    // NestJS validates the body (400) before the controller asks for a WORKING session (422).
    const chatId = toChatId(need(c.body, "chatId"));
    const text = kind === "text" ? need(c.body, "text") : (str(c.body.caption) ?? "");
    const s = this.sessionOf(c);
    // backends.md §2.1: Core throws AvailableInPlusVersion (an UnprocessableEntityException → NestJS 422 body).
    if (kind !== "text" && !this.plus) throw nest(422, "Unprocessable Entity", "The feature is available only in Plus version for 'NOWEB' engine. Check this out: https://waha.devlike.pro/");
    if (isGroup(chatId) && !this.groups.has(chatId)) throw this.fail(c, "item-not-found");
    const media = kind === "text" ? null : await this.loadFile(c, kind);
    // backends.md §0.5 / §4.5 (the same failure mode on WhatsApp): the call hangs, then errors, and the message may be out anyway.
    const hang = this.hangs.shift();
    const msg = hang && !hang.sent ? null : this.sendOut(s, chatId, text, kind, media, str(c.body.reply_to) ?? null);
    if (hang) {
      await this.sleep(hang.ms);
      throw this.fail(c, "Timed Out", hang.status ?? 500);
    }
    if (!msg) throw this.fail(c, "unreachable");
    return { body: this.rawSendResponses ? this.baileys(msg) : this.wire(msg) };
  }

  /**
   * A send goes out even to a number that is not on WhatsApp (no error; it just never gets acks, backends.md §4.9).
   * It is recorded in `sent` (device history) and echoed as `message.any` (fromMe:true), as NOWEB does for own messages.
   */
  private sendOut(s: FakeSession, chatId: string, body: string, kind: FakeWaMessage["kind"], media: FakeWaMessage["media"], replyTo: string | null): FakeWaMessage {
    const me = s.me?.id ?? "me";
    const msg = this.store(s.name, "api", { id: `true_${chatId}_3EB0${hex(18)}`, chatId, from: me, to: chatId, fromMe: true, body, ack: 1, media, kind, replyTo, participant: null });
    this.sent.push(msg);
    this.emit(s.name, "message.any", this.wire(msg));
    return msg;
  }

  /** file: {mimetype, filename?, url | data(base64)}; a url is fetched like WAHA does; a failed fetch is an engine error. */
  private async loadFile(c: Ctx, kind: FakeWaMessage["kind"]): Promise<NonNullable<FakeWaMessage["media"]>> {
    const file = obj(c.body.file);
    const mimetype = str(file.mimetype) ?? (kind === "voice" ? "audio/ogg; codecs=opus" : "application/octet-stream");
    const filename = str(file.filename) ?? null;
    const data = str(file.data);
    if (data) return { mimetype, filename, data: Buffer.from(data, "base64") };
    const url = str(file.url);
    if (!url) throw nest(422, "Unprocessable Entity", 'Either "file.url" or "file.data" must be specified.');
    try {
      const res = await fetch(url, { signal: this.abort.signal });
      if (!res.ok) throw new Error(`Request failed with status code ${res.status}`);
      return { mimetype, filename, data: Buffer.from(await res.arrayBuffer()) };
    } catch (err) {
      throw this.fail(c, err instanceof Error ? err.message : String(err));
    }
  }

  /** PUT /api/reaction {messageId, reaction}: "" removes. An unparsable id makes NOWEB's parseMessageId throw (500). */
  private reaction(c: Ctx): Reply {
    const s = this.sessionOf(c);
    const messageId = need(c.body, "messageId");
    const text = str(c.body.reaction) ?? "";
    const parsed = parseId(messageId);
    if (this.refuse.reaction) throw this.fail(c, "Internal Server Error: reaction refused");
    if (!parsed) throw this.fail(c, "Message id be in format false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA[_participant]");
    this.applyReaction(messageId, s.me?.id ?? "me", text);
    const id = `true_${parsed.chatId}_3EB0${hex(18)}`;
    this.emit(s.name, "message.reaction", this.reactionPayload(id, parsed.chatId, true, undefined, messageId, text));
    return { body: { key: { remoteJid: toJid(parsed.chatId), fromMe: true, id: bareId(id) }, messageTimestamp: this.seconds(), status: "PENDING" } };
  }

  /** Edit and revoke of a message this device does not have answer 404 (a fake's choice: real NOWEB sends blindly). */
  private target(c: Ctx): { s: FakeSession; m: FakeWaMessage } {
    const [session = "", , messageId = ""] = c.params;
    const s = this.working(session);
    const m = this.find(messageId);
    if (!m || m.revoked) throw nest(404, "Not Found", `Message '${messageId}' not found`);
    return { s, m };
  }

  private edit(c: Ctx): Reply {
    const { s, m } = this.target(c);
    const text = need(c.body, "text");
    if (this.refuse.edit) throw this.fail(c, "Internal Server Error: edit refused");
    return { body: this.baileys(this.applyEdit(s.name, m, text)) };
  }

  private revoke(c: Ctx): Reply {
    const { s, m } = this.target(c);
    if (this.refuse.revoke) throw this.fail(c, "Internal Server Error: revoke refused");
    return { body: this.baileys(this.applyRevoke(s.name, m)) };
  }

  /**
   * GET /api/{session}/chats/{chatId}/messages?limit=&downloadMedia=: newest first, revoked messages gone, edits applied.
   * WAHA's defaults: limit 10 (the DTO default), downloadMedia true; with downloadMedia=false `media` is null but
   * `hasMedia` stays true (NOWEB toWAMessage).
   */
  private history(c: Ctx): Reply {
    const [session = "", chatId = ""] = c.params;
    this.working(session);
    const limit = Number(c.query.get("limit") ?? 10) || 10;
    const download = c.query.get("downloadMedia") !== "false";
    const chat = toChatId(chatId);
    const list = this.messages.filter((m) => m.chatId === chat && !m.revoked && this.origin.get(m.id)?.session === session);
    const newestFirst = list.map((m, i) => ({ m, i })).sort((a, b) => b.m.timestamp - a.m.timestamp || b.i - a.i);
    return { body: newestFirst.slice(0, limit).map(({ m }) => this.wire(m, session, download)) };
  }

  /** GET /api/files/{session}/{messageId}.{ext}: served like WAHA's static files (X-Api-Key needed, ENOENT body on 404). */
  private file(c: Ctx): Reply {
    const name = c.params[1] ?? "";
    const m = this.find(name.slice(0, name.lastIndexOf(".")));
    if (!m?.media) throw new HttpError(404, { error: { code: 404, key: "FILE_NOT_FOUND", message: "File not found", details: "File not found or no longer available" } });
    return { status: 200, bytes: { type: m.media.mimetype, data: m.media.data } };
  }

  // ---------------------------------------------------------------- groups

  private groupGuard(c: Ctx): FakeSession {
    const s = this.working(c.params[0] ?? "");
    if (this.refuse.group) throw this.fail(c, "Internal Server Error: group call refused");
    return s;
  }

  /** NOWEB getGroup: an unknown id is a plain Error → 500, not 404. */
  private group(c: Ctx): FakeGroup {
    this.working(c.params[0] ?? "");
    const g = this.groups.get(c.params[1] ?? "");
    if (!g) throw this.fail(c, `Group with id '${c.params[1]}' not found`);
    return g;
  }

  /** NOWEB answers group calls with Baileys GroupMetadata: participants as `<digits>@s.whatsapp.net` with `admin`. */
  private groupMetadata(session: string, g: FakeGroup) {
    const me = this.meId(session);
    const participants = g.participants.map((p) => ({ id: toJid(p), admin: p === me ? "superadmin" : null }));
    return { id: g.id, subject: g.subject, subjectOwner: toJid(me), subjectTime: this.seconds(), creation: this.seconds(), owner: toJid(me), desc: undefined, restrict: false, announce: false, size: participants.length, participants };
  }

  private createGroup(c: Ctx): Reply {
    const s = this.groupGuard(c);
    const name = need(c.body, "name");
    const members = Array.isArray(c.body.participants) ? c.body.participants.map((p) => toChatId(str(obj(p).id) ?? "")) : [];
    const me = this.meId(s.name);
    const g: FakeGroup = { id: `120363${String(randomBytes(6).readUIntBE(0, 6) % 1e12).padStart(12, "0")}@g.us`, subject: name, participants: [me, ...members] };
    this.groups.set(g.id, g);
    const info = { id: g.id, subject: g.subject, description: null, participants: g.participants.map((id) => ({ id, role: id === me ? "superadmin" : "participant" })) };
    this.emit(s.name, "group.v2.join", { timestamp: this.now(), group: info, _data: {} });
    return { body: this.groupMetadata(s.name, g) };
  }

  /** Our own group changes come back as group.v2.* events, authored by us (WhatsApp notifies every member). */
  private setSubject(c: Ctx): Reply {
    const s = this.groupGuard(c);
    const g = this.group(c);
    g.subject = need(c.body, "subject");
    this.emitGroupUpdate(s.name, g, this.meId(s.name));
    return { status: 200 };
  }

  private participants(c: Ctx): Reply {
    const s = this.groupGuard(c);
    const g = this.group(c);
    const action = c.params[2] === "add" ? "add" : "remove";
    const who = (Array.isArray(c.body.participants) ? c.body.participants : []).map((p) => toChatId(str(obj(p).id) ?? ""));
    this.emitParticipants(s.name, g, action, who, this.meId(s.name));
    return { body: who.map((id) => ({ status: "200", jid: toJid(id) })) };
  }

  private leaveGroup(c: Ctx): Reply {
    const s = this.groupGuard(c);
    this.emitParticipants(s.name, this.group(c), "remove", [this.meId(s.name)], this.meId(s.name));
    return {};
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function respond(res: ServerResponse, status: number, reply: Reply): void {
  if (res.destroyed || res.headersSent) return;
  if (reply.bytes) {
    res.writeHead(status, { "Content-Type": reply.bytes.type, "Content-Length": reply.bytes.data.length });
    res.end(reply.bytes.data);
    return;
  }
  if (reply.body === undefined) {
    res.writeHead(status, { "Content-Length": 0 });
    res.end();
    return;
  }
  const data = Buffer.from(JSON.stringify(reply.body));
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": data.length });
  res.end(data);
}
