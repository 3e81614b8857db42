import type { DeviceNumber, OutboundAttachment, OutboundMessage, ReconcileOutcome, SendOutcome } from "../backend.js";
import { type WahaClient, type WahaReply, seg, wahaConfig } from "./client.js";
import { personChat, sentIdOf } from "./ids.js";

/**
 * Sends and their reconciliation (backends.md §2.1 "Sending"). Text goes through `sendText`; each
 * file is its own send (`sendImage`, `sendVideo`, `sendFile`, `sendVoice`), the text riding as the
 * caption of the first file that can carry one. The message's device id is its first part's.
 */

export const MEDIA_UNSUPPORTED =
  "Sending media on WhatsApp needs WAHA Plus: this WAHA server runs the free Core edition, which sends text only (see docs/backends.md).";

/** A matching message in the chat's history counts if it is at most this much older than the attempt (clock skew, slow answers). */
const RECONCILE_SLACK_S = 120;

export const chatIdOf = (m: Pick<OutboundMessage, "group" | "to">) => m.group?.chatDeviceId ?? personChat(m.to);

type MediaRoute = "/api/sendImage" | "/api/sendVideo" | "/api/sendFile" | "/api/sendVoice";

/** WhatsApp shows JPEG and PNG as photos and MP4 as video; anything else goes as a document. */
function routeOf(file: OutboundAttachment): MediaRoute {
  if (file.voiceNote) return "/api/sendVoice";
  if (file.mimeType === "image/jpeg" || file.mimeType === "image/png") return "/api/sendImage";
  if (file.mimeType.startsWith("video/")) return "/api/sendVideo";
  return "/api/sendFile";
}

async function base64Of(file: OutboundAttachment): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await file.open()) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("base64");
}

/**
 * `file.url` when the bytes are the original upload (WAHA fetches our signed URL), else base64
 * `file.data` — WAHA takes no multipart, so a transcoded file is held in memory once, at most the
 * channel's media limit (16 MB on WhatsApp).
 */
async function fileBody(file: OutboundAttachment): Promise<Record<string, unknown>> {
  const voice = file.voiceNote;
  // WhatsApp plays voice notes as OGG/Opus; `convert` asks WAHA (Plus) to transcode anything else.
  const mimetype = voice && file.mimeType.startsWith("audio/ogg") ? "audio/ogg; codecs=opus" : file.mimeType;
  const source = file.url ? { url: file.url } : { data: await base64Of(file) };
  return { file: { mimetype, filename: file.filename, ...source }, ...(voice && !file.mimeType.startsWith("audio/ogg") ? { convert: true } : {}) };
}

/**
 * One part's answer as the message's outcome. Once a part went out, a failing later part is
 * ambiguous, never "not sent": the message is partly on WhatsApp and must not be resent whole.
 */
export function sendOutcome(r: WahaReply, partlySent: boolean): SendOutcome {
  if (r.ok) return { kind: "sent", deviceId: sentIdOf(r.data) ?? "" };
  if (partlySent) return { kind: "ambiguous", message: r.message };
  switch (r.failure) {
    case "unreachable":
    case "not_working":
      return { kind: "not_sent", permanent: false, code: "device_offline", message: r.failure === "unreachable" ? "The WAHA server is unreachable." : "The WhatsApp session is not working." };
    case "auth":
      // An operator's configuration error, not the message's: wait for it to be fixed.
      return { kind: "not_sent", permanent: false, code: "device_offline", message: "WAHA refused the API key (check the number's --api-key)." };
    case "plus_only":
      return { kind: "not_sent", permanent: true, code: "media_unsupported", message: MEDIA_UNSUPPORTED };
    case "refused":
      return { kind: "not_sent", permanent: true, code: "undeliverable", message: `WhatsApp refused the message (WAHA answered HTTP ${r.status}).` };
    case "lost":
    case "engine":
      return { kind: "ambiguous", message: r.message };
  }
}

export async function sendMessage(client: WahaClient, number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
  const { session } = wahaConfig(number);
  const chatId = chatIdOf(m);
  const files = m.attachments ?? [];
  const captioned = m.text ? files.findIndex((f) => !f.voiceNote) : -1;
  let deviceId: string | null = null;
  const reply = (first: boolean) => (first && m.replyToDeviceId ? { reply_to: m.replyToDeviceId } : {});
  for (const [i, file] of files.entries()) {
    const json = { session, chatId, ...(await fileBody(file)), ...(i === captioned ? { caption: m.text } : {}), ...reply(i === 0) };
    const outcome = sendOutcome(await client.call(number, "POST", routeOf(file), { json, send: true }), i > 0);
    if (outcome.kind !== "sent") return outcome;
    deviceId ??= outcome.deviceId;
  }
  if (m.text && captioned < 0) {
    const json = { session, chatId, text: m.text, ...reply(files.length === 0) };
    const outcome = sendOutcome(await client.call(number, "POST", "/api/sendText", { json, send: true }), files.length > 0);
    if (outcome.kind !== "sent") return outcome;
    deviceId ??= outcome.deviceId;
  }
  if (deviceId === null) return { kind: "not_sent", permanent: true, code: "undeliverable", message: "Nothing to send." };
  // An answer without an id (an engine whose shape we do not know): the chat's history, newest
  // first, has the message we have just sent on top.
  if (deviceId === "") {
    const found = await findSent(client, number, m, 0);
    if (found.kind === "sent") deviceId = found.deviceId;
  }
  return { kind: "sent", deviceId };
}

interface HistoryRow {
  id?: string;
  fromMe?: boolean;
  body?: string | null;
  hasMedia?: boolean;
  timestamp?: number;
}

async function findSent(client: WahaClient, number: DeviceNumber, m: OutboundMessage, attemptedAt: number): Promise<ReconcileOutcome> {
  const { session } = wahaConfig(number);
  const r = await client.call(number, "GET", `/api/${seg(session)}/chats/${seg(chatIdOf(m))}/messages`, { query: { limit: "50", downloadMedia: "false" } });
  if (!r.ok || !Array.isArray(r.data)) return { kind: "unknown" };
  const since = attemptedAt / 1000 - RECONCILE_SLACK_S;
  const candidates = (r.data as HistoryRow[]).filter(
    (row) => row.fromMe === true && typeof row.id === "string" && (row.timestamp ?? 0) >= since && (m.text ? row.body === m.text : row.hasMedia === true && !row.body),
  );
  // Oldest first; an identical message already recorded as another of ours is not this one.
  for (const row of candidates.reverse()) {
    if (row.id && !(await m.isKnownDeviceId?.(row.id))) return { kind: "sent", deviceId: row.id };
  }
  return { kind: "absent" };
}

/**
 * Did an ambiguous send reach WhatsApp? WAHA has no client-side id we could have sent along, so
 * our message is found as our own message in the same chat with the same text (or caption; a
 * media-only message: our own media without one), sent since shortly before the attempt. An
 * unreachable WAHA or a 5xx cannot say: unknown, asked again a lease later.
 */
export function reconcileMessage(client: WahaClient, number: DeviceNumber, m: OutboundMessage): Promise<ReconcileOutcome> {
  return findSent(client, number, m, m.attemptedAt ?? 0);
}
