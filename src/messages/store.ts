import type { Tx } from "../db/client.js";
import { prepared } from "../db/prepared.js";
import type { Mode, MessagesTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { type Cursor, page } from "../http/pagination.js";
import { attachmentsByMessage } from "../attachments/store.js";
import type { Message } from "./schemas.js";

export interface Scope {
  accountId: string;
  mode: Mode;
}

/** The public message object, in the documented field order. */
/** Every column of a message row (the compiler checks the list is complete). */
export const MESSAGE_COLUMNS = Object.keys({ id: 1, account_id: 1, mode: 1, chat_id: 1, number_id: 1, lane_id: 1, direction: 1, status: 1, channel: 1, forced_channel: 1, text: 1, effect: 1, reply_to: 1, error_code: 1, error_message: 1, metadata: 1, from_handle: 1, to_handle: 1, voice_memo: 1, send_at: 1, sent_at: 1, delivered_at: 1, read_at: 1, edited_at: 1, unsent_at: 1, edit_count: 1, queue_key: 1, expires_at: 1, attempts: 1, lease_token: 1, lease_until: 1, device_message_id: 1, possible_duplicate: 1, created_at: 1, updated_at: 1, attachment_count: 1 } satisfies Record<keyof MessagesTable, 1>) as (keyof MessagesTable & string)[];

/** `attachments`: the message's attachment objects (attachments/store.ts attachmentsByMessage); none when omitted. */
export function toMessage(r: MessagesTable, reactions: Message["reactions"] = [], attachments: Message["attachments"] = []): Message {
  return {
    id: r.id,
    conversation_id: r.chat_id,
    direction: r.direction,
    status: r.status,
    channel: r.channel,
    text: r.unsent_at ? null : r.text,
    effect: r.effect,
    reply_to: r.reply_to,
    error: r.error_code ? { code: r.error_code, message: r.error_message ?? r.error_code } : null,
    metadata: r.metadata ? (JSON.parse(r.metadata) as Record<string, string>) : null,
    attachments,
    sent_at: r.sent_at,
    delivered_at: r.delivered_at,
    read_at: r.read_at,
    from_handle: r.from_handle,
    to: r.to_handle,
    voice_memo: r.voice_memo === 1,
    send_at: r.send_at,
    edited_at: r.edited_at,
    unsent_at: r.unsent_at,
    reactions,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

const reactionsOfOne = prepared((db, id: string) => db.selectFrom("message_reactions").selectAll().where("message_id", "=", id).orderBy("created_at"), [":id"]);

export async function reactionsOf(db: Tx, ids: string[]): Promise<Map<string, Message["reactions"]>> {
  const map = new Map<string, Message["reactions"]>();
  if (ids.length === 0) return map;
  const rows = ids.length === 1 ? await reactionsOfOne(db, ids[0] as string) : await db.selectFrom("message_reactions").selectAll().where("message_id", "in", ids).orderBy("created_at").execute();
  for (const r of rows) {
    const list = map.get(r.message_id) ?? [];
    list.push({ reaction: r.reaction, handle: r.handle, created_at: r.created_at });
    map.set(r.message_id, list);
  }
  return map;
}

export async function findMessageRow(db: Tx, scope: Scope, id: string): Promise<MessagesTable | undefined> {
  return db
    .selectFrom("messages")
    .selectAll()
    .where("id", "=", id.toLowerCase())
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .executeTakeFirst();
}

export async function getMessageRow(db: Tx, scope: Scope, id: string): Promise<MessagesTable> {
  const row = await findMessageRow(db, scope, id);
  if (!row) throw new ApiError("not_found", "No such message.");
  return row;
}

export async function loadMessage(db: Tx, scope: Scope, id: string): Promise<Message> {
  const row = await getMessageRow(db, scope, id);
  return toMessage(row, (await reactionsOf(db, [row.id])).get(row.id), (await attachmentsByMessage(db, [row], "response")).get(row.id));
}

/** A message object by id without scope, for events written by the engine. */
export async function messageById(db: Tx, id: string): Promise<Message | null> {
  const row = await db.selectFrom("messages").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) return null;
  return toMessage(row, (await reactionsOf(db, [row.id])).get(row.id), (await attachmentsByMessage(db, [row], "event")).get(row.id));
}

export interface ListFilter {
  conversation_id?: string | undefined;
  direction?: "outbound" | "inbound" | undefined;
  status?: MessagesTable["status"] | undefined;
}

export async function listMessages(db: Tx, scope: Scope, filter: ListFilter, cursor: Cursor, limit: number) {
  let q = db.selectFrom("messages").selectAll().where("account_id", "=", scope.accountId).where("mode", "=", scope.mode);
  if (filter.conversation_id) q = q.where("chat_id", "=", filter.conversation_id);
  if (filter.direction) q = q.where("direction", "=", filter.direction);
  if (filter.status) q = q.where("status", "=", filter.status);
  if (cursor) {
    const { time, id } = cursor;
    q = id === null
      ? q.where("created_at", "<", time)
      : q.where((eb) => eb.or([eb("created_at", "<", time), eb.and([eb("created_at", "=", time), eb("id", "<", id)])]));
  }
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
  const { items, hasMore } = page(rows, limit);
  const reactions = await reactionsOf(db, items.map((r) => r.id));
  const attachments = await attachmentsByMessage(db, items, "response");
  return { items: items.map((r) => toMessage(r, reactions.get(r.id), attachments.get(r.id))), hasMore };
}
