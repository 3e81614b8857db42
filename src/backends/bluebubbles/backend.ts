import type { Clock } from "../../clock.js";
import type { Config } from "../../config.js";
import type { DeviceEvent } from "../../messages/ingest.js";
import type {
  ActionOutcome, Capabilities, DeviceNumber, GroupCreateOutcome, GroupRef, NewGroup, OutboundAttachment, OutboundMessage, ReconcileOutcome, SendOutcome,
} from "../backend.js";
import { multipart } from "../device-http.js";
import { secretMatches } from "../ingest-route.js";
import { IngestRefused, type IngestRequest, type IngestTools, type LiveBackend } from "../live.js";
import { type BbReply, BlueBubblesClient, bbConfig, chatPath, PRIVATE_API_DOWN } from "./client.js";
import { dmGuid, EFFECT_IDS, handleOf, sameThread } from "./ids.js";
import { type BbMessage, fromNewMessage, fromSendError, fromTyping, fromUpdatedMessage, type NormaliseContext } from "./normalise.js";

/** The events we register for (backends.md §1.4): everything §5 maps onto MsgBubbles. */
const EVENTS = ["new-message", "updated-message", "message-send-error", "typing-indicator", "group-name-change", "participant-added", "participant-removed", "participant-left"];

/**
 * What a refusal says to API clients: the device's own error text can carry its internals (file
 * paths, database errors), and a 5xx body never carries an upstream body (api.md §1).
 */
const refused = (status: number) => `The Mac refused the request (BlueBubbles answered HTTP ${status}).`;

/** BlueBubbles gives up on matching an AppleScript send after 2 minutes; until then a send may still appear. */
const SEND_SETTLE_MS = 150_000;
/** The poller re-reads this far back, so deliveries and reads of recent sends are recovered too. */
const POLL_LOOKBACK_MS = 15 * 60_000;

/**
 * iMessage and SMS through a Mac running BlueBubbles Server (backends.md §1). Our message id is
 * every send's `tempGuid`, so the device's echo and its history can be matched to our message;
 * a send that times out or fails with a 5xx is ambiguous — BlueBubbles often sent it anyway
 * (§0.5) — and is reconciled against the Mac's history before it is ever sent again.
 */
export class BlueBubblesBackend implements LiveBackend {
  readonly name = "bluebubbles" as const;
  private readonly client: BlueBubblesClient;
  /** Whether each number's Mac reported its Private API helper connected at the last health check. */
  private readonly helper = new Map<string, boolean>();

  constructor(private readonly deps: { config: Config; clock: Clock }) {
    this.client = new BlueBubblesClient(deps.config);
  }

  async health(number: DeviceNumber): Promise<"online" | "offline"> {
    const info = await this.client.call(number, "GET", "/server/info");
    if (!info.ok) return "offline";
    this.helper.set(number.id, (info.data as { helper_connected?: boolean } | null)?.helper_connected === true);
    return "online";
  }

  /** Private API when the helper is connected: AppleScript sends break on macOS 26 (§0.6). */
  private async method(number: DeviceNumber): Promise<"private-api" | "apple-script"> {
    if (!this.helper.has(number.id)) await this.health(number);
    return this.helper.get(number.id) ? "private-api" : "apple-script";
  }

  async lookup(number: DeviceNumber, handle: string): Promise<Capabilities> {
    if (!number.channels.includes("imessage")) return { imessage: null, whatsapp: null };
    const r = await this.client.call(number, "GET", "/handle/availability/imessage", { query: { address: handle } });
    if (r.ok) return { imessage: (r.data as { available?: boolean } | null)?.available === true, whatsapp: null };
    // Without the Private API the Mac cannot say: unknown, so iMessage is tried (SMS fallback is the operator's channel list).
    if (r.reached && r.helperDown) return { imessage: null, whatsapp: null };
    throw new Error(`BlueBubbles lookup failed: ${r.message}`);
  }

  private chatGuidOf(m: OutboundMessage): string {
    return m.group?.chatDeviceId ?? dmGuid(m.channel, m.to);
  }

  async send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
    const chatGuid = this.chatGuidOf(m);
    const pa = m.effect !== null || m.replyToDeviceId !== null;
    const method = pa ? "private-api" : await this.method(number);
    const extras = {
      ...(m.effect && EFFECT_IDS[m.effect] ? { effectId: EFFECT_IDS[m.effect] } : {}),
      ...(m.replyToDeviceId ? { selectedMessageGuid: m.replyToDeviceId, partIndex: 0 } : {}),
    };
    let deviceId: string | null = null;
    const files = m.attachments ?? [];
    for (const [i, file] of files.entries()) {
      const r = await this.sendFile(number, chatGuid, method, `${m.id}:${i + 1}`, file, i === 0 ? extras : {});
      const outcome = this.outcomeOf(r, i > 0);
      if (outcome.kind !== "sent") return outcome;
      deviceId ??= outcome.deviceId;
    }
    if (m.text) {
      const r = await this.client.call(number, "POST", "/message/text", {
        json: { chatGuid, tempGuid: m.id, message: m.text, method, ...(files.length ? {} : extras) },
        send: true,
      });
      const outcome = this.outcomeOf(r, files.length > 0);
      if (outcome.kind !== "sent") return outcome;
      deviceId ??= outcome.deviceId;
    }
    return deviceId ? { kind: "sent", deviceId } : { kind: "not_sent", permanent: true, code: "undeliverable", message: "Nothing to send." };
  }

  private sendFile(number: DeviceNumber, chatGuid: string, method: string, tempGuid: string, file: OutboundAttachment, extras: Record<string, unknown>): Promise<BbReply> {
    const fields: Record<string, string | undefined> = { chatGuid, name: file.filename, tempGuid, method, ...(file.voiceNote ? { isAudioMessage: "true" } : {}) };
    for (const [k, v] of Object.entries(extras)) fields[k] = String(v);
    const form = multipart(fields, { field: "attachment", filename: file.filename, mimeType: file.mimeType, open: () => file.open() });
    return this.client.call(number, "POST", "/message/attachment", { form, send: true });
  }

  /**
   * One part's answer as a send outcome. A later part that fails after an earlier one went out is
   * ambiguous, never "not sent": the message is partly on the device and must not be resent whole.
   */
  private outcomeOf(r: BbReply, partlySent: boolean): SendOutcome {
    if (r.ok) return { kind: "sent", deviceId: (r.data as { guid?: string } | null)?.guid ?? "" };
    if (!r.reached) return partlySent ? { kind: "ambiguous", message: r.message } : { kind: "not_sent", permanent: false, code: "device_offline", message: r.message };
    if (r.status === 0) return { kind: "ambiguous", message: r.message }; // sent, then no answer: a timeout
    const sendError = (r.data as { error?: number } | null | undefined)?.error;
    if (sendError) return { kind: "not_sent", permanent: true, code: "undeliverable", message: `The network refused the message (BlueBubbles error ${sendError}).` };
    if (r.helperDown) return { kind: "not_sent", permanent: true, code: "undeliverable", message: PRIVATE_API_DOWN };
    if (r.status === 401) return { kind: "not_sent", permanent: false, code: "device_offline", message: "BlueBubbles refused the server password." };
    // "Message is already queued to be sent!": the same tempGuid is still in flight on the Mac.
    if (r.status >= 500 || /already queued/i.test(r.message)) return { kind: "ambiguous", message: r.message };
    return { kind: "not_sent", permanent: true, code: "undeliverable", message: refused(r.status) };
  }

  /**
   * Did an unresolved send reach the Mac? BlueBubbles' history has no tempGuid, so our message is
   * found as our own row in the same thread with the same text (or file name) since the attempt.
   */
  async reconcile(number: DeviceNumber, m: OutboundMessage): Promise<ReconcileOutcome> {
    const since = (m.attemptedAt ?? this.deps.clock.now()) - POLL_LOOKBACK_MS;
    const r = await this.client.call(number, "POST", "/message/query", { json: { after: since, sort: "DESC", limit: 1000, with: ["chats", "attachments"] } });
    if (!r.ok) return { kind: "unknown" };
    const chatGuid = this.chatGuidOf(m);
    const names = new Set((m.attachments ?? []).map((a) => a.filename));
    const candidates = (r.data as BbMessage[]).filter(
      (row) =>
        row.isFromMe &&
        !row.associatedMessageType &&
        (row.chats ?? []).some((c) => sameThread(c.guid, chatGuid)) &&
        (m.text ? row.text === m.text : (row.attachments ?? []).some((a) => names.has(a.transferName ?? ""))),
    );
    // Oldest first (the query is newest first); an identical message already recorded as another of ours is not this one.
    for (const row of candidates.reverse()) {
      if (!(await m.isKnownDeviceId?.(row.guid))) return { kind: "sent", deviceId: row.guid };
    }
    // Not there yet: BlueBubbles may still be working on it; say so until it cannot be anymore.
    const since2 = this.deps.clock.now() - (m.attemptedAt ?? 0);
    return since2 < SEND_SETTLE_MS ? { kind: "unknown" } : { kind: "absent" };
  }

  private async action(r: Promise<BbReply>): Promise<ActionOutcome> {
    const reply = await r;
    if (reply.ok) return { ok: true };
    if (!reply.reached || reply.status === 0) return { ok: false, offline: true, message: "The Mac running BlueBubbles is unreachable." };
    return { ok: false, offline: false, message: reply.helperDown ? PRIVATE_API_DOWN : refused(reply.status) };
  }

  react: LiveBackend["react"] = (number, target, reaction, remove) =>
    this.action(this.client.call(number, "POST", "/message/react", { json: { chatGuid: target.chatDeviceId ?? dmGuid(target.channel, target.to), selectedMessageGuid: target.deviceId, reaction: remove ? `-${reaction}` : reaction, partIndex: 0 } }));

  edit: LiveBackend["edit"] = (number, target, text) =>
    this.action(this.client.call(number, "POST", `/message/${encodeURIComponent(target.deviceId)}/edit`, { json: { editedMessage: text, backwardsCompatibilityMessage: `Edited to “${text}”`, partIndex: 0 } }));

  unsend: LiveBackend["unsend"] = (number, target) => this.action(this.client.call(number, "POST", `/message/${encodeURIComponent(target.deviceId)}/unsend`, { json: { partIndex: 0 } }));

  markRead: LiveBackend["markRead"] = (number, chat) => this.action(this.client.call(number, "POST", chatPath(chat.chatDeviceId ?? dmGuid(chat.channel, chat.remoteHandle), "/read")));

  typing: LiveBackend["typing"] = (number, chat, state) =>
    this.action(this.client.call(number, state === "start" ? "POST" : "DELETE", chatPath(chat.chatDeviceId ?? dmGuid(chat.channel, chat.remoteHandle), "/typing")));

  async createGroup(number: DeviceNumber, group: NewGroup): Promise<GroupCreateOutcome> {
    const effect = group.firstMessage.effect && EFFECT_IDS[group.firstMessage.effect];
    const r = await this.client.call(number, "POST", "/chat/new", {
      json: { addresses: group.addresses, message: group.firstMessage.text, method: "private-api", service: group.channel === "sms" ? "SMS" : "iMessage", tempGuid: group.firstMessage.id, ...(effect ? { effectId: effect } : {}) },
      send: true,
    });
    if (!r.ok) return { ok: false, offline: !r.reached, message: !r.reached ? "The Mac running BlueBubbles is unreachable." : r.helperDown ? PRIVATE_API_DOWN : refused(r.status) };
    const chat = r.data as { guid: string; messages?: { guid: string }[] };
    // chat/new takes no name: the title is set right after. The group exists either way, so a
    // refused rename does not undo it (the title can be set again with PATCH /v1/chats/:id).
    if (group.title) await this.client.call(number, "PUT", chatPath(chat.guid), { json: { displayName: group.title } });
    return { ok: true, chatDeviceId: chat.guid, firstMessageDeviceId: chat.messages?.[0]?.guid ?? "" };
  }

  renameGroup(number: DeviceNumber, group: GroupRef, title: string | null): Promise<ActionOutcome> {
    return this.action(this.client.call(number, "PUT", chatPath(group.chatDeviceId), { json: { displayName: title ?? "" } }));
  }

  addParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return this.action(this.client.call(number, "POST", chatPath(group.chatDeviceId, "/participant/add"), { json: { address: handle } }));
  }

  removeParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return this.action(this.client.call(number, "POST", chatPath(group.chatDeviceId, "/participant/remove"), { json: { address: handle } }));
  }

  /** Registers our ingest URL with the Mac once; an older URL of ours (a rotated secret, a new PUBLIC_URL) is removed. */
  async subscribe(number: DeviceNumber, url: string): Promise<void> {
    const list = await this.client.call(number, "GET", "/webhook");
    if (!list.ok) throw new Error(`BlueBubbles webhook list failed: ${list.message}`);
    const hooks = (list.data as { id: number; url: string }[] | null) ?? [];
    if (hooks.some((h) => h.url === url)) return;
    const ours = `/ingest/bluebubbles/${number.id}`;
    for (const h of hooks.filter((h) => h.url.includes(ours))) await this.client.call(number, "DELETE", `/webhook/${h.id}`);
    const added = await this.client.call(number, "POST", "/webhook", { json: { url, events: EVENTS } });
    if (!added.ok) throw new Error(`BlueBubbles webhook registration failed: ${added.message}`);
  }

  private context(number: DeviceNumber, tools: IngestTools): NormaliseContext {
    return {
      number,
      tools,
      download: async (guid) => {
        const file = await this.client.download(number, guid);
        return file ? { stream: file.stream, mimeType: file.mimeType } : null;
      },
      deviceParticipants: async (chatGuid) => {
        const r = await this.client.call(number, "GET", chatPath(chatGuid), { query: { with: "participants" } });
        if (!r.ok) return null;
        return ((r.data as { participants?: { address?: string }[] }).participants ?? []).map((p) => handleOf(p.address)).filter((h): h is string => h !== null);
      },
    };
  }

  /** BlueBubbles does not sign its webhooks: the secret in our ingest URL is what authenticates them. */
  async ingest(number: DeviceNumber, req: IngestRequest, tools: IngestTools): Promise<DeviceEvent[]> {
    if (!secretMatches(req.query.secret, bbConfig(number).ingestSecret)) throw new IngestRefused("The ingest secret does not match.");
    const { type, data } = (req.body ?? {}) as { type?: string; data?: unknown };
    if (!data || typeof data !== "object") return [];
    switch (type) {
      case "new-message":
      case "group-name-change":
      case "participant-added":
      case "participant-removed":
      case "participant-left":
        return fromNewMessage(data as BbMessage, this.context(number, tools));
      case "updated-message":
        return fromUpdatedMessage(data as BbMessage);
      case "message-send-error":
        return fromSendError(data as BbMessage);
      case "typing-indicator":
        return fromTyping(data as { display?: boolean; guid?: string }, number, this.deps.clock.now());
      default:
        return [];
    }
  }

  /**
   * Recovers what webhooks missed (BlueBubbles fires each once, never retries, §0.1): rows created
   * since the cursor, re-read a little further back so recent sends' deliveries and reads are seen.
   * Applying them is idempotent (messages by GUID, acks only forward, reactions only on change).
   * Group changes are left to webhooks: the poll cannot tell which member a past change affected.
   */
  async poll(number: DeviceNumber, cursor: number, tools: IngestTools): Promise<{ events: DeviceEvent[]; cursor: number }> {
    const after = Math.min(cursor - 60_000, this.deps.clock.now() - POLL_LOOKBACK_MS);
    const r = await this.client.call(number, "POST", "/message/query", { json: { after, sort: "ASC", limit: 1000, with: ["chats", "chats.participants", "attachments"] } });
    if (!r.ok) throw new Error(`BlueBubbles query failed: ${r.message}`);
    const rows = (r.data as BbMessage[] | null) ?? [];
    const ctx = this.context(number, tools);
    const events: DeviceEvent[] = [];
    let next = cursor;
    for (const row of rows) {
      next = Math.max(next, row.dateCreated ?? 0);
      if ((row.itemType ?? 0) !== 0) continue;
      if (!row.isFromMe) {
        // Skip a message we already have before downloading its media again.
        if (row.associatedMessageType || !(await tools.messageByDeviceId(row.guid))) events.push(...(await fromNewMessage(row, ctx)));
      }
      events.push(...fromUpdatedMessage(row));
    }
    return { events, cursor: next };
  }
}
