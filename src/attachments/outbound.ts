import { Readable } from "node:stream";
import type { OutboundAttachment } from "../backends/backend.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, MessagesTable } from "../db/schema.js";
import { mediaLimit, TRANSCODABLE, tooLargeFor, VOICE_NOTE_CHANNELS } from "./media-limits.js";
import { attachmentServiceOf } from "./service.js";
import { jpegName, shrinkImage } from "./transcode.js";

export type PreparedMedia = { ok: true; attachments: OutboundAttachment[] } | { ok: false; code: "attachment_too_large"; message: string };

/**
 * A message's attachments fitted to the channel it goes out on, at send time — the first moment
 * the channel is known (iMessage or SMS is chosen per recipient by the dispatcher). Images over
 * the channel's limit are transcoded; the result is kept in storage beside the original (keyed by
 * channel and limit), so a retry or a resend reuses it. Anything else over the limit fails the
 * message for good with `attachment_too_large` (the accept-time check already refused what no
 * channel could carry).
 */
export async function prepareOutboundMedia(db: Tx, message: Pick<MessagesTable, "id" | "voice_memo">, channel: ChannelName): Promise<PreparedMedia> {
  const svc = attachmentServiceOf(db);
  const rows = await db.selectFrom("attachments").selectAll().where("message_id", "=", message.id).orderBy("position").execute();
  const out: OutboundAttachment[] = [];
  for (const row of rows) {
    const key = row.storage_key;
    if (key === null) return { ok: false, code: "attachment_too_large", message: `Attachment ${row.id} has no stored bytes.` };
    const voiceNote = message.voice_memo === 1 && row.mime_type.startsWith("audio/") && VOICE_NOTE_CHANNELS.has(channel);
    const base = { id: row.id, voiceNote };
    const limit = mediaLimit(svc.config, channel, row.mime_type);
    if (Number(row.size_bytes) <= limit) {
      out.push({ ...base, filename: row.filename, mimeType: row.mime_type, sizeBytes: Number(row.size_bytes), open: () => svc.storage.get(key), url: svc.urls.download(row.id, "event") });
      continue;
    }
    const refused = tooLargeFor(svc.config, row, channel);
    if (refused !== null || !TRANSCODABLE.has(row.mime_type)) return { ok: false, code: "attachment_too_large", message: refused ?? `Attachment ${row.id} is too large.` };
    const rendition = await transcoded(svc, key, channel, limit);
    if (rendition === null) {
      return { ok: false, code: "attachment_too_large", message: `Attachment ${row.id} (${row.mime_type}) could not be transcoded below the ${channel} limit.` };
    }
    out.push({ ...base, filename: jpegName(row.filename), mimeType: "image/jpeg", sizeBytes: rendition.size, open: () => svc.storage.get(rendition.key), url: null });
  }
  return { ok: true, attachments: out };
}

async function transcoded(svc: ReturnType<typeof attachmentServiceOf>, key: string, channel: ChannelName, limit: number): Promise<{ key: string; size: number } | null> {
  const renditionKey = `r-${channel}-${limit}-${key}`;
  const cached = await svc.storage.size(renditionKey);
  if (cached !== null) return { key: renditionKey, size: cached };
  let jpeg: Buffer | null;
  try {
    jpeg = await shrinkImage(await svc.storage.get(key), limit);
  } catch {
    return null; // bytes the decoder cannot read: as unfit as an image that will not shrink
  }
  if (jpeg === null) return null;
  return { key: renditionKey, size: await svc.storage.put(renditionKey, Readable.from([jpeg])) };
}
