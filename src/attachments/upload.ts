import type { Readable } from "node:stream";
import "@fastify/multipart"; // its types: req.isMultipart(), req.parts()
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Db } from "../db/client.js";
import type { AttachmentsTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import type { Idempotency } from "../http/idempotency.js";
import { uuidv7 } from "../ids.js";
import type { Scope } from "../messages/store.js";
import { type Budget, receiveFile, type StoredFile, tooLarge } from "./receive.js";
import type { Attachment } from "./schemas.js";
import type { AttachmentService } from "./service.js";
import { safeFilename } from "./sniff.js";
import { attachmentsOfUpload, newRow, publicAttachments } from "./store.js";

export interface UploadDeps {
  db: Db;
  idempotency: Idempotency;
  attachments: AttachmentService;
}

export const MAX_FILES = 10;

/**
 * POST /v1/attachments: 1–10 file parts, each streamed straight into storage (never held in
 * memory), then one transaction records them all. Under an Idempotency-Key it is two-phase
 * (idempotency.ts): the key is taken before the bytes are read and completed with the rows, so a
 * retry replays the first upload instead of storing the files twice. The fingerprint of an upload
 * covers its route only: the body is a stream that is read after the key is claimed.
 */
export async function uploadFiles(deps: UploadDeps, req: FastifyRequest, reply: FastifyReply, scope: Scope): Promise<Attachment[]> {
  if (!req.isMultipart()) throw new ApiError("unsupported_media_type", "Upload files as multipart/form-data (or use POST /v1/attachments/presign).");
  const claim = await deps.idempotency.begin(req, "attachment_upload");
  if (claim?.kind === "replay") {
    return deps.idempotency.replay(reply, { load: async (db, id) => publicAttachments(db, await attachmentsOfUpload(db, scope, id), "response") }, claim.resourceId);
  }
  const { storage, config, clock } = deps.attachments;
  const uploadId = uuidv7(clock.now());
  let rows: AttachmentsTable[];
  const stored: (StoredFile & { filename: string; declared: string })[] = [];
  try {
    const budget: Budget = { remaining: config.ATTACHMENT_MAX_REQUEST_BYTES, total: config.ATTACHMENT_MAX_REQUEST_BYTES };
    // busboy's own file limit sits one byte above ours, so ours (with its clear message) trips first.
    const parts = req.parts({ limits: { files: MAX_FILES, fileSize: config.ATTACHMENT_MAX_FILE_BYTES + 1, fields: 10, fieldSize: 1024, parts: MAX_FILES + 10, headerPairs: 100 } });
    for await (const part of parts) {
      if (part.type !== "file") throw new ApiError("invalid_request", `Unknown field "${part.fieldname}": send only file parts.`);
      const file = await receiveFile(storage, part.file, {
        maxFileBytes: config.ATTACHMENT_MAX_FILE_BYTES,
        budget,
        declaredType: part.mimetype,
        stopSource: () => part.file.destroy(),
      });
      stored.push({ ...file, filename: safeFilename(part.filename), declared: part.mimetype });
    }
    if (stored.length === 0) throw new ApiError("invalid_request", `Send 1–${MAX_FILES} files as multipart/form-data file parts.`);
    const now = clock.now();
    const expiresAt = now + config.ATTACHMENT_EXPIRY_HOURS * 3_600_000;
    rows = stored.map((f) =>
      newRow(scope, { id: uuidv7(now), upload_id: uploadId, state: "uploaded", filename: f.filename, declared_type: f.declared, mime_type: f.mime, size_bytes: f.size, storage_key: f.key, expires_at: expiresAt }, now),
    );
    await deps.db.transaction(async (trx) => {
      await trx.insertInto("attachments").values(rows).execute();
      await claim?.complete(trx, uploadId, 201);
    });
  } catch (err) {
    // Nothing of a failed upload stays: its stored files go, and its key is free for a retry.
    await Promise.all(stored.map((f) => storage.delete(f.key).catch(() => {})));
    await claim?.release();
    throw multipartError(err);
  }
  reply.code(201);
  return publicAttachments(deps.db.kysely, rows, "response");
}

/**
 * The bytes of a presigned upload (PUT to its signed URL). The attachment becomes `uploaded` —
 * claimable — only here, once every byte has arrived: a guarded update, so of two PUTs racing for
 * one URL exactly one wins (409 for the other, whose bytes are removed).
 */
export async function receivePresigned(deps: Pick<UploadDeps, "db" | "attachments">, id: string, source: Readable, contentLength: number | null): Promise<AttachmentsTable> {
  const { storage, config, clock } = deps.attachments;
  const row = await deps.db.kysely.selectFrom("attachments").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) throw new ApiError("not_found", "No such attachment (it may have expired).");
  if (row.state !== "pending") throw new ApiError("conflict", "The bytes of this attachment have already been uploaded.");
  const max = config.ATTACHMENT_MAX_FILE_BYTES;
  if (contentLength !== null && contentLength > max) throw tooLarge(`A file is larger than the limit of ${max} bytes.`);
  const file = await receiveFile(storage, source, {
    maxFileBytes: max,
    budget: { remaining: max, total: max },
    declaredType: row.declared_type,
    // Stop reading but keep the socket: the 413 still has to be written on it.
    stopSource: () => source.pause(),
  });
  const set = { state: "uploaded" as const, mime_type: file.mime, size_bytes: file.size, storage_key: file.key };
  const done = await deps.db.transaction((trx) =>
    trx.updateTable("attachments").set(set).where("id", "=", id).where("state", "=", "pending").where("expires_at", ">", clock.now()).executeTakeFirst(),
  );
  if (Number(done.numUpdatedRows) !== 1) {
    await storage.delete(file.key);
    throw new ApiError("conflict", "The bytes of this attachment have already been uploaded, or it has expired.");
  }
  return { ...row, ...set };
}

/** @fastify/multipart's and busboy's errors, in the documented shape. */
function multipartError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case "FST_FILES_LIMIT":
      return new ApiError("invalid_request", `Send at most ${MAX_FILES} files per request.`);
    case "FST_PARTS_LIMIT":
    case "FST_FIELDS_LIMIT":
      return new ApiError("invalid_request", "Too many parts: send only file parts.");
    case "FST_REQ_FILE_TOO_LARGE":
      return tooLarge("A file is larger than the limit.");
    case "FST_INVALID_MULTIPART_CONTENT_TYPE":
      return new ApiError("unsupported_media_type", "Upload files as multipart/form-data.");
    case "FST_PROTO_VIOLATION":
      return new ApiError("invalid_request", "A part has a forbidden field name.");
  }
  // busboy's parse errors ("Unexpected end of form", "Malformed part header", a missing boundary),
  // and its dicer's: a body that ends before its closing boundary ("Unexpected end of multipart
  // data", "Part terminated early …"), a boundary over its 256-byte limit (RFC 2046 allows 70).
  const message = err instanceof Error ? err.message : "";
  if (/^(Unexpected end of (form|multipart data)|\w+ terminated early|Malformed|Multipart: Boundary not found|The needle cannot have a length bigger than)/.test(message) || code === "FST_MP_PREMATURE_CLOSE" || code === "FST_INVALID_JSON_FIELD_ERROR") {
    return new ApiError("invalid_request", "The multipart body is malformed or incomplete.");
  }
  return err;
}
