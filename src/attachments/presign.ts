import type { Tx } from "../db/client.js";
import type { AttachmentsTable } from "../db/schema.js";
import { uuidv7 } from "../ids.js";
import type { Scope } from "../messages/store.js";
import type { Presigned, PresignIn } from "./schemas.js";
import type { AttachmentService } from "./service.js";
import { safeFilename } from "./sniff.js";
import { newRow } from "./store.js";

/**
 * POST /v1/attachments/presign: a `pending` attachment and a signed URL to PUT its bytes to. It
 * is not claimable until the bytes have arrived (upload.ts receivePresigned); left unfinished, it
 * expires like any unclaimed upload.
 */
export async function createPresigned(trx: Tx, svc: AttachmentService, scope: Scope, input: PresignIn): Promise<AttachmentsTable> {
  const now = svc.clock.now();
  const declared = input.content_type.trim();
  const id = uuidv7(now);
  const row = newRow(
    scope,
    {
      id,
      upload_id: id,
      state: "pending",
      filename: safeFilename(input.filename),
      declared_type: declared,
      // Until the bytes arrive the declared type is all there is; sniffing replaces it.
      mime_type: declared.split(";")[0]?.trim().toLowerCase() ?? declared,
      size_bytes: 0,
      storage_key: null,
      expires_at: now + svc.config.ATTACHMENT_EXPIRY_HOURS * 3_600_000,
    },
    now,
  );
  await trx.insertInto("attachments").values(row).execute();
  return row;
}

/** The presign answer for an attachment, with a fresh upload URL (also what a replay returns). */
export function presignedOf(svc: AttachmentService, row: AttachmentsTable): Presigned {
  return { id: row.id, upload_url: svc.urls.upload(row.id).url, method: "PUT", headers: { "content-type": row.declared_type ?? "application/octet-stream" } };
}
