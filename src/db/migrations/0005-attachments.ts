import type { Kysely } from "kysely";

// Attachments: one row per uploaded (or presigned, or inbound) file. The bytes live in storage
// (src/attachments/storage.ts) under `storage_key`; the row is the single source of truth for
// who owns them, whether they have arrived, and which message claimed them.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("attachments")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    // The request that created it: a multipart upload makes several rows with one upload_id,
    // which is what an idempotent replay of that upload loads.
    .addColumn("upload_id", "text", (c) => c.notNull())
    // pending (presigned, bytes not arrived yet) | uploaded
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("filename", "text", (c) => c.notNull())
    // What the client said the type was; only a hint for text files (sniffing decides).
    .addColumn("declared_type", "text")
    .addColumn("mime_type", "text", (c) => c.notNull())
    .addColumn("size_bytes", "bigint", (c) => c.notNull())
    .addColumn("storage_key", "text")
    // The claim: set once, in the transaction that inserts the message (single use).
    .addColumn("message_id", "text")
    .addColumn("position", "integer")
    // Unclaimed attachments are removed (row and bytes) after this time (ms).
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("attachments_message").on("attachments").columns(["message_id", "position"]).execute();
  await db.schema.createIndex("attachments_upload").on("attachments").column("upload_id").execute();
  await db.schema.createIndex("attachments_expiry").on("attachments").column("expires_at").execute();

  // How many attachments a message has (NULL or 0 = none), so the message paths that build a
  // message object only look attachments up for the messages that have some.
  await db.schema.alterTable("messages").addColumn("attachment_count", "integer").execute();

  // Server-side secrets generated on first start (the key that signs attachment URLs), kept in
  // the database so that every process of a PostgreSQL cluster signs and verifies alike.
  await db.schema
    .createTable("server_secrets")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("secret", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  // What the simulator's "device" received with each message: the bytes it read (after any
  // transcoding) and whether they went as a voice note.
  await db.schema
    .createTable("simulator_attachments")
    .addColumn("message_id", "text", (c) => c.notNull())
    .addColumn("position", "integer", (c) => c.notNull())
    .addColumn("filename", "text", (c) => c.notNull())
    .addColumn("mime_type", "text", (c) => c.notNull())
    .addColumn("size_bytes", "bigint", (c) => c.notNull())
    .addColumn("voice_note", "integer", (c) => c.notNull())
    .addPrimaryKeyConstraint("simulator_attachments_pk", ["message_id", "position"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ["simulator_attachments", "server_secrets", "attachments"]) await db.schema.dropTable(t).execute();
  await db.schema.alterTable("messages").dropColumn("attachment_count").execute();
}
