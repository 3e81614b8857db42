import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { Mode } from "../db/schema.js";
import { uuidv7 } from "../ids.js";
import { writeEvents } from "../webhooks/fan-out.js";

/**
 * Every event type MsgBubbles emits. Each is written as a row in the same transaction as the
 * state change that caused it (the outbox), together with its webhook deliveries; the webhook
 * worker sends from those rows. docs/webhooks.md documents each with an example, and a test keeps
 * the two in step.
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
  "chat.updated",
  "number.status",
  "webhook.test",
  "webhook.disabled",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface EventRow {
  accountId: string;
  mode: Mode;
  type: EventType;
  data: unknown;
}

/**
 * Writes event rows, and the webhook deliveries they fan out to (every enabled endpoint of the
 * account and mode that subscribes to the type); call inside the transaction of the change they
 * report.
 */
export async function emitEvents(trx: Tx, clock: Clock, events: EventRow[]): Promise<void> {
  if (events.length === 0) return;
  const now = clock.now();
  const createdAt = iso(now);
  const rows = events.map((e) => ({
    id: uuidv7(now),
    account_id: e.accountId,
    mode: e.mode,
    type: e.type,
    data: JSON.stringify(e.data),
    created_at: createdAt,
  }));
  await writeEvents(trx, rows, now);
  for (const listener of written) listener();
}

const written = new Set<() => void>();

/**
 * Calls `listener` whenever this process writes event rows, so the webhook worker starts a claim
 * at once instead of at its next poll. The rows are visible after their transaction commits: on
 * SQLite the claim queues behind that commit; elsewhere a claim that runs early finds nothing and
 * the poll (WEBHOOK_INTERVAL_MS) picks the rows up. Returns the unsubscribe.
 */
export function onEventsWritten(listener: () => void): () => void {
  written.add(listener);
  return () => written.delete(listener);
}
