import { sql } from "kysely";
import { iso } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { AttachmentsTable, MessagesTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import type { Scope } from "../messages/store.js";
import type { Attachment } from "./schemas.js";
import { attachmentServiceOf } from "./service.js";
import type { AttachmentUrls, UrlPurpose } from "./urls.js";

/** The public attachment object (api.md §5), with a freshly signed URL. */
export function toAttachment(r: AttachmentsTable, urls: AttachmentUrls, purpose: UrlPurpose): Attachment {
  return {
    id: r.id,
    filename: r.filename,
    mime_type: r.mime_type,
    size_bytes: Number(r.size_bytes),
    url: urls.download(r.id, purpose),
    message_id: r.message_id,
    created_at: r.created_at,
  };
}

/** Public objects for rows, signed with the URLs of the app bound to this database. */
export function publicAttachments(db: Tx, rows: AttachmentsTable[], purpose: UrlPurpose): Attachment[] {
  if (rows.length === 0) return [];
  const { urls } = attachmentServiceOf(db);
  return rows.map((r) => toAttachment(r, urls, purpose));
}

export async function findAttachment(db: Tx, scope: Scope, id: string): Promise<AttachmentsTable | undefined> {
  return db
    .selectFrom("attachments")
    .selectAll()
    .where("id", "=", id.toLowerCase())
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .executeTakeFirst();
}

export async function getAttachment(db: Tx, scope: Scope, id: string): Promise<AttachmentsTable> {
  const row = await findAttachment(db, scope, id);
  if (!row) throw new ApiError("not_found", "No such attachment.");
  return row;
}

/** The attachments one upload request created, in the order of its parts (an idempotent replay). */
export async function attachmentsOfUpload(db: Tx, scope: Scope, uploadId: string): Promise<AttachmentsTable[]> {
  return db
    .selectFrom("attachments")
    .selectAll()
    .where("upload_id", "=", uploadId)
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .orderBy("id")
    .execute();
}

/**
 * The attachment objects of messages, by message id. Messages without attachments (count 0 or
 * null) cost nothing: no query runs unless one of them has some.
 */
export async function attachmentsByMessage(db: Tx, messages: Pick<MessagesTable, "id" | "attachment_count">[], purpose: UrlPurpose): Promise<Map<string, Attachment[]>> {
  const map = new Map<string, Attachment[]>();
  const ids = messages.filter((m) => (m.attachment_count ?? 0) > 0).map((m) => m.id);
  if (ids.length === 0) return map;
  const rows = await db.selectFrom("attachments").selectAll().where("message_id", "in", ids).orderBy("message_id").orderBy("position").execute();
  for (const a of publicAttachments(db, rows, purpose)) {
    const list = map.get(a.message_id as string) ?? [];
    list.push(a);
    map.set(a.message_id as string, list);
  }
  return map;
}

/**
 * The single-use claim, in the transaction that inserts the message: one guarded UPDATE sets
 * `message_id` on the attachments that are this account's and mode's, uploaded, unexpired and not
 * yet claimed. Two sends racing for one attachment serialise on its row (PostgreSQL row lock,
 * SQLite's write lock); the second finds `message_id` set and claims nothing. Returns the rows
 * claimed, in the order of `ids` (their position in the message).
 */
export async function claimAttachments(trx: Tx, scope: Scope, messageId: string, ids: readonly string[], now: number): Promise<AttachmentsTable[]> {
  if (ids.length === 0) return [];
  const wanted = ids.map((id) => id.toLowerCase());
  // Positions are our own small integers, inlined as literals so both databases type them alike.
  const position = sql<number>`case id ${sql.join(
    wanted.map((id, i) => sql`when ${id} then ${sql.lit(i)}`),
    sql` `,
  )} end`;
  const rows = await trx
    .updateTable("attachments")
    .set({ message_id: messageId, position })
    .where("id", "in", wanted)
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .where("state", "=", "uploaded")
    .where("message_id", "is", null)
    .where("expires_at", ">", now)
    .returningAll()
    .execute();
  return rows.sort((a, b) => Number(a.position) - Number(b.position));
}

/** claimAttachments for a send: every id must be claimed, else 400 invalid_attachments (the transaction rolls back). */
export async function claimAll(trx: Tx, scope: Scope, messageId: string, ids: readonly string[], now: number): Promise<AttachmentsTable[]> {
  const rows = await claimAttachments(trx, scope, messageId, ids, now);
  if (rows.length !== ids.length) {
    const got = new Set(rows.map((r) => r.id));
    const missing = ids.find((id) => !got.has(id.toLowerCase())) ?? ids[0];
    throw new ApiError("invalid_attachments", `Attachment ${missing} is unknown, not uploaded yet, expired, or already used by another message.`);
  }
  return rows;
}

/** A new attachment row (the caller fills in the state, type, size and key). */
export function newRow(scope: Scope, fields: Omit<AttachmentsTable, "account_id" | "mode" | "message_id" | "position" | "created_at">, now: number): AttachmentsTable {
  return { ...fields, account_id: scope.accountId, mode: scope.mode, message_id: null, position: null, created_at: iso(now) };
}
