import type { InboundMedia } from "../../attachments/inbound.js";
import type { DeviceGroup } from "../../chats/group-ingest.js";
import type { DeviceEvent } from "../../messages/ingest.js";
import { digitsOf } from "../device-http.js";
import type { DeviceNumber } from "../backend.js";
import type { IngestTools } from "../live.js";
import { contactIdCandidates, firstHandle, idCandidates, isGroupChat, toCus } from "./ids.js";

/**
 * WAHA webhooks → device events (backends.md §2.1 "Webhooks", §5). The envelope is
 * `{session, event, payload, me, timestamp}`. Conventions of NOWEB's payloads this relies on:
 * `from` is always the chat (our own messages included), the author of a group message is
 * `participant`, message timestamps are seconds while group events and envelopes are ms, and our
 * own edits, reactions and revokes come back with `fromMe: true` — the API already recorded them.
 */

export interface WaMessage {
  id?: string;
  timestamp?: number;
  from?: string;
  fromMe?: boolean;
  participant?: string;
  body?: string | null;
  hasMedia?: boolean;
  media?: { url?: string | null; mimetype?: string | null; filename?: string | null } | null;
  ack?: number;
  location?: { latitude?: number; longitude?: number; description?: string | null } | null;
  vCards?: string[] | null;
  editedMessageId?: string;
  reaction?: { text?: string; messageId?: string };
  _data?: { key?: Record<string, unknown> };
}

export interface Envelope {
  session?: string;
  event?: string;
  timestamp?: number;
  me?: { id?: string } | null;
  payload?: unknown;
}

/** What normalising needs besides the payload: the ingest tools and the device itself. */
export interface NormaliseContext {
  number: DeviceNumber;
  tools: IngestTools;
  /** When the envelope says it happened (ms), else now. */
  at: number;
  /** Digits of our own number as WhatsApp knows it (the number's handle, and the session's `me`). */
  own: Set<string>;
  download(url: string): Promise<InboundMedia | null>;
  /** The group's members and subject from WAHA, for a group new to us (null: WAHA cannot say). */
  groupInfo(chatId: string): Promise<{ participants: string[]; title: string | null } | null>;
  /** A contact's 1:1 chat we heard from: WAHA only reports presence of subscribed chats. */
  heardFrom(chatId: string): Promise<void>;
}

const base = (ctx: NormaliseContext) => ({ numberHandle: ctx.number.handle, mode: "live" as const });
const secondsToMs = (s: number | undefined, fallback: number) => (typeof s === "number" && s > 0 ? s * 1000 : fallback);
const isOwn = (ctx: NormaliseContext, jid: unknown) => typeof jid === "string" && ctx.own.has(digitsOf(jid.split("@")[0]?.split(":")[0] ?? ""));

/** The first id of `candidates` we have a message for (exact lookups); else the first, which then matches nothing. */
async function resolve(tools: IngestTools, candidates: string[]): Promise<string> {
  for (const id of candidates) if (await tools.messageByDeviceId(id)) return id;
  return candidates[0] ?? "";
}

/** Text for what WAHA delivers without a body: a location, contact cards. */
function textOf(m: WaMessage): string | null {
  if (m.body) return m.body;
  if (m.location && typeof m.location.latitude === "number") {
    return `📍 ${m.location.latitude},${m.location.longitude}${m.location.description ? ` ${m.location.description}` : ""}`;
  }
  if (m.vCards?.length) return m.vCards.join("\n");
  return null;
}

/**
 * `message`: a contact's message, 1:1 or in a group. Its sender is the chat (1:1) or
 * `participant` (group); `@lid` privacy ids carry no number, so NOWEB's phone-number alternates
 * (`senderPn`, `participantPn`, `*Alt`) are tried. Media is fetched and stored first.
 */
export async function fromMessage(m: WaMessage, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  if (m.fromMe || !m.id || !m.from) return [];
  const chat = toCus(m.from);
  const key = m._data?.key ?? {};
  const group = isGroupChat(chat);
  const from = group ? firstHandle(m.participant, key.participant, key.participantPn, key.participantAlt) : firstHandle(chat, key.senderPn, key.remoteJidAlt);
  if (!from) return []; // status broadcasts, newsletters, senders without a phone number
  const attachmentIds: string[] = [];
  if (m.hasMedia && m.media?.url) {
    const media = await ctx.download(m.media.url);
    if (media) attachmentIds.push(await ctx.tools.storeMedia({ ...media, filename: m.media.filename ?? undefined, mimeType: m.media.mimetype ?? media.mimeType }));
  }
  const text = textOf(m);
  if (text === null && attachmentIds.length === 0) return [];
  let deviceGroup: DeviceGroup | undefined;
  if (group) {
    // A group new to us is created with its members: ask WAHA only then.
    const known = await ctx.tools.groupParticipants(chat);
    const info = known ? null : await ctx.groupInfo(chat);
    deviceGroup = { chatDeviceId: chat, participants: info ? info.participants : [from], ...(info?.title ? { title: info.title } : {}) };
  } else {
    await ctx.heardFrom(chat);
  }
  return [
    {
      kind: "received",
      ...base(ctx),
      from,
      text,
      channel: "whatsapp",
      deviceId: m.id,
      at: secondsToMs(m.timestamp, ctx.at),
      ...(deviceGroup ? { group: deviceGroup } : {}),
      ...(attachmentIds.length ? { attachmentIds } : {}),
    },
  ];
}

/**
 * `message.ack` / `message.ack.group` on our own messages: 2 DEVICE → delivered, 3 READ and
 * 4 PLAYED → read, −1 ERROR → failed; 0 PENDING and 1 SERVER add nothing (`sent` is the send's
 * answer). Status only moves forward (applyDeviceEvents), so late and repeated acks are harmless.
 */
export async function fromAck(m: WaMessage, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  if (!m.fromMe || !m.id || typeof m.ack !== "number") return [];
  const deviceId = await resolve(ctx.tools, idCandidates(m.id));
  if (m.ack === 2) return [{ kind: "delivered", deviceId, at: ctx.at }];
  if (m.ack === 3 || m.ack === 4) return [{ kind: "read", deviceId, at: ctx.at }];
  if (m.ack === -1) return [{ kind: "failed", deviceId, code: "undeliverable", message: "WhatsApp reported the message as failed (ack ERROR)." }];
  return [];
}

/** `message.reaction` by a contact; an empty text removes whatever they had (WhatsApp allows one each). */
export async function fromReaction(m: WaMessage, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  const target = m.reaction?.messageId;
  if (m.fromMe || !target || !m.from) return [];
  const key = m._data?.key ?? {};
  const from = isGroupChat(m.from) ? firstHandle(m.participant, key.participant, key.participantPn) : firstHandle(m.from, key.senderPn, key.remoteJidAlt);
  if (!from) return [];
  const text = m.reaction?.text ?? "";
  const targetDeviceId = await resolve(ctx.tools, idCandidates(target));
  return [{ kind: "reaction", ...base(ctx), from, targetDeviceId, reaction: text, remove: text === "", at: secondsToMs(m.timestamp, ctx.at) }];
}

/** `message.edited`: the edit's own message, with the new `body` and the bare `editedMessageId`. */
export async function fromEdited(m: WaMessage, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  if (m.fromMe || !m.from || !m.editedMessageId || typeof m.body !== "string") return [];
  const deviceId = await resolve(ctx.tools, contactIdCandidates(m.from, m.editedMessageId, m.participant ?? null));
  return [{ kind: "edited", deviceId, text: m.body, at: secondsToMs(m.timestamp, ctx.at) }];
}

/** `message.revoked {after, before, revokedMessageId}`: a contact deleted their message for everyone. */
export async function fromRevoked(p: { after?: WaMessage | null; before?: WaMessage | null; revokedMessageId?: string }, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  const m = p.after ?? p.before;
  if (!m || m.fromMe || !m.from) return [];
  const candidates = p.before?.id ? [p.before.id] : [];
  if (p.revokedMessageId) candidates.push(...contactIdCandidates(m.from, p.revokedMessageId, m.participant ?? null));
  if (candidates.length === 0) return [];
  return [{ kind: "unsent", deviceId: await resolve(ctx.tools, candidates), at: secondsToMs(m.timestamp, ctx.at) }];
}

/**
 * `presence.update {id, presences:[{participant, lastKnownPresence}]}`: typing (or recording a
 * voice note) starts the indicator, paused stops it. 1:1 chats only: a typing event names a
 * contact's thread, and in a group it would be filed under that member's 1:1 chat.
 */
export function fromPresence(p: { id?: string; presences?: { participant?: string; lastKnownPresence?: string }[] }, ctx: NormaliseContext): DeviceEvent[] {
  if (!p.id || isGroupChat(p.id)) return [];
  const events: DeviceEvent[] = [];
  for (const presence of p.presences ?? []) {
    const state = presence.lastKnownPresence === "typing" || presence.lastKnownPresence === "recording" ? "start" : presence.lastKnownPresence === "paused" ? "stop" : null;
    const from = firstHandle(presence.participant, p.id);
    if (!state || !from || isOwn(ctx, presence.participant)) continue;
    events.push({ kind: "typing", ...base(ctx), from, state, at: ctx.at });
  }
  return events;
}

interface GroupPayload {
  group?: { id?: string; subject?: string };
  type?: string;
  timestamp?: number;
  participants?: { id?: string }[];
  author?: string;
  _data?: { author?: string; subject?: string };
}

/**
 * `group.v2.participants` (join / leave) and `group.v2.update` (a new subject) by another member.
 * Changes our own number made come back too, authored by us: the API already recorded those.
 */
export function fromGroupChange(event: string, p: GroupPayload, ctx: NormaliseContext): DeviceEvent[] {
  const chatDeviceId = p.group?.id;
  if (!chatDeviceId || !isGroupChat(chatDeviceId)) return [];
  const author = p.author ?? p._data?.author;
  if (isOwn(ctx, author)) return [];
  const by = firstHandle(author);
  const at = typeof p.timestamp === "number" && p.timestamp > 0 ? p.timestamp : ctx.at;
  const change = { kind: "group_changed" as const, ...base(ctx), chatDeviceId, by, at };
  if (event === "group.v2.update") {
    const subject = p.group?.subject ?? p._data?.subject;
    return typeof subject === "string" ? [{ ...change, change: { type: "renamed", title: subject || null } }] : [];
  }
  const type = p.type === "join" ? "participant_added" : p.type === "leave" ? "participant_removed" : null;
  if (!type) return []; // promote / demote: admin rights, which MsgBubbles does not model
  return (p.participants ?? [])
    .map((x) => firstHandle(x.id))
    .filter((h): h is string => h !== null && h !== ctx.number.handle)
    .map((handle) => ({ ...change, change: { type, handle } }));
}
