import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { Mode } from "../db/schema.js";
import { uuidv7 } from "../ids.js";

/**
 * Every event type MsgBubbles emits. Each is written as a row in the same transaction as the
 * state change that caused it (the outbox); webhooks deliver from those rows. docs/webhooks.md
 * documents each with an example, and a test keeps the two in step.
 */
export const EVENT_TYPES = [
  "message.created",
  "message.received",
  "message.sent",
  "message.delivered",
  "message.read",
  "message.failed",
  "message.reaction",
  "message.edited",
  "message.unsent",
  "chat.typing",
  "number.status",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface EventRow {
  accountId: string;
  mode: Mode;
  type: EventType;
  data: unknown;
}

/** Writes event rows; call inside the transaction of the change they report. */
export async function emitEvents(trx: Tx, clock: Clock, events: EventRow[]): Promise<void> {
  if (events.length === 0) return;
  const now = clock.now();
  await trx
    .insertInto("events")
    .values(
      events.map((e) => ({
        id: uuidv7(now),
        account_id: e.accountId,
        mode: e.mode,
        type: e.type,
        data: JSON.stringify(e.data),
        created_at: iso(now),
      })),
    )
    .execute();
}
