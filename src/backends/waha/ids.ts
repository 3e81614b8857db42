import { normaliseHandle } from "../../handles.js";
import { digitsOf } from "../device-http.js";

/**
 * WhatsApp identifiers as WAHA writes them (backends.md §2.1):
 * - a person's chat is `<digits>@c.us`; the engine's own JIDs say `<digits>@s.whatsapp.net`
 *   (raw Baileys keys, group participants); a group is `<id>@g.us`;
 * - a message id is serialized `<fromMe>_<chatId>_<ID>`, and a group message written by someone
 *   else carries its author too: `false_<group>@g.us_<ID>_<participant>`. Events about an earlier
 *   message (`message.edited`, `message.revoked`, `replyTo`) name only the bare `<ID>`.
 */

export const isGroupChat = (chatId: string) => chatId.endsWith("@g.us");

/** A person's chat id for our E.164 handle. */
export const personChat = (handle: string) => `${digitsOf(handle)}@c.us`;

/** `<digits>@s.whatsapp.net` → `<digits>@c.us` (WAHA's serialized form); anything else unchanged. */
export const toCus = (jid: string) => jid.replace(/@s\.whatsapp\.net$/, "@c.us");

/**
 * Our handle (+E.164) for a person's JID, or null for anything that is not a phone JID: groups,
 * `status@broadcast`, newsletters, and `@lid` privacy ids, which carry no phone number.
 */
export function handleOfJid(jid: unknown): string | null {
  if (typeof jid !== "string" || !/@(c\.us|s\.whatsapp\.net)$/.test(jid)) return null;
  const digits = (jid.split("@")[0] ?? "").split(":")[0] ?? ""; // multi-device JIDs: `<digits>:<device>@…`
  if (!/^\d+$/.test(digits)) return null;
  return normaliseHandle(`+${digits}`)?.handle ?? null;
}

/** The first of `jids` that is a phone JID, as our handle (the others are `@lid` fallbacks' alternatives). */
export function firstHandle(...jids: unknown[]): string | null {
  for (const j of jids) {
    const h = handleOfJid(j);
    if (h) return h;
  }
  return null;
}

export interface ParsedId {
  fromMe: boolean;
  chatId: string;
  bare: string;
  participant: string | null;
}

/** A serialized message id's parts; null when it is not one. */
export function parseMessageId(id: string): ParsedId | null {
  const parts = id.split("_");
  if ((parts.length !== 3 && parts.length !== 4) || (parts[0] !== "true" && parts[0] !== "false") || !parts[1] || !parts[2]) return null;
  return { fromMe: parts[0] === "true", chatId: parts[1], bare: parts[2], participant: parts[3] ?? null };
}

/**
 * The ids a device message may be stored under, most likely first: as given, then without its
 * 4th segment. Group acks name our message `<id>_<me>` (NOWEB appends the receipt's participant),
 * and the same message may have been recorded from a 3-segment send answer.
 */
export function idCandidates(id: string): string[] {
  const p = parseMessageId(id);
  if (!p?.participant) return [id];
  return [id, `${p.fromMe}_${p.chatId}_${p.bare}`];
}

/**
 * The full ids a contact's message with bare id `bare` may have in `chatId`: `false_<chat>_<ID>`,
 * and in a group with its author appended (NOWEB's buildMessageId). Looked up by exact id, so no
 * LIKE scan over messages is needed.
 */
export function contactIdCandidates(chatId: string, bare: string, participant: string | null): string[] {
  const chat = toCus(chatId);
  const plain = `false_${chat}_${bare}`;
  if (!isGroupChat(chat) || !participant) return [plain];
  const forms = new Set([toCus(participant), participant]);
  return [...[...forms].map((p) => `${plain}_${p}`), plain];
}

/**
 * A send's device id from WAHA's answer: a WAMessage's `id` (a string, or WEBJS's
 * `{_serialized}`), or — NOWEB answers with the raw Baileys message — `key.id` serialized as WAHA
 * serializes it everywhere else, `<fromMe>_<chat>@c.us_<ID>`, so acks and reactions match it.
 */
export function sentIdOf(body: unknown): string | null {
  const b = (body ?? {}) as { id?: unknown; key?: { remoteJid?: unknown; fromMe?: unknown; id?: unknown } };
  if (typeof b.id === "string" && b.id) return b.id;
  const serialized = (b.id as { _serialized?: unknown } | undefined)?._serialized;
  if (typeof serialized === "string" && serialized) return serialized;
  const key = b.key;
  if (key && typeof key.id === "string" && typeof key.remoteJid === "string") return `${key.fromMe === false ? "false" : "true"}_${toCus(key.remoteJid)}_${key.id}`;
  return null;
}
