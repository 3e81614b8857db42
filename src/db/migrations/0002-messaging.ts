import type { Kysely } from "kysely";

// Messaging: chats, messages (the message row is also its queue job), reactions, per-number
// sender lanes (pacing state), events (the outbox webhooks deliver from), the simulator's device
// history and timers, and the channel lookup cache.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("chats")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("number_id", "text", (c) => c.notNull())
    .addColumn("from_handle", "text", (c) => c.notNull())
    .addColumn("remote_handle", "text")
    .addColumn("is_group", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("title", "text")
    .addColumn("participants", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("channel", "text")
    .addColumn("last_message_at", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("chats_thread").on("chats").columns(["account_id", "mode", "from_handle", "remote_handle"]).unique().execute();
  await db.schema.createIndex("chats_recent").on("chats").columns(["account_id", "mode", "last_message_at", "id"]).execute();

  await db.schema
    .createTable("messages")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("chat_id", "text", (c) => c.notNull())
    .addColumn("number_id", "text", (c) => c.notNull())
    .addColumn("lane_id", "text", (c) => c.notNull())
    .addColumn("direction", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("channel", "text")
    .addColumn("forced_channel", "text")
    .addColumn("text", "text")
    .addColumn("effect", "text")
    .addColumn("reply_to", "text")
    .addColumn("error_code", "text")
    .addColumn("error_message", "text")
    .addColumn("metadata", "text")
    .addColumn("from_handle", "text", (c) => c.notNull())
    .addColumn("to_handle", "text", (c) => c.notNull())
    .addColumn("voice_memo", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("send_at", "text")
    .addColumn("sent_at", "text")
    .addColumn("delivered_at", "text")
    .addColumn("read_at", "text")
    .addColumn("edited_at", "text")
    .addColumn("unsent_at", "text")
    .addColumn("edit_count", "integer", (c) => c.notNull().defaultTo(0))
    // Position in the sending number's FIFO: a UUIDv7 taken when the message (re)enters the queue.
    .addColumn("queue_key", "text")
    .addColumn("expires_at", "bigint")
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("lease_token", "text")
    .addColumn("lease_until", "bigint")
    .addColumn("device_message_id", "text")
    .addColumn("possible_duplicate", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("messages_lane_queue").on("messages").columns(["lane_id", "status", "queue_key"]).execute();
  await db.schema.createIndex("messages_list").on("messages").columns(["account_id", "mode", "created_at", "id"]).execute();
  await db.schema.createIndex("messages_chat").on("messages").columns(["chat_id", "created_at", "id"]).execute();
  await db.schema.createIndex("messages_status_expiry").on("messages").columns(["status", "expires_at"]).execute();
  await db.schema.createIndex("messages_status_send_at").on("messages").columns(["status", "send_at"]).execute();
  await db.schema.createIndex("messages_status_lease").on("messages").columns(["status", "lease_until"]).execute();
  await db.schema.createIndex("messages_device_id").on("messages").columns(["device_message_id"]).execute();

  await db.schema
    .createTable("message_reactions")
    .addColumn("message_id", "text", (c) => c.notNull())
    .addColumn("handle", "text", (c) => c.notNull())
    .addColumn("reaction", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("message_reactions_pk", ["message_id", "handle", "reaction"])
    .execute();

  await db.schema
    .createTable("sender_lanes")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("number_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    // GCRA theoretical arrival time of the next send (ms); burst 1, so never above the pace.
    .addColumn("tat", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("paused_until", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("pending", "integer", (c) => c.notNull().defaultTo(0))
    // When the lane may send next; NULL while it has nothing queued. Claims scan this index only.
    .addColumn("ready_at", "bigint")
    .execute();
  await db.schema.createIndex("sender_lanes_ready").on("sender_lanes").column("ready_at").execute();

  await db.schema
    .createTable("events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("events_account").on("events").columns(["account_id", "mode", "id"]).execute();

  await db.schema
    .createTable("simulator_history")
    .addColumn("message_id", "text", (c) => c.primaryKey())
    .addColumn("from_handle", "text", (c) => c.notNull())
    .addColumn("to_handle", "text", (c) => c.notNull())
    .addColumn("channel", "text", (c) => c.notNull())
    .addColumn("text", "text")
    .addColumn("sent_at", "bigint", (c) => c.notNull())
    .addColumn("sends", "integer", (c) => c.notNull().defaultTo(1))
    .execute();

  await db.schema
    .createTable("simulator_timers")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("due_at", "bigint", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("simulator_timers_due").on("simulator_timers").columns(["due_at", "id"]).execute();

  await db.schema
    .createTable("lookup_cache")
    .addColumn("number_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("handle", "text", (c) => c.notNull())
    .addColumn("imessage", "integer")
    .addColumn("whatsapp", "integer")
    .addColumn("checked_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("lookup_cache_pk", ["number_id", "mode", "handle"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ["lookup_cache", "simulator_timers", "simulator_history", "events", "sender_lanes", "message_reactions", "messages", "chats"]) {
    await db.schema.dropTable(t).execute();
  }
}
