import { HttpError, NOT_WORKING, nest } from "./errors.js";
import type { FakeGroup, FakeSession, FakeWaMessage, Json } from "./types.js";
import { ACK_NAMES, bareId, content, EXT, toJid } from "./wa-format.js";

/**
 * The bottom layer of FakeWaha: what it holds, its message records in WAHA's wire shapes, and session lookups.
 * The public fields here are FakeWaha's public fields, which tests read and tweak directly.
 */
export abstract class WahaState {
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

  protected readonly now: () => number;
  protected abort = new AbortController();
  protected readonly origin = new Map<string, { session: string; source: "api" | "app" }>();

  constructor(opts: { apiKey?: string; now?: () => number } = {}) {
    this.apiKey = opts.apiKey ?? "fake-key";
    this.now = opts.now ?? Date.now;
  }

  // ---------------------------------------------------------------- sessions

  protected session(name: string): FakeSession {
    const s = this.sessions.get(name);
    if (!s) throw nest(404, "Not Found", `We didn't find a session with name '${name}'.\nPlease start it first by using POST /api/sessions/${name}/start request`);
    return s;
  }

  /** backends.md §0.7 / §2.1: every chatting call goes through getWorkingSession() → 422 {error, session, status, expected}. */
  protected working(name: string): FakeSession {
    const s = this.session(name);
    if (s.status !== "WORKING") throw new HttpError(422, { error: NOT_WORKING, session: name, status: s.status, expected: ["WORKING"] });
    return s;
  }

  protected meId(session: string): string {
    return this.sessions.get(session)?.me?.id ?? "me";
  }

  // ---------------------------------------------------------------- messages

  protected seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  protected find(id: string): FakeWaMessage | undefined {
    return this.messages.find((m) => m.id === id);
  }

  protected store(session: string, source: "api" | "app", m: Omit<FakeWaMessage, "timestamp" | "hasMedia" | "edited" | "revoked" | "reactions">): FakeWaMessage {
    const msg: FakeWaMessage = { ...m, timestamp: this.seconds(), hasMedia: m.media !== null, edited: false, revoked: false, reactions: [] };
    this.messages.push(msg);
    this.origin.set(msg.id, { session, source });
    return msg;
  }

  protected key(m: FakeWaMessage) {
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
  protected wire(m: FakeWaMessage, sessionHint?: string, downloadMedia = true): Json {
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
  protected baileys(m: FakeWaMessage): Json {
    return { key: this.key(m), message: content(m), messageTimestamp: m.timestamp, status: "PENDING" };
  }
}
