/** How WhatsApp ids and NOWEB message content are shaped, as plain functions. */
import { randomBytes } from "node:crypto";
import type { FakeWaMessage, Json } from "./types.js";

export const WAHA_VERSION = "2025.9.1";
export const ACK_NAMES: Record<string, string> = { "-1": "ERROR", "0": "PENDING", "1": "SERVER", "2": "DEVICE", "3": "READ", "4": "PLAYED" };
export const EXT: Record<string, string> = { "image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "video/mp4": "mp4", "audio/ogg": "oga", "audio/mpeg": "mp3", "application/pdf": "pdf" };

export const digits = (s: string) => (s.split("@")[0] ?? "").replace(/\D/g, "");
export const isGroup = (chatId: string) => chatId.endsWith("@g.us");
export const toChatId = (raw: string) => (isGroup(raw) ? raw : `${digits(raw)}@c.us`);
export const toJid = (chatId: string) => (isGroup(chatId) ? chatId : `${digits(chatId)}@s.whatsapp.net`);
export const hex = (bytes: number) => randomBytes(bytes).toString("hex").toUpperCase();
/** `<fromMe>_<chatId>_<ID>[_<participant>]` → the bare WhatsApp ID, which is all `editedMessageId`, `revokedMessageId` and `replyTo.id` carry (NOWEB source). */
export const bareId = (id: string) => id.split("_")[2] ?? id;

export function parseId(id: string): { fromMe: boolean; chatId: string; key: string } | null {
  const parts = id.split("_");
  if ((parts.length !== 3 && parts.length !== 4) || !parts[1] || !parts[2]) return null;
  return { fromMe: parts[0] === "true", chatId: parts[1], key: parts[2] };
}

export function kindOf(mimetype: string): FakeWaMessage["kind"] {
  if (mimetype.startsWith("image/")) return "image";
  if (mimetype.startsWith("video/")) return "video";
  if (mimetype.startsWith("audio/ogg")) return "voice";
  return "file";
}

/** The Baileys content a NOWEB `_data.message` would hold, enough to tell a voice note from a file. */
export function content(m: FakeWaMessage): Json {
  const media = { mimetype: m.media?.mimetype, caption: m.body || undefined };
  if (m.kind === "text") return { conversation: m.body };
  if (m.kind === "voice") return { audioMessage: { mimetype: m.media?.mimetype, ptt: true } };
  if (m.kind === "file") return { documentMessage: { ...media, fileName: m.media?.filename ?? undefined } };
  return { [`${m.kind}Message`]: media };
}
