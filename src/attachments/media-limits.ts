import type { Config } from "../config.js";
import type { AttachmentsTable, ChannelName } from "../db/schema.js";
import { ApiError } from "../errors.js";

/** Image types the transcoder (sharp, prebuilt libvips) can decode. HEIC is not among them (its codec is patent-encumbered and not in the build). */
export const TRANSCODABLE = new Set(["image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/avif"]);

/** Channels with a native voice-note bubble (BlueBubbles `isAudioMessage`, WAHA `sendVoice`); SMS/MMS has none. */
export const VOICE_NOTE_CHANNELS: ReadonlySet<ChannelName> = new Set(["imessage", "whatsapp"]);

/** The largest attachment of this type a channel carries (configuration: MEDIA_LIMIT_*). */
export function mediaLimit(config: Config, channel: ChannelName, mime: string): number {
  switch (channel) {
    case "imessage":
      return config.MEDIA_LIMIT_IMESSAGE_BYTES;
    case "sms":
      return config.MEDIA_LIMIT_SMS_BYTES;
    case "whatsapp":
      return mime.startsWith("image/") ? Math.min(config.MEDIA_LIMIT_WHATSAPP_IMAGE_BYTES, config.MEDIA_LIMIT_WHATSAPP_BYTES) : config.MEDIA_LIMIT_WHATSAPP_BYTES;
  }
}

export function humanBytes(n: number): string {
  if (n >= 1_048_576) return `${(n / 1_048_576).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} bytes`;
}

/** Why an attachment cannot go out on `channel`, or null when it can (images over the limit are transcoded, so they can). */
export function tooLargeFor(config: Config, a: Pick<AttachmentsTable, "id" | "mime_type" | "size_bytes">, channel: ChannelName): string | null {
  const limit = mediaLimit(config, channel, a.mime_type);
  if (Number(a.size_bytes) <= limit || TRANSCODABLE.has(a.mime_type)) return null;
  const what = a.mime_type.startsWith("video/") ? "video transcoding is not supported yet" : "only images are transcoded";
  return `Attachment ${a.id} (${a.mime_type}, ${humanBytes(Number(a.size_bytes))}) is larger than the ${channel} limit of ${humanBytes(limit)}; ${what}.`;
}

/**
 * At accept time the channel is not chosen yet (iMessage or SMS is decided per recipient when the
 * message goes out), so a send is refused only when no channel it could take would carry an
 * attachment; the dispatcher checks the chosen channel again (and transcodes images) at send time.
 */
export function checkAttachmentsFit(config: Config, attachments: AttachmentsTable[], candidates: ChannelName[]): void {
  for (const a of attachments) {
    const reasons = candidates.map((c) => tooLargeFor(config, a, c));
    if (reasons.length > 0 && reasons.every((r) => r !== null)) {
      // The channel that allows the most, for the clearest message.
      const best = candidates.reduce((x, y) => (mediaLimit(config, y, a.mime_type) > mediaLimit(config, x, a.mime_type) ? y : x));
      throw new ApiError("attachment_too_large", tooLargeFor(config, a, best) ?? undefined);
    }
  }
}
