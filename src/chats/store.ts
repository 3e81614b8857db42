import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, ChatsTable, Mode } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { type Cursor, page } from "../http/pagination.js";
import { uuidv7 } from "../ids.js";
import { prepared, preparedInsert, preparedQuery } from "../db/prepared.js";
import type { Scope } from "../messages/store.js";
import type { Chat } from "./schemas.js";

export function toChat(r: ChatsTable): Chat {
  return {
    id: r.id,
    from_handle: r.from_handle,
    remote_handle: r.remote_handle,
    is_group: r.is_group === 1,
    title: r.title,
    last_message_at: r.last_message_at,
    created_at: r.created_at,
    updated_at: r.updated_at,
    participants: JSON.parse(r.participants) as string[],
    channel: r.channel,
  };
}

export async function getChatRow(db: Tx, scope: Scope, id: string): Promise<ChatsTable> {
  const row = await db
    .selectFrom("chats")
    .selectAll()
    .where("id", "=", id.toLowerCase())
    .where("account_id", "=", scope.accountId)
    .where("mode", "=", scope.mode)
    .executeTakeFirst();
  if (!row) throw new ApiError("not_found", "No such chat.");
  return row;
}

export interface ThreadKey {
  accountId: string;
  mode: Mode;
  numberId: string;
  fromHandle: string;
  remoteHandle: string;
}

/**
 * The 1:1 chat between a number and a contact, created by the first message in either direction.
 * Touches `last_message_at`. Runs inside the message's transaction.
 */
const threadOf = prepared(
  (db, accountId: string, mode: Mode, fromHandle: string, remoteHandle: string) =>
    db.selectFrom("chats").selectAll().where("account_id", "=", accountId).where("mode", "=", mode).where("from_handle", "=", fromHandle).where("remote_handle", "=", remoteHandle),
  [":account", "test" as Mode, ":from", ":remote"],
);
// A chat learns its channel once, from the first message that has one.
const touchThread = preparedQuery(
  (db, lastMessageAt: string, updatedAt: string, channel: ChannelName | null, id: string) =>
    db.updateTable("chats").set((eb) => ({ last_message_at: lastMessageAt, updated_at: updatedAt, channel: eb.fn.coalesce("channel", eb.val(channel)) })).where("id", "=", id),
  [":last", ":updated", "sms" as ChannelName, ":id"],
);
const CHAT_COLUMNS = Object.keys({
  id: 1, account_id: 1, mode: 1, number_id: 1, from_handle: 1, remote_handle: 1, is_group: 1, title: 1, participants: 1, channel: 1, last_message_at: 1, created_at: 1, updated_at: 1, device_chat_id: 1,
} satisfies Record<keyof ChatsTable, 1>) as (keyof ChatsTable & string)[];
export const insertChat = preparedInsert("chats", CHAT_COLUMNS);

/**
 * The 1:1 chat between a number and a contact, created by the first message in either direction.
 * Touches `last_message_at`. Runs inside the message's transaction.
 */
export async function upsertThread(trx: Tx, clock: Clock, key: ThreadKey, channel: ChannelName | null): Promise<ChatsTable> {
  const now = iso(clock.now());
  const [existing] = await threadOf(trx, key.accountId, key.mode, key.fromHandle, key.remoteHandle);
  if (existing) {
    await touchThread(trx, now, now, channel, existing.id);
    return { ...existing, last_message_at: now, updated_at: now, channel: existing.channel ?? channel };
  }
  const row: ChatsTable = {
    id: uuidv7(clock.now()),
    account_id: key.accountId,
    mode: key.mode,
    number_id: key.numberId,
    from_handle: key.fromHandle,
    remote_handle: key.remoteHandle,
    is_group: 0,
    title: null,
    participants: "[]",
    channel,
    last_message_at: now,
    created_at: now,
    updated_at: now,
    device_chat_id: null,
  };
  await insertChat(trx, row);
  return row;
}

export async function touchChat(trx: Tx, clock: Clock, chatId: string): Promise<void> {
  const now = iso(clock.now());
  await touchThread(trx, now, now, null, chatId);
}

export async function listChats(db: Tx, scope: Scope, cursor: Cursor, limit: number) {
  let q = db.selectFrom("chats").selectAll().where("account_id", "=", scope.accountId).where("mode", "=", scope.mode);
  if (cursor) {
    const { time, id } = cursor;
    q = id === null
      ? q.where("last_message_at", "<", time)
      : q.where((eb) => eb.or([eb("last_message_at", "<", time), eb.and([eb("last_message_at", "=", time), eb("id", "<", id)])]));
  }
  const rows = await q.orderBy("last_message_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
  const { items, hasMore } = page(rows, limit);
  return { items: items.map(toChat), hasMore };
}
