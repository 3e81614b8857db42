import { HttpError, NOT_WORKING, nest } from "./errors.js";
import type { FakeSession, FakeState, FakeWaMessage, HangOpts, Json } from "./types.js";
import { ACK_NAMES, bareId, content, EXT, toJid } from "./wa-format.js";
import { Webhooks } from "./webhooks.js";

/**
 * The engine behind FakeWaha's HTTP routes and scripted methods: its message records in WAHA's wire shapes, session
 * lookups, the webhooks, and the scripted state both sides share. FakeWaha's public fields stay on FakeWaha, which tests
 * read and tweak directly; the engine reads them through `fake` on every use.
 */
export class Engine {
  readonly hooks: Webhooks;
  abort = new AbortController();
  readonly origin = new Map<string, { session: string; source: "api" | "app" }>();
  readonly hangs: HangOpts[] = [];
  readonly subscribed = new Set<string>();
  readonly presences = new Map<string, string>();
  readonly statuses = new Map<string, { status: string; timestamp: number }[]>();
  readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly fake: FakeState,
    readonly now: () => number,
  ) {
    this.hooks = new Webhooks(fake, now, () => this.abort.signal);
  }

  // ---------------------------------------------------------------- sessions

  session(name: string): FakeSession {
    const s = this.fake.sessions.get(name);
    if (!s) throw nest(404, "Not Found", `We didn't find a session with name '${name}'.\nPlease start it first by using POST /api/sessions/${name}/start request`);
    return s;
  }

  /** backends.md §0.7 / §2.1: every chatting call goes through getWorkingSession() → 422 {error, session, status, expected}. */
  working(name: string): FakeSession {
    const s = this.session(name);
    if (s.status !== "WORKING") throw new HttpError(422, { error: NOT_WORKING, session: name, status: s.status, expected: ["WORKING"] });
    return s;
  }

  meId(session: string): string {
    return this.fake.sessions.get(session)?.me?.id ?? "me";
  }

  // ---------------------------------------------------------------- messages

  seconds(): number {
    return Math.floor(this.now() / 1000);
  }

  find(id: string): FakeWaMessage | undefined {
    return this.fake.messages.find((m) => m.id === id);
  }

  store(session: string, source: "api" | "app", m: Omit<FakeWaMessage, "timestamp" | "hasMedia" | "edited" | "revoked" | "reactions">): FakeWaMessage {
    const msg: FakeWaMessage = { ...m, timestamp: this.seconds(), hasMedia: m.media !== null, edited: false, revoked: false, reactions: [] };
    this.fake.messages.push(msg);
    this.origin.set(msg.id, { session, source });
    return msg;
  }

  key(m: FakeWaMessage) {
    return { remoteJid: toJid(m.chatId), fromMe: m.fromMe, id: bareId(m.id), participant: m.participant ? toJid(m.participant) : undefined };
  }

  private mediaUrl(session: string, m: FakeWaMessage): string {
    const type = (m.media?.mimetype ?? "").split(";")[0] ?? "";
    return `${this.fake.url}/api/files/${session}/${m.id}.${EXT[type] ?? type.split("/")[1] ?? "bin"}`;
  }

  /**
   * The WAMessage NOWEB puts on the wire (toWAMessage): `from` is always the chat (remoteJid), for our own messages too;
   * `to` and `participant` exist only for group messages from others (key.participant set) and are absent otherwise;
   * `body` is null when empty; `replyTo` is `{id: <bare ID>, participant, body}`; `media` is null when not downloaded.
   */
  wire(m: FakeWaMessage, sessionHint?: string, downloadMedia = true): Json {
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
  baileys(m: FakeWaMessage): Json {
    return { key: this.key(m), message: content(m), messageTimestamp: m.timestamp, status: "PENDING" };
  }

  // ---------------------------------------------------------------- timers

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}
