import type { ChannelName } from "../../db/schema.js";
import type { DeviceEvent } from "../../messages/ingest.js";
import { TAPBACKS } from "../../messages/schemas.js";
import type { DeviceNumber } from "../backend.js";
import type { InboundMedia } from "../../attachments/inbound.js";
import type { IngestTools } from "../live.js";
import { handleOf, isGroupGuid, messageIdOfTempGuid, tapbackTarget } from "./ids.js";

/** A BlueBubbles Message as its webhooks and queries serialize it (MessageSerializer.ts); only what we read. */
export interface BbMessage {
  guid: string;
  tempGuid?: string | null;
  text?: string | null;
  isFromMe?: boolean;
  handle?: { address?: string; service?: string } | null;
  dateCreated?: number | null;
  dateDelivered?: number | null;
  dateRead?: number | null;
  isDelivered?: boolean;
  dateEdited?: number | null;
  dateRetracted?: number | null;
  error?: number;
  associatedMessageGuid?: string | null;
  associatedMessageType?: string | null;
  itemType?: number;
  groupTitle?: string | null;
  groupActionType?: number;
  chats?: { guid: string; displayName?: string | null; participants?: { address?: string }[] }[];
  attachments?: { guid: string; transferName?: string | null; mimeType?: string | null }[];
}

/** What normalising needs besides the message: the ingest tools and the device itself. */
export interface NormaliseContext {
  number: DeviceNumber;
  tools: IngestTools;
  download(attachmentGuid: string): Promise<InboundMedia | null>;
  /** The group's members as the device lists them now (BlueBubbles names the affected member only by ROWID). */
  deviceParticipants(chatGuid: string): Promise<string[] | null>;
}

const at = (m: BbMessage) => m.dateCreated ?? 0;
const channelOf = (m: BbMessage): ChannelName => (m.handle?.service === "SMS" || m.chats?.[0]?.guid.startsWith("SMS;") ? "sms" : "imessage");

/**
 * `new-message` (backends.md §1.4, §5): our own sends echo back (with `tempGuid` when BlueBubbles
 * matched them to our call) — proof they went out; a contact's row is an inbound message, a
 * tapback (`associatedMessageType`), or a group change (`itemType` ≠ 0).
 */
export async function fromNewMessage(m: BbMessage, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  if (m.isFromMe) {
    if (!m.tempGuid || m.associatedMessageType || (m.itemType ?? 0) !== 0) return [];
    const messageId = messageIdOfTempGuid(m.tempGuid);
    if (m.error) return [{ kind: "send_failed", messageId, deviceId: m.guid, code: "undeliverable", message: `BlueBubbles reported send error ${m.error}.` }];
    return [{ kind: "sent", messageId, deviceId: m.guid, at: at(m) }];
  }
  if ((m.itemType ?? 0) !== 0) return fromGroupChange(m, ctx);
  const from = handleOf(m.handle?.address);
  if (!from) return [];
  const base = { numberHandle: ctx.number.handle, mode: "live" as const, from, at: at(m) };
  if (m.associatedMessageType) {
    const remove = m.associatedMessageType.startsWith("-");
    const name = m.associatedMessageType.replace(/^-/, "");
    // Stickers and iOS 18 emoji tapbacks (raw codes such as "2006") have no MsgBubbles reaction.
    if (!(TAPBACKS as readonly string[]).includes(name) || !m.associatedMessageGuid) return [];
    return [{ kind: "reaction", ...base, targetDeviceId: tapbackTarget(m.associatedMessageGuid), reaction: name, remove }];
  }
  const chat = m.chats?.[0];
  const attachmentIds: string[] = [];
  for (const a of m.attachments ?? []) {
    const media = await ctx.download(a.guid);
    if (media) attachmentIds.push(await ctx.tools.storeMedia({ ...media, filename: a.transferName ?? media.filename, mimeType: a.mimeType ?? media.mimeType }));
  }
  const group =
    chat && isGroupGuid(chat.guid)
      ? {
          group: {
            chatDeviceId: chat.guid,
            participants: (chat.participants ?? []).map((p) => handleOf(p.address)).filter((h): h is string => h !== null && h !== ctx.number.handle),
            title: chat.displayName || null,
          },
        }
      : {};
  return [
    {
      kind: "received",
      ...base,
      text: m.text || null,
      channel: channelOf(m),
      deviceId: m.guid,
      ...group,
      ...(attachmentIds.length ? { attachmentIds } : {}),
    },
  ];
}

/**
 * `updated-message` — without chats (backends.md §0.2), so everything is found by message GUID in
 * our own records: on our messages, delivered / read / an error; on a contact's, an edit or unsend.
 */
export function fromUpdatedMessage(m: BbMessage): DeviceEvent[] {
  if (m.isFromMe) {
    if (m.error) return [{ kind: "failed", deviceId: m.guid, code: "undeliverable", message: `BlueBubbles reported send error ${m.error}.` }];
    if (m.dateRead) return [{ kind: "read", deviceId: m.guid, at: m.dateRead }];
    if (m.dateDelivered || m.isDelivered) return [{ kind: "delivered", deviceId: m.guid, at: m.dateDelivered ?? at(m) }];
    return [];
  }
  if (m.dateRetracted) return [{ kind: "unsent", deviceId: m.guid, at: m.dateRetracted }];
  if (m.dateEdited && m.text) return [{ kind: "edited", deviceId: m.guid, text: m.text, at: m.dateEdited }];
  return [];
}

/**
 * Group changes made on the network (`itemType` 1: added/removed, 2: renamed, 3: left). The
 * affected member of an add or remove is only a ROWID (`otherHandle`), so the device's member
 * list is compared with ours.
 */
async function fromGroupChange(m: BbMessage, ctx: NormaliseContext): Promise<DeviceEvent[]> {
  const chatGuid = m.chats?.[0]?.guid;
  if (!chatGuid) return [];
  const by = handleOf(m.handle?.address);
  const base = { kind: "group_changed" as const, numberHandle: ctx.number.handle, mode: "live" as const, chatDeviceId: chatGuid, at: at(m) };
  if (m.itemType === 2) return [{ ...base, change: { type: "renamed", title: m.groupTitle || null }, by }];
  if (m.itemType === 3 && (m.groupActionType ?? 0) === 0) return by ? [{ ...base, change: { type: "participant_removed", handle: by }, by }] : [];
  if (m.itemType !== 1) return [];
  const [ours, theirs] = await Promise.all([ctx.tools.groupParticipants(chatGuid), ctx.deviceParticipants(chatGuid)]);
  if (!ours || !theirs) return [];
  const device = theirs.filter((h) => h !== ctx.number.handle);
  if (m.groupActionType === 1) return ours.filter((h) => !device.includes(h)).map((handle) => ({ ...base, change: { type: "participant_removed" as const, handle }, by }));
  return device.filter((h) => !ours.includes(h)).map((handle) => ({ ...base, change: { type: "participant_added" as const, handle }, by }));
}

/** `message-send-error`: our message failed on the device. */
export function fromSendError(m: BbMessage): DeviceEvent[] {
  const message = `BlueBubbles reported send error ${m.error ?? "unknown"}.`;
  if (m.tempGuid) return [{ kind: "send_failed", messageId: messageIdOfTempGuid(m.tempGuid), deviceId: m.guid ?? null, code: "undeliverable", message }];
  return m.guid ? [{ kind: "failed", deviceId: m.guid, code: "undeliverable", message }] : [];
}

/** `typing-indicator {display, guid}`: DMs only (the helper ignores groups). */
export function fromTyping(data: { display?: boolean; guid?: string }, number: DeviceNumber, now: number): DeviceEvent[] {
  if (!data.guid || isGroupGuid(data.guid)) return [];
  const from = handleOf(data.guid.slice(data.guid.indexOf(";-;") + 3));
  if (!from) return [];
  return [{ kind: "typing", numberHandle: number.handle, mode: "live", from, state: data.display ? "start" : "stop", at: now }];
}
