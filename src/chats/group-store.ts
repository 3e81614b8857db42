import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { ChatsTable, Mode } from "../db/schema.js";
import type { EventRow } from "../events/catalog.js";
import { type ChatChange, changedGroup, chatUpdatedData, type GroupChange } from "./group-change.js";

/** The group chat of a number that the device knows as `chatDeviceId`. */
export async function groupByDeviceId(db: Tx, numberId: string, mode: Mode, chatDeviceId: string): Promise<ChatsTable | undefined> {
  return db
    .selectFrom("chats")
    .selectAll()
    .where("number_id", "=", numberId)
    .where("mode", "=", mode)
    .where("device_chat_id", "=", chatDeviceId)
    .executeTakeFirst();
}

/**
 * Inserts a group chat, or returns the chat that already holds its device id: two inbound
 * messages of a new group racing (PostgreSQL), or a device that answers a create with a group
 * it already had. One device group is never two chats (unique index chats_device_chat).
 */
export async function insertGroupChat(trx: Tx, row: ChatsTable): Promise<ChatsTable> {
  const inserted = await trx
    .insertInto("chats")
    .values(row)
    .onConflict((oc) => oc.columns(["number_id", "mode", "device_chat_id"]).doNothing())
    .returning("id")
    .executeTakeFirst();
  if (inserted) return row;
  const existing = await groupByDeviceId(trx, row.number_id, row.mode, row.device_chat_id ?? "");
  if (!existing) throw new Error("group chat conflict without a group chat");
  return existing;
}

/**
 * Applies one change to a group chat in the caller's transaction and returns the chat after it
 * with its `chat.updated` event (null when the change is a no-op). Compare-and-set on the columns
 * read, not a row lock: it works alike on SQLite (transactions are serial anyway) and PostgreSQL,
 * where an API add and a network add racing on one group both land instead of one overwriting
 * the other's participant list.
 */
export async function applyGroupChange(
  trx: Tx,
  clock: Clock,
  chatId: string,
  change: GroupChange,
  by: string | null,
  source: ChatChange["source"],
): Promise<{ chat: ChatsTable; event: EventRow | null }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const chat = await trx.selectFrom("chats").selectAll().where("id", "=", chatId).executeTakeFirstOrThrow();
    const next = changedGroup(chat, change);
    if (!next) return { chat, event: null };
    const set = { ...next, updated_at: iso(clock.now()) };
    const res = await trx
      .updateTable("chats")
      .set(set)
      .where("id", "=", chat.id)
      .where("participants", "=", chat.participants)
      .where((eb) => (chat.title === null ? eb("title", "is", null) : eb("title", "=", chat.title)))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) continue; // changed since we read it: read again
    const after = { ...chat, ...set };
    return { chat: after, event: { accountId: chat.account_id, mode: chat.mode, type: "chat.updated", data: chatUpdatedData(chat, after, change, by, source) } };
  }
  throw new Error(`group chat ${chatId} kept changing during an update`);
}
