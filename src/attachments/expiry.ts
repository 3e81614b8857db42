import type { Clock } from "../clock.js";
import type { Db } from "../db/client.js";
import type { AttachmentStorage } from "./storage.js";

const BATCH = 500;
/** A temporary file this old belongs to a write that died with its process. */
const STALE_TEMP_MS = 24 * 3_600_000;

/**
 * The reaper of unclaimed uploads (maintenance.ts runs it): rows past `expires_at` that no message
 * claimed are deleted first — guarded by `message_id IS NULL`, so a send that claims one at the
 * same moment wins or loses cleanly, never half — and then the bytes of exactly the rows deleted.
 * (Transcoded renditions exist only for claimed attachments, which never expire.) Returns the
 * number of attachments removed.
 */
export async function expireAttachments(db: Db, clock: Clock, storage: AttachmentStorage & { sweepTemp?(nowMs: number, ageMs: number): Promise<number> }): Promise<number> {
  const now = clock.now();
  let removed = 0;
  for (;;) {
    const gone = await db.transaction((trx) =>
      trx
        .deleteFrom("attachments")
        .where("id", "in", (eb) => eb.selectFrom("attachments").select("id").where("message_id", "is", null).where("expires_at", "<=", now).limit(BATCH))
        .where("message_id", "is", null)
        .returning("storage_key")
        .execute(),
    );
    for (const { storage_key } of gone) if (storage_key !== null) await storage.delete(storage_key);
    removed += gone.length;
    if (gone.length < BATCH) break;
  }
  // Temporary files carry real file times, so they are judged by the real clock.
  await storage.sweepTemp?.(Date.now(), STALE_TEMP_MS);
  return removed;
}
