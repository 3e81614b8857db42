import type { Readable } from "node:stream";
import type { Db } from "../db/client.js";
import { ApiError } from "../errors.js";
import type { AttachmentService } from "./service.js";

/** What a signed download answers with: the bytes and the headers that describe them. */
export interface Download {
  stream: Readable;
  headers: Record<string, string>;
}

/** Shown by browsers as they are; every other type is offered as a file to save. */
const INLINE = /^(image|audio|video)\//;

/**
 * The bytes behind a verified download URL. Served hardened: the stored (sniffed) type with
 * `nosniff`, a sandboxing CSP and `attachment` disposition for anything not plainly media, so an
 * uploaded file can never act as a page of this server's origin.
 */
export async function openDownload(db: Db, svc: AttachmentService, id: string, expires: number): Promise<Download> {
  const row = await db.kysely.selectFrom("attachments").selectAll().where("id", "=", id.toLowerCase()).executeTakeFirst();
  if (!row) throw new ApiError("not_found", "No such attachment (it may have expired).");
  if (row.state !== "uploaded" || row.storage_key === null) throw new ApiError("conflict", "The bytes of this attachment have not been uploaded yet.");
  let stream: Readable;
  try {
    stream = await svc.storage.get(row.storage_key);
  } catch (err) {
    // Expired and removed between the row read and the open.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ApiError("not_found", "No such attachment (it may have expired).");
    throw err;
  }
  const maxAge = Math.max(0, Math.floor((expires * 1000 - svc.clock.now()) / 1000));
  const type = row.mime_type.startsWith("text/") ? `${row.mime_type}; charset=utf-8` : row.mime_type;
  return {
    stream,
    headers: {
      "content-type": type,
      "content-length": String(row.size_bytes),
      "content-disposition": `${INLINE.test(row.mime_type) ? "inline" : "attachment"}; filename*=UTF-8''${encodeURIComponent(row.filename)}`,
      "x-content-type-options": "nosniff",
      "content-security-policy": "default-src 'none'; sandbox",
      "cache-control": `private, max-age=${maxAge}`,
    },
  };
}
