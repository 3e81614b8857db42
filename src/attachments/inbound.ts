import type { Readable } from "node:stream";
import type { Db } from "../db/client.js";
import { uuidv7 } from "../ids.js";
import type { Scope } from "../messages/store.js";
import { receiveFile } from "./receive.js";
import type { AttachmentService } from "./service.js";
import { safeFilename } from "./sniff.js";
import { newRow } from "./store.js";

/** One file a device reports with an inbound message. */
export interface InboundMedia {
  filename?: string | undefined;
  /** What the device says the type is; the bytes decide. */
  mimeType?: string | undefined;
  /**
   * The bytes: BlueBubbles `GET /api/v1/attachment/:guid/download`, WAHA's `media.url` (or the
   * message fetched with `downloadMedia=true`).
   */
  stream: Readable;
}

/**
 * For device back-ends: stores one inbound file as an unclaimed attachment of the receiving
 * number's account and mode, and returns its id for the `received` event's `attachmentIds`.
 * Call it before applying the event and outside any transaction: fetching media from a device
 * takes network time no database lock should wait for. The event's message claims it; if the
 * event turns out to be a duplicate, the file stays unclaimed and expires like any upload.
 * The same checks as an upload apply (per-file limit, type from the bytes, executables refused).
 */
export async function storeInboundMedia(db: Db, svc: AttachmentService, owner: Scope, media: InboundMedia): Promise<string> {
  const max = svc.config.ATTACHMENT_MAX_FILE_BYTES;
  const file = await receiveFile(svc.storage, media.stream, {
    maxFileBytes: max,
    budget: { remaining: max, total: max },
    declaredType: media.mimeType ?? null,
    stopSource: () => media.stream.destroy(),
  });
  const now = svc.clock.now();
  const id = uuidv7(now);
  const row = newRow(
    owner,
    { id, upload_id: id, state: "uploaded", filename: safeFilename(media.filename), declared_type: media.mimeType ?? null, mime_type: file.mime, size_bytes: file.size, storage_key: file.key, expires_at: now + svc.config.ATTACHMENT_EXPIRY_HOURS * 3_600_000 },
    now,
  );
  try {
    await db.transaction((trx) => trx.insertInto("attachments").values(row).execute());
  } catch (err) {
    await svc.storage.delete(file.key);
    throw err;
  }
  return id;
}
