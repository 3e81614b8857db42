import { messageEventData } from "./event-data.js";
import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { MessagesTable } from "../db/schema.js";
import type { EventRow } from "../events/catalog.js";
import { byDeviceId } from "./ingest.js";

/**
 * Device signals about messages that already exist, which only real networks send:
 * - `sent`: the device reports our message (by our id, its temporary GUID) as gone out — the
 *   BlueBubbles `new-message` echo carrying `tempGuid`. It can arrive while our own send call is
 *   still waiting (a BlueBubbles send blocks for up to 2 minutes), so it settles the `sending`
 *   message itself; the send's late answer then finds nothing left to change.
 * - `send_failed`: the device reports our message (by our id) as failed (`message-send-error`).
 * - `edited` / `unsent`: a contact edited or unsent their message on the network.
 */
export type DeviceUpdateEvent =
  | { kind: "sent"; messageId: string; deviceId: string; at: number }
  | { kind: "send_failed"; messageId: string; deviceId: string | null; code: string; message: string }
  | { kind: "edited"; deviceId: string; text: string; at: number }
  | { kind: "unsent"; deviceId: string; at: number };

export async function applyDeviceUpdate(trx: Tx, clock: Clock, e: DeviceUpdateEvent, out: EventRow[]): Promise<void> {
  switch (e.kind) {
    case "sent":
      return applySent(trx, clock, e, out);
    case "send_failed":
      return applySendFailed(trx, clock, e, out);
    case "edited":
    case "unsent":
      return applyContactChange(trx, clock, e, out);
  }
}

async function byId(trx: Tx, id: string): Promise<MessagesTable | undefined> {
  return trx.selectFrom("messages").selectAll().where("id", "=", id).executeTakeFirst();
}

async function eventOf(trx: Tx, row: MessagesTable, type: EventRow["type"]): Promise<EventRow> {
  return { accountId: row.account_id, mode: row.mode, type, data: await messageEventData(trx, row) };
}

async function applySent(trx: Tx, clock: Clock, e: Extract<DeviceUpdateEvent, { kind: "sent" }>, out: EventRow[]) {
  const row = await byId(trx, e.messageId);
  if (row?.direction !== "outbound") return;
  if (row.status !== "sending") {
    // Already recorded (the send's own answer came first): only learn a device id we lack.
    if (!row.device_message_id && ["sent", "delivered", "read"].includes(row.status)) {
      await trx.updateTable("messages").set({ device_message_id: e.deviceId }).where("id", "=", row.id).execute();
    }
    return;
  }
  const now = iso(clock.now());
  const set = { status: "sent" as const, sent_at: iso(e.at), device_message_id: e.deviceId, lease_token: null, lease_until: null, updated_at: now };
  const res = await trx.updateTable("messages").set(set).where("id", "=", row.id).where("status", "=", "sending").executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return;
  out.push(await eventOf(trx, { ...row, ...set }, "message.sent"));
}

async function applySendFailed(trx: Tx, clock: Clock, e: Extract<DeviceUpdateEvent, { kind: "send_failed" }>, out: EventRow[]) {
  const row = (await byId(trx, e.messageId)) ?? (e.deviceId ? await byDeviceId(trx, e.deviceId) : undefined);
  if (row?.direction !== "outbound" || !["sending", "sent"].includes(row.status)) return;
  const set = { status: "failed" as const, error_code: e.code, error_message: e.message, lease_token: null, lease_until: null, updated_at: iso(clock.now()) };
  const res = await trx.updateTable("messages").set(set).where("id", "=", row.id).where("status", "in", ["sending", "sent"]).executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return;
  out.push(await eventOf(trx, { ...row, ...set }, "message.failed"));
}

async function applyContactChange(trx: Tx, clock: Clock, e: Extract<DeviceUpdateEvent, { kind: "edited" | "unsent" }>, out: EventRow[]) {
  const row = await byDeviceId(trx, e.deviceId);
  // Our own edits and unsends come back from the device too; the API already recorded them.
  if (row?.direction !== "inbound" || row.unsent_at) return;
  const now = iso(clock.now());
  if (e.kind === "edited") {
    if (row.text === e.text) return; // a repeat of an edit already applied
    const set = { text: e.text, edited_at: iso(e.at), edit_count: row.edit_count + 1, updated_at: now };
    await trx.updateTable("messages").set(set).where("id", "=", row.id).execute();
    out.push(await eventOf(trx, { ...row, ...set }, "message.edited"));
  } else {
    const set = { unsent_at: iso(e.at), updated_at: now };
    await trx.updateTable("messages").set(set).where("id", "=", row.id).execute();
    out.push(await eventOf(trx, { ...row, ...set }, "message.unsent"));
  }
}
