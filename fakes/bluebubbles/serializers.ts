// ---- serializers (MessageSerializer, ChatSerializer, HandleSerializer, AttachmentSerializer) -----------
import type { ChatDb } from "./chat-db.js";
import type { FakeAttachment, FakeChat, FakeMessage, Json, Service } from "./types.js";

/** How a row is serialized: webhook (`isForNotification`) or HTTP, and which relations are loaded. */
export interface Shape { notification: boolean; chats: "omit" | "empty" | "load"; participants: boolean; attachments: boolean }
export const NEW_MESSAGE: Shape = { notification: true, chats: "load", participants: true, attachments: true };
// §0.2: `handleUpdatedMessage` serializes with includeChats:false, so updated-message has NO chats key.
export const UPDATED_MESSAGE: Shape = { notification: true, chats: "omit", participants: false, attachments: true };
export const HTTP_SENT: Shape = { notification: false, chats: "load", participants: false, attachments: true };

const UTI: Record<string, string> = {
  "image/jpeg": "public.jpeg", "image/png": "public.png", "image/heic": "public.heic", "image/gif": "com.compuserve.gif",
  "video/mp4": "public.mpeg-4", "video/quicktime": "com.apple.quicktime-movie", "audio/x-caf": "com.apple.coreaudio-format",
  "audio/mp4": "public.mpeg-4-audio", "audio/x-m4a": "public.mpeg-4-audio", "audio/mpeg": "public.mp3",
  "application/pdf": "com.adobe.pdf", "text/plain": "public.plain-text",
};

export function serialize(db: ChatDb, m: FakeMessage, s: Shape): Json {
  const chat = db.findChat(m.chatGuid);
  const out: Json = {
    originalROWID: db.rowId(m), guid: m.guid, text: m.text, attributedBody: null,
    handle: m.handle ? serializeHandle(db, m.handle, db.serviceOf(m.chatGuid)) : null,
    handleId: m.handle ? db.handleId(m.handle) : 0, otherHandle: m.otherHandle,
    // HTTP reads only carry attachments when asked (`with: ["attachments"]`); webhooks always do.
    attachments: s.attachments ? m.attachments.map((a) => serializeAttachment(db, a, m, s.notification)) : [],
    subject: null, error: m.error, dateCreated: m.dateCreated, dateRead: m.dateRead, dateDelivered: m.dateDelivered,
    isDelivered: !m.isFromMe || m.dateDelivered !== null || db.smsDelivered.has(m), isFromMe: m.isFromMe,
    hasDdResults: false, isArchived: false, itemType: m.itemType, groupTitle: m.groupTitle, groupActionType: m.groupActionType,
    balloonBundleId: null, associatedMessageGuid: m.associatedMessageGuid, associatedMessageType: m.associatedMessageType,
    expressiveSendStyleId: m.expressiveSendStyleId, threadOriginatorGuid: m.threadOriginatorGuid, hasPayloadData: false,
  };
  // §1.4: fields "outside webhook payloads only" — notably isAudioMessage and replyToGuid.
  if (!s.notification) {
    Object.assign(out, {
      country: null, isDelayed: false, isAutoReply: false, isSystemMessage: false, isServiceMessage: false, isForward: false,
      threadOriginatorPart: m.threadOriginatorGuid ? "0:0:0" : null, isCorrupt: false, datePlayed: null,
      cacheRoomnames: chat?.style === 43 ? chat.guid.split(";")[2] : null, isSpam: false, isExpired: false,
      timeExpressiveSendStyleId: null, isAudioMessage: m.isAudioMessage, replyToGuid: m.threadOriginatorGuid,
      shareStatus: 0, shareDirecation: false, wasDeliveredQuietly: false, didNotifyRecipient: false,
    });
  }
  if (s.chats !== "omit") {
    out.chats = s.chats === "load" && chat ? [serializeChat(db, chat, s.participants && chat.style === 43 ? "load" : "omit", s.notification)] : [];
  }
  return { ...out, messageSummaryInfo: null, payloadData: null, dateEdited: m.dateEdited, dateRetracted: m.dateRetracted, partCount: 1 };
}

export function serializeChat(db: ChatDb, c: FakeChat, participants: "omit" | "empty" | "load", notification: boolean): Json {
  const out: Json = {
    originalROWID: db.rowId(c), guid: c.guid, style: c.style, chatIdentifier: c.guid.split(";")[2] ?? c.guid,
    // chat.db stores an unnamed chat's display_name as "" rather than NULL.
    isArchived: false, displayName: c.displayName ?? "",
  };
  if (participants !== "omit") out.participants = participants === "load" ? c.participants.map((a) => serializeHandle(db, a, db.serviceOf(c.guid))) : [];
  if (!notification) Object.assign(out, { isFiltered: false, groupId: c.style === 43 ? c.guid : null, properties: null, lastAddressedHandle: null });
  return out;
}

function serializeHandle(db: ChatDb, address: string, service: Service): Json {
  return { originalROWID: db.handleId(address), address, service, uncanonicalizedId: null, country: "us" };
}

function serializeAttachment(db: ChatDb, a: FakeAttachment, m: FakeMessage, notification: boolean): Json {
  const out: Json = {
    originalROWID: db.rowId(a), guid: a.guid, uti: UTI[a.mimeType] ?? "public.data", mimeType: a.mimeType,
    transferName: a.transferName, totalBytes: a.bytes.length, height: 0, width: 0, metadata: null,
  };
  if (!notification) Object.assign(out, { transferState: 5, isOutgoing: m.isFromMe, hideAttachment: false, isSticker: false, originalGuid: a.guid, hasLivePhoto: false });
  return out;
}

export function parseWith(v: string | undefined): string[] {
  return (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

export function shapeFromWith(withs: string[]): Shape {
  const has = (...names: string[]) => names.some((n) => withs.includes(n));
  const participants = has("chats.participants", "chat.participants");
  return { notification: false, chats: has("chats", "chat") || participants ? "load" : "empty", participants, attachments: has("attachments", "attachment") };
}
