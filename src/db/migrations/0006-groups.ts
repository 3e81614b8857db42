import type { Kysely } from "kysely";

// Groups: a group chat is addressed on its device by the device's own id (BlueBubbles
// `iMessage;+;chat…`, WAHA `…@g.us`), not by a contact handle, so the chat keeps that id. Inbound
// group messages and network-side group changes find their chat by (number, mode, device id): the
// unique index serves that lookup and stops one device group from becoming two chats. 1:1 chats
// leave it NULL, which both databases treat as distinct in a unique index.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("chats").addColumn("device_chat_id", "text").execute();
  await db.schema.createIndex("chats_device_chat").on("chats").columns(["number_id", "mode", "device_chat_id"]).unique().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("chats_device_chat").execute();
  await db.schema.alterTable("chats").dropColumn("device_chat_id").execute();
}
