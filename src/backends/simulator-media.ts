import type { Tx } from "../db/client.js";
import type { SimulatorAttachmentsTable } from "../db/schema.js";
import type { OutboundAttachment } from "./backend.js";

/**
 * The simulator's side of outbound media: like a real back-end it reads every byte it is handed
 * (BlueBubbles uploads them to the Mac), and its media history records what arrived — the size
 * counted from the bytes, not the size claimed — so tests can check transcoding and voice notes
 * the way a recipient would see them.
 */
export async function readMedia(messageId: string, attachments: OutboundAttachment[] | undefined): Promise<SimulatorAttachmentsTable[]> {
  const out: SimulatorAttachmentsTable[] = [];
  for (const [position, a] of (attachments ?? []).entries()) {
    let size = 0;
    for await (const chunk of await a.open()) size += (chunk as Buffer).length;
    out.push({ message_id: messageId, position, filename: a.filename, mime_type: a.mimeType, size_bytes: size, voice_note: a.voiceNote ? 1 : 0 });
  }
  return out;
}

/** Records the media of a message's first send (the caller's transaction). */
export async function recordMedia(trx: Tx, media: SimulatorAttachmentsTable[]): Promise<void> {
  if (media.length > 0) await trx.insertInto("simulator_attachments").values(media).execute();
}
