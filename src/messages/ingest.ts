import { messageEventData } from "./event-data.js";
import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, Mode, MessagesTable } from "../db/schema.js";
import { emitEvents, type EventRow } from "../events/catalog.js";
import { sql } from "kysely";
import { prepared, preparedQuery } from "../db/prepared.js";
import { uuidv7 } from "../ids.js";
import { upsertThread } from "../chats/store.js";
import { applyGroupChanged, type DeviceGroup, type GroupChangedEvent, groupChatForInbound } from "../chats/group-ingest.js";
import { laneIdOf } from "../dispatch/lanes.js";
import { toMessage } from "./store.js";
import { attachmentsByMessage, claimAttachments, publicAttachments } from "../attachments/store.js";
import { applyDeviceUpdate, type DeviceUpdateEvent } from "./ingest-updates.js";

/**
 * Signals from a device back-end, already normalised: acks of our messages (by the device's id),
 * inbound messages (in a group when `group` is set), reactions, typing, network-side group changes.
 * Applied in the caller's transaction. Status only moves forward: a late or repeated ack never
 * moves a message back. Inbound media is fetched and stored by the back-end before its event
 * (attachments/inbound.ts, outside any transaction); `attachmentIds` names it, and the inbound
 * message claims it like a send claims its uploads.
 */
export type DeviceEvent =
  | { kind: "delivered"; deviceId: string; at: number }
  | { kind: "read"; deviceId: string; at: number }
  | { kind: "failed"; deviceId: string; code: string; message: string }
  | DeviceUpdateEvent
  | { kind: "received"; numberHandle: string; mode: Mode; from: string; text: string | null; channel: ChannelName; deviceId: string; at: number; group?: DeviceGroup; attachmentIds?: string[] }
  /** `reaction` "" with `remove`: the handle's reactions on the target, whichever they were (WhatsApp). */
  | { kind: "reaction"; numberHandle: string; mode: Mode; from: string; targetDeviceId: string; reaction: string; remove: boolean; at: number }
  | { kind: "typing"; numberHandle: string; mode: Mode; from: string; state: "start" | "stop"; at: number }
  | GroupChangedEvent;

const RANK: Record<MessagesTable["status"], number> = {
  scheduled: 0, queued: 1, sending: 2, sent: 3, delivered: 4, read: 5, failed: 9, canceled: 9, received: 9,
};

export async function applyDeviceEvents(trx: Tx, clock: Clock, events: DeviceEvent[]): Promise<number> {
  const out: EventRow[] = [];
  for (const e of events) {
    switch (e.kind) {
      case "delivered":
      case "read":
        await applyAck(trx, clock, e, out);
        break;
      case "failed":
        await applyFailed(trx, clock, e, out);
        break;
      case "received":
        await applyReceived(trx, clock, e, out);
        break;
      case "reaction":
        await applyReaction(trx, e, out);
        break;
      case "typing":
        await applyTyping(trx, e, out);
        break;
      case "group_changed":
        await applyGroupChanged(trx, clock, e, out);
        break;
      default:
        await applyDeviceUpdate(trx, clock, e, out);
    }
  }
  await emitEvents(trx, clock, out);
  return events.length;
}

const selectByDeviceId = prepared((db, deviceId: string) => db.selectFrom("messages").selectAll().where("device_message_id", "=", deviceId), [":device"]);
const markDelivered = preparedQuery(
  (db, updatedAt: string, deliveredAt: string, id: string) => db.updateTable("messages").set({ status: sql<"delivered">`'delivered'`, updated_at: updatedAt, delivered_at: deliveredAt }).where("id", "=", id),
  [":updated", ":delivered", ":id"],
);
const markRead = preparedQuery(
  (db, updatedAt: string, readAt: string, deliveredAt: string, id: string) =>
    db.updateTable("messages").set({ status: sql<"read">`'read'`, updated_at: updatedAt, read_at: readAt, delivered_at: deliveredAt }).where("id", "=", id),
  [":updated", ":read", ":delivered", ":id"],
);

export async function byDeviceId(trx: Tx, deviceId: string) {
  return (await selectByDeviceId(trx, deviceId))[0];
}

async function applyAck(trx: Tx, clock: Clock, e: { kind: "delivered" | "read"; deviceId: string; at: number }, out: EventRow[]) {
  const row = await byDeviceId(trx, e.deviceId);
  if (row?.direction !== "outbound" || RANK[row.status] >= RANK[e.kind] || RANK[row.status] < RANK.sent) return;
  const at = iso(e.at);
  const set: Partial<MessagesTable> = { status: e.kind, updated_at: iso(clock.now()) };
  if (e.kind === "delivered") set.delivered_at = at;
  else {
    set.read_at = at;
    set.delivered_at = row.delivered_at ?? at;
  }
  if (e.kind === "delivered") await markDelivered(trx, set.updated_at as string, at, row.id);
  else await markRead(trx, set.updated_at as string, at, set.delivered_at as string, row.id);
  const data = await messageEventData(trx, { ...row, ...set });
  out.push({ accountId: row.account_id, mode: row.mode, type: `message.${e.kind}`, data });
}

async function applyFailed(trx: Tx, clock: Clock, e: { deviceId: string; code: string; message: string }, out: EventRow[]) {
  const row = await byDeviceId(trx, e.deviceId);
  if (!row || !["sending", "sent"].includes(row.status)) return;
  const set: Partial<MessagesTable> = { status: "failed", error_code: e.code, error_message: e.message, updated_at: iso(clock.now()) };
  await trx.updateTable("messages").set(set).where("id", "=", row.id).execute();
  out.push({ accountId: row.account_id, mode: row.mode, type: "message.failed", data: toMessage({ ...row, ...set }, [], (await attachmentsByMessage(trx, [row], "event")).get(row.id)) });
}

async function numberByHandle(trx: Tx, handle: string) {
  return trx.selectFrom("numbers").select(["id", "account_id", "handle"]).where("handle", "=", handle).executeTakeFirst();
}

export async function applyReceived(trx: Tx, clock: Clock, e: Extract<DeviceEvent, { kind: "received" }>, out: EventRow[]): Promise<MessagesTable | null> {
  if (await byDeviceId(trx, e.deviceId)) return null; // devices repeat themselves: dedupe by their id
  const number = await numberByHandle(trx, e.numberHandle);
  if (!number) return null;
  const chat = e.group
    ? await groupChatForInbound(trx, clock, number, e.mode, e.group, e.channel)
    : await upsertThread(
        trx,
        clock,
        { accountId: number.account_id, mode: e.mode, numberId: number.id, fromHandle: number.handle, remoteHandle: e.from },
        e.channel,
      );
  const now = iso(clock.now());
  const row: MessagesTable = {
    id: uuidv7(clock.now()),
    account_id: number.account_id,
    mode: e.mode,
    chat_id: chat.id,
    number_id: number.id,
    lane_id: laneIdOf(number.id, e.mode),
    direction: "inbound",
    status: "received",
    channel: e.channel,
    forced_channel: null,
    text: e.text,
    effect: null,
    reply_to: null,
    error_code: null,
    error_message: null,
    metadata: null,
    from_handle: e.from,
    to_handle: number.handle,
    voice_memo: 0,
    send_at: null,
    sent_at: iso(e.at),
    delivered_at: iso(e.at),
    read_at: null,
    edited_at: null,
    unsent_at: null,
    edit_count: 0,
    queue_key: null,
    expires_at: null,
    attempts: 0,
    lease_token: null,
    lease_until: null,
    device_message_id: e.deviceId,
    possible_duplicate: 0,
    created_at: now,
    updated_at: now,
  };
  const media = e.attachmentIds?.length ? await claimAttachments(trx, { accountId: row.account_id, mode: row.mode }, row.id, e.attachmentIds, clock.now()) : [];
  row.attachment_count = media.length;
  await trx.insertInto("messages").values(row).execute();
  out.push({ accountId: row.account_id, mode: row.mode, type: "message.received", data: toMessage(row, [], publicAttachments(trx, media, "event")) });
  return row;
}

async function applyReaction(trx: Tx, e: Extract<DeviceEvent, { kind: "reaction" }>, out: EventRow[]) {
  const target = await byDeviceId(trx, e.targetDeviceId);
  if (!target) return;
  // WhatsApp removes a reaction without naming it (WAHA: empty text): remove what that handle had.
  const names = e.remove && e.reaction === ""
    ? (await trx.selectFrom("message_reactions").select("reaction").where("message_id", "=", target.id).where("handle", "=", e.from).execute()).map((r) => r.reaction)
    : [e.reaction];
  if (!e.remove && target.channel === "whatsapp") {
    for (const old of await replacedWhatsAppReactions(trx, target.id, e.from, e.reaction)) {
      out.push({ accountId: target.account_id, mode: target.mode, type: "message.reaction", data: reactionData(target, { ...old, created_at: iso(e.at) }, true) });
    }
  }
  for (const name of names) {
    const reaction = { message_id: target.id, handle: e.from, reaction: name, created_at: iso(e.at) };
    // Devices repeat themselves (BlueBubbles fires new-message twice): only a change is an event.
    if (!(await saveReaction(trx, reaction, e.remove))) continue;
    out.push({ accountId: target.account_id, mode: target.mode, type: "message.reaction", data: reactionData(target, reaction, e.remove) });
  }
}

/**
 * WhatsApp keeps one reaction per person: a new one replaces theirs. Removes the handle's other
 * reactions on the message and returns them (each is a `removed` event).
 */
export async function replacedWhatsAppReactions(trx: Tx, messageId: string, handle: string, keep: string) {
  const old = await trx.selectFrom("message_reactions").select(["handle", "reaction"]).where("message_id", "=", messageId).where("handle", "=", handle).where("reaction", "!=", keep).execute();
  if (old.length > 0) await trx.deleteFrom("message_reactions").where("message_id", "=", messageId).where("handle", "=", handle).where("reaction", "!=", keep).execute();
  return old;
}

/** Adds or removes one (message, handle, reaction); adding twice is one reaction. True when it changed something. */
export async function saveReaction(trx: Tx, r: { message_id: string; handle: string; reaction: string; created_at: string }, remove: boolean): Promise<boolean> {
  if (remove) {
    const res = await trx.deleteFrom("message_reactions").where("message_id", "=", r.message_id).where("handle", "=", r.handle).where("reaction", "=", r.reaction).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
  const res = await trx.insertInto("message_reactions").values(r).onConflict((oc) => oc.columns(["message_id", "handle", "reaction"]).doNothing()).executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
}

export function reactionData(target: MessagesTable, r: { handle: string; reaction: string; created_at: string }, removed: boolean) {
  return { message_id: target.id, conversation_id: target.chat_id, reaction: r.reaction, handle: r.handle, removed, created_at: r.created_at };
}

async function applyTyping(trx: Tx, e: Extract<DeviceEvent, { kind: "typing" }>, out: EventRow[]) {
  const number = await numberByHandle(trx, e.numberHandle);
  if (!number) return;
  const chat = await trx
    .selectFrom("chats")
    .select("id")
    .where("account_id", "=", number.account_id)
    .where("mode", "=", e.mode)
    .where("from_handle", "=", number.handle)
    .where("remote_handle", "=", e.from)
    .executeTakeFirst();
  out.push({
    accountId: number.account_id,
    mode: e.mode,
    type: "chat.typing",
    data: { conversation_id: chat?.id ?? null, from_handle: number.handle, remote_handle: e.from, state: e.state, at: iso(e.at) },
  });
}
