import { createHmac, timingSafeEqual } from "node:crypto";
import type { Config } from "../../config.js";
import { type Clock, systemClock } from "../../clock.js";
import type { DeviceEvent } from "../../messages/ingest.js";
import type { WahaConfig } from "../../numbers/backend-config.js";
import type {
  ActionOutcome, Capabilities, DeviceNumber, GroupCreateOutcome, GroupRef, MessageTarget, NewGroup, OutboundMessage, ReconcileOutcome, SendOutcome,
} from "../backend.js";
import { digitsOf } from "../device-http.js";
import { secretMatches } from "../ingest-route.js";
import { ingestUrlFor } from "../monitor.js";
import { IngestRefused, type IngestRequest, type IngestTools, type LiveBackend } from "../live.js";
import { WahaClient, type WahaReply, seg, wahaConfig } from "./client.js";
import { handleOfJid, isGroupChat, parseMessageId, personChat } from "./ids.js";
import {
  type Envelope, fromAck, fromEdited, fromGroupChange, fromMessage, fromPresence, fromReaction, fromRevoked, type NormaliseContext, type WaMessage,
} from "./normalise.js";
import { reconcileMessage, sendMessage } from "./send.js";
import { configOf, subscribeWebhook, webhooksWithOurs } from "./subscribe.js";

/**
 * WhatsApp through a WAHA server (backends.md §2.1), one WAHA session per number. A session that
 * is not WORKING answers every chatting call with 422 — that is `device_offline`. Sends are
 * synchronous; a send that times out or fails with a 5xx may still have gone out, and is
 * reconciled against the chat's history before it is ever sent again.
 *
 * No `poll`: WAHA has no cross-chat "messages since" query (history is per chat, and listing
 * every chat to read each one's history would cost a call per chat per round). Missed webhooks
 * are WAHA's to retry — Plus retries them (`retries` on the webhook); Core sends each once.
 */
export class WahaBackend implements LiveBackend {
  readonly name = "waha" as const;
  private readonly client: WahaClient;
  /** Chats whose presence we subscribed to, per number (WAHA forgets them when the session restarts). */
  private readonly presence = new Map<string, Set<string>>();

  constructor(private readonly deps: { config: Config; clock?: Clock }) {
    this.client = new WahaClient(deps.config);
  }

  private session(number: DeviceNumber): string {
    return wahaConfig(number).session;
  }

  /**
   * WORKING is online; any other status, or no answer, is offline. The session we just read also
   * says whether our webhook is still there: a session deleted and re-created to link the phone
   * again has lost it, and the monitor, which subscribes only when our URL changes, would never
   * know. It is put back then (the PUT restarts the session, as it must to take it).
   */
  async health(number: DeviceNumber): Promise<"online" | "offline"> {
    const r = await this.client.call(number, "GET", `/api/sessions/${seg(this.session(number))}`);
    const working = r.ok && (r.data as { status?: string } | null)?.status === "WORKING";
    if (!working) {
      this.presence.delete(number.id);
      return "offline";
    }
    const publicUrl = this.deps.config.PUBLIC_URL;
    const url = publicUrl ? ingestUrlFor(publicUrl, this.name, number.id, wahaConfig(number).ingestSecret) : null;
    if (url && webhooksWithOurs(configOf(r.data), number, url)) await this.subscribe(number, url, r.data).catch(() => undefined);
    return "online";
  }

  async lookup(number: DeviceNumber, handle: string): Promise<Capabilities> {
    if (!number.channels.includes("whatsapp") || !handleOfJid(personChat(handle))) return { imessage: null, whatsapp: null };
    const r = await this.client.call(number, "GET", "/api/contacts/check-exists", { query: { session: this.session(number), phone: digitsOf(handle) } });
    if (!r.ok) throw new Error(`WAHA check-exists failed: ${r.message}`);
    return { imessage: null, whatsapp: (r.data as { numberExists?: boolean } | null)?.numberExists === true };
  }

  async send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
    const outcome = await sendMessage(this.client, number, m);
    // Not awaited: the send's outcome is what the dispatcher waits for (watchPresence never throws).
    if (outcome.kind === "sent" && !m.group) void this.watchPresence(number, personChat(m.to));
    return outcome;
  }

  reconcile(number: DeviceNumber, m: OutboundMessage): Promise<ReconcileOutcome> {
    return reconcileMessage(this.client, number, m);
  }

  /** 2xx → done; not WORKING or unreachable → offline (503); anything else → refused with WAHA's sentence (502). */
  private async action(r: Promise<WahaReply>): Promise<ActionOutcome> {
    const reply = await r;
    if (reply.ok) return { ok: true };
    if (reply.failure === "unreachable") return { ok: false, offline: true, message: "The WAHA server is unreachable." };
    if (reply.failure === "not_working") return { ok: false, offline: true, message: "The WhatsApp session is not working." };
    // Never WAHA's own error text: it can carry its internals, and a 5xx body never carries an upstream body (api.md §1).
    return { ok: false, offline: false, message: reply.failure === "auth" ? "WAHA refused the API key (check the number's --api-key)." : `WAHA refused the request (HTTP ${reply.status}).` };
  }

  /** The chat a message lives in: the group, else the chat its id names, else the contact's. */
  private chatOf(target: MessageTarget): string {
    return target.chatDeviceId ?? parseMessageId(target.deviceId)?.chatId ?? personChat(target.to);
  }

  private messagePath(number: DeviceNumber, target: MessageTarget): string {
    return `/api/${seg(this.session(number))}/chats/${seg(this.chatOf(target))}/messages/${seg(target.deviceId)}`;
  }

  react(number: DeviceNumber, target: MessageTarget, reaction: string, remove: boolean): Promise<ActionOutcome> {
    const json = { session: this.session(number), messageId: target.deviceId, reaction: remove ? "" : reaction };
    return this.action(this.client.call(number, "PUT", "/api/reaction", { json }));
  }

  edit(number: DeviceNumber, target: MessageTarget, text: string): Promise<ActionOutcome> {
    return this.action(this.client.call(number, "PUT", this.messagePath(number, target), { json: { text } }));
  }

  unsend(number: DeviceNumber, target: MessageTarget): Promise<ActionOutcome> {
    return this.action(this.client.call(number, "DELETE", this.messagePath(number, target)));
  }

  markRead(number: DeviceNumber, chat: { remoteHandle: string; chatDeviceId?: string }): Promise<ActionOutcome> {
    const json = { session: this.session(number), chatId: chat.chatDeviceId ?? personChat(chat.remoteHandle) };
    return this.action(this.client.call(number, "POST", "/api/sendSeen", { json }));
  }

  typing(number: DeviceNumber, chat: { remoteHandle: string; chatDeviceId?: string }, state: "start" | "stop"): Promise<ActionOutcome> {
    const json = { session: this.session(number), chatId: chat.chatDeviceId ?? personChat(chat.remoteHandle) };
    return this.action(this.client.call(number, "POST", state === "start" ? "/api/startTyping" : "/api/stopTyping", { json }));
  }

  private groupPath(number: DeviceNumber, group: GroupRef, rest: string): string {
    return `/api/${seg(this.session(number))}/groups/${seg(group.chatDeviceId)}${rest}`;
  }

  /**
   * Creates the group, then sends its first message into it. WhatsApp needs a subject, so an
   * untitled group is named after its members (as WhatsApp's own apps do). If the first message
   * cannot be sent the group still exists on WhatsApp: the refusal says so, with its id.
   */
  async createGroup(number: DeviceNumber, group: NewGroup): Promise<GroupCreateOutcome> {
    if (group.addresses.some((a) => !handleOfJid(personChat(a)))) return { ok: false, offline: false, message: "WhatsApp groups take phone numbers only." };
    const session = this.session(number);
    const name = (group.title ?? group.addresses.join(", ")).slice(0, 100);
    const created = await this.client.call(number, "POST", `/api/${seg(session)}/groups`, { json: { name, participants: group.addresses.map((a) => ({ id: personChat(a) })) }, send: true });
    if (!created.ok) {
      const failed = await this.action(Promise.resolve(created));
      return failed.ok ? { ok: false, offline: false, message: "WAHA did not create the group." } : failed;
    }
    const data = (created.data ?? {}) as { id?: unknown; gid?: { _serialized?: unknown } };
    const chatDeviceId = typeof data.id === "string" ? data.id : typeof data.gid?._serialized === "string" ? data.gid._serialized : null;
    if (!chatDeviceId || !isGroupChat(chatDeviceId)) return { ok: false, offline: false, message: "WAHA created the group but did not say its id." };
    const first = { id: group.firstMessage.id, to: chatDeviceId, channel: group.channel, text: group.firstMessage.text, effect: null, replyToDeviceId: null, voiceMemo: false };
    const target = { ...first, group: { chatDeviceId, channel: group.channel, participants: group.addresses } };
    let sent = await sendMessage(this.client, number, target);
    if (sent.kind === "ambiguous") sent = await reconcileMessage(this.client, number, { ...target, attemptedAt: 0 }).then((r) => (r.kind === "sent" ? r : sent));
    if (sent.kind === "sent") return { ok: true, chatDeviceId, firstMessageDeviceId: sent.deviceId };
    const why = sent.kind === "not_sent" ? sent.message : "WAHA did not confirm it.";
    return { ok: false, offline: false, message: `WhatsApp created the group ${chatDeviceId}, but its first message was not sent: ${why}` };
  }

  renameGroup(number: DeviceNumber, group: GroupRef, title: string | null): Promise<ActionOutcome> {
    if (!title) return Promise.resolve({ ok: false, offline: false, message: "WhatsApp groups always have a name: give a title." });
    return this.action(this.client.call(number, "PUT", this.groupPath(number, group, "/subject"), { json: { subject: title } }));
  }

  addParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return this.participants(number, group, "add", handle);
  }

  removeParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return this.participants(number, group, "remove", handle);
  }

  /** NOWEB answers per member `[{status, jid}]`: a 2xx whose member status is not 200 (403: their privacy settings) is a refusal. */
  private async participants(number: DeviceNumber, group: GroupRef, action: "add" | "remove", handle: string): Promise<ActionOutcome> {
    const json = { participants: [{ id: personChat(handle) }] };
    const r = await this.client.call(number, "POST", this.groupPath(number, group, `/participants/${action}`), { json });
    const refused = r.ok && Array.isArray(r.data) ? (r.data as { status?: unknown }[]).find((p) => p.status !== undefined && String(p.status) !== "200") : undefined;
    if (refused) return { ok: false, offline: false, message: `WhatsApp refused to ${action} ${handle} (status ${String(refused.status)}).` };
    return this.action(Promise.resolve(r));
  }

  async subscribe(number: DeviceNumber, url: string, session?: unknown): Promise<void> {
    await subscribeWebhook(this.client, number, url, session);
    this.presence.delete(number.id); // a restarted session has forgotten them
  }

  /** Subscribes to a contact's presence once per session run (WAHA reports presence of subscribed chats only). */
  private async watchPresence(number: DeviceNumber, chatId: string): Promise<void> {
    const seen = this.presence.get(number.id) ?? new Set<string>();
    this.presence.set(number.id, seen);
    if (seen.has(chatId)) return;
    const r = await this.client.call(number, "POST", `/api/${seg(this.session(number))}/presence/${seg(chatId)}/subscribe`);
    if (r.ok) seen.add(chatId);
  }

  /**
   * Authenticates one webhook: the secret in our ingest URL, and — when WAHA signs (Plus; Core
   * does not) — `X-Webhook-Hmac`, the hex HMAC-SHA512 of the exact body keyed with the same secret.
   */
  private authenticate(cfg: WahaConfig, req: IngestRequest): void {
    if (!secretMatches(req.query.secret, cfg.ingestSecret)) throw new IngestRefused("The ingest secret does not match.");
    const header = req.headers["x-webhook-hmac"];
    if (header === undefined) return;
    const given = Buffer.from(typeof header === "string" ? header.trim() : "", "hex");
    const expected = createHmac("sha512", cfg.ingestSecret).update(req.rawBody).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new IngestRefused("The webhook's HMAC signature does not match.");
  }

  private context(number: DeviceNumber, env: Envelope, tools: IngestTools): NormaliseContext {
    const own = new Set([digitsOf(number.handle)]);
    const me = env.me?.id?.split("@")[0]?.split(":")[0];
    if (me) own.add(digitsOf(me));
    return {
      number,
      tools,
      at: typeof env.timestamp === "number" && env.timestamp > 0 ? env.timestamp : (this.deps.clock ?? systemClock).now(),
      own,
      download: (url) => this.client.download(number, url),
      groupInfo: async (chatId) => {
        const r = await this.client.call(number, "GET", `/api/${seg(this.session(number))}/groups/${seg(chatId)}`);
        if (!r.ok) return null;
        const g = (r.data ?? {}) as { subject?: unknown; participants?: { id?: unknown }[] };
        const participants = (g.participants ?? []).map((p) => handleOfJid(p.id)).filter((h): h is string => h !== null);
        return { participants, title: typeof g.subject === "string" && g.subject ? g.subject : null };
      },
      heardFrom: (chatId) => this.watchPresence(number, chatId),
    };
  }

  async ingest(number: DeviceNumber, req: IngestRequest, tools: IngestTools): Promise<DeviceEvent[]> {
    const cfg = wahaConfig(number);
    this.authenticate(cfg, req);
    const env = (req.body ?? {}) as Envelope;
    if (env.session !== cfg.session || !env.payload || typeof env.payload !== "object") return [];
    const ctx = this.context(number, env, tools);
    const payload = env.payload as WaMessage & Record<string, unknown>;
    switch (env.event) {
      case "message":
        return fromMessage(payload, ctx);
      case "message.ack":
      case "message.ack.group":
        return fromAck(payload, ctx);
      case "message.reaction":
        return fromReaction(payload, ctx);
      case "message.edited":
        return fromEdited(payload, ctx);
      case "message.revoked":
        return fromRevoked(payload as Parameters<typeof fromRevoked>[0], ctx);
      case "presence.update":
        return fromPresence(payload as Parameters<typeof fromPresence>[0], ctx);
      case "group.v2.participants":
      case "group.v2.update":
        return fromGroupChange(env.event, payload as Parameters<typeof fromGroupChange>[1], ctx);
      default:
        // session.status included: the device monitor owns the number's status (health checks).
        return [];
    }
  }
}
