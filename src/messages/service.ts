import { iso, type Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Db, Tx } from "../db/client.js";
import { prepared, preparedInsert } from "../db/prepared.js";
import type { ChannelName, ChatsTable, MessagesTable, NumbersTable, SenderLanesTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { normaliseHandle } from "../handles.js";
import { uuidv7 } from "../ids.js";
import { getChatRow, upsertThread, touchChat } from "../chats/store.js";
import { groupAddress, groupChannel } from "../chats/group-send.js";
import { adjustPending, laneIdOf, lockLane, paceInterval, saveLane } from "../dispatch/lanes.js";
import { statusFor } from "../numbers/store.js";
import { emitEvents } from "../events/catalog.js";
import { checkAttachmentsFit } from "../attachments/media-limits.js";
import { claimAll, publicAttachments } from "../attachments/store.js";
import type { MessageIn } from "./schemas.js";
import { MESSAGE_COLUMNS, type Scope, toMessage } from "./store.js";

export interface MessageDeps {
  db: Db;
  clock: Clock;
  config: Config;
}

const MAX_SCHEDULE_MS = 30 * 24 * 3_600_000;

const numberByHandle = prepared((db, handle: string, accountId: string) => db.selectFrom("numbers").selectAll().where("handle", "=", handle).where("account_id", "=", accountId), [":handle", ":account"]);
const insertMessage = preparedInsert("messages", MESSAGE_COLUMNS);

/** The account's number with this handle, or 400 invalid_from_handle. */
export async function senderNumber(trx: Tx, scope: Scope, handle: string): Promise<NumbersTable> {
  const h = normaliseHandle(handle);
  if (!h) throw new ApiError("invalid_handle", "from_handle is not a valid E.164 phone number or email address.");
  const [number] = await numberByHandle(trx, h.handle, scope.accountId);
  if (!number) throw new ApiError("invalid_from_handle");
  return number;
}

export function requireOnline(number: NumbersTable, scope: Scope): void {
  if (statusFor(number, scope.mode) === "offline") throw new ApiError("device_offline", `The device of ${number.handle} is offline. Safe to retry.`);
}

function checkForcedChannel(number: NumbersTable, channel: ChannelName | undefined, scope: Scope): ChannelName | null {
  if (!channel) return null;
  // Live WhatsApp needs a working WAHA session (the device monitor keeps offline_channels).
  const sessionDown = channel === "whatsapp" && scope.mode === "live" && number.offline_channels.split(",").includes("whatsapp");
  if (!number.channels.split(",").includes(channel) || sessionDown) {
    throw new ApiError(
      "invalid_from_handle",
      channel === "whatsapp" ? `${number.handle} has no connected WhatsApp session.` : `${number.handle} does not send ${channel}.`,
    );
  }
  return channel;
}

/**
 * Accepts a send: validates it against the account, then — in the caller's transaction — upserts
 * the chat, inserts the message (queued, or scheduled) and counts it into its sender lane.
 */
export async function acceptMessage(trx: Tx, deps: MessageDeps, scope: Scope, input: MessageIn): Promise<MessagesTable> {
  const now = deps.clock.now();
  if (input.text === undefined && input.attachment_ids === undefined) {
    throw new ApiError("invalid_request", "Send text, attachment_ids, or both.");
  }
  let sendAt: number | null = null;
  if (input.send_at !== undefined) {
    sendAt = Date.parse(input.send_at);
    if (sendAt > now + MAX_SCHEDULE_MS) throw new ApiError("invalid_request", "body.send_at must be at most 30 days ahead.");
    if (sendAt <= now) sendAt = null; // a time already passed means "now"
  }

  let chat: ChatsTable | null = null;
  let number: NumbersTable;
  let to: string;
  if (input.conversation_id) {
    chat = await getChatRow(trx, scope, input.conversation_id);
    number = await trx.selectFrom("numbers").selectAll().where("id", "=", chat.number_id).where("account_id", "=", scope.accountId).executeTakeFirstOrThrow(() => new ApiError("invalid_from_handle", "The chat's number is no longer assigned to your account."));
    if (input.from_handle !== undefined && normaliseHandle(input.from_handle)?.handle !== number.handle) {
      throw new ApiError("invalid_request", "from_handle does not match the conversation's number.");
    }
    // A group has no single recipient: its messages are addressed to the group (chats/group-send.ts).
    to = chat.is_group === 1 ? groupAddress(chat) : chat.remote_handle ?? "";
    if (input.to !== undefined && normaliseHandle(input.to)?.handle !== chat.remote_handle) {
      throw new ApiError("invalid_request", "to does not match the conversation's contact.");
    }
  } else {
    if (input.to === undefined || input.from_handle === undefined) {
      throw new ApiError("invalid_request", "Send to and from_handle, or conversation_id.");
    }
    const recipient = normaliseHandle(input.to);
    if (!recipient) throw new ApiError("invalid_handle", "to is not a valid E.164 phone number or email address.");
    to = recipient.handle;
    number = await senderNumber(trx, scope, input.from_handle);
  }
  const forced = chat?.is_group === 1 ? groupChannel(chat, input.channel) : checkForcedChannel(number, input.channel, scope);
  if (input.reply_to) {
    const target = await trx.selectFrom("messages").select("id").where("id", "=", input.reply_to.toLowerCase()).where("account_id", "=", scope.accountId).where("mode", "=", scope.mode).executeTakeFirst();
    if (!target) throw new ApiError("not_found", "reply_to is not a message of this account.");
  }
  // A send for later is accepted while the device is offline: it is only needed at send_at.
  if (sendAt === null) requireOnline(number, scope);

  const id = uuidv7(now);
  // The single-use claim, in this transaction: if anything below refuses the send, it rolls back
  // with it. A send without attachment_ids pays nothing here.
  const attachments = input.attachment_ids ? await claimAll(trx, scope, id, input.attachment_ids, now) : [];
  if (attachments.length > 0) checkAttachmentsFit(deps.config, attachments, forced ? [forced] : (number.channels.split(",") as ChannelName[]));

  const laneId = laneIdOf(number.id, scope.mode);
  const window = deps.config.MESSAGE_VALIDITY_HOURS * 3_600_000;
  let lane: SenderLanesTable | null = null;
  if (sendAt === null) {
    lane = await lockLane(trx, deps.db, laneId, number.id, scope.mode);
    const interval = paceInterval(number.pace_per_minute ?? deps.config.DEFAULT_PACE_PER_MINUTE);
    const drainMs = (lane.pending + 1) * interval + Math.max(0, lane.tat - now);
    if (drainMs > window) {
      throw new ApiError("sender_queue_full", undefined, { "retry-after": String(Math.ceil((drainMs - window) / 1000)) });
    }
  }
  if (!chat) {
    chat = await upsertThread(trx, deps.clock, { accountId: scope.accountId, mode: scope.mode, numberId: number.id, fromHandle: number.handle, remoteHandle: to }, forced);
  } else {
    await touchChat(trx, deps.clock, chat.id);
  }

  const nowIso = iso(now);
  const row: MessagesTable = {
    id,
    account_id: scope.accountId,
    mode: scope.mode,
    chat_id: chat.id,
    number_id: number.id,
    lane_id: laneId,
    direction: "outbound",
    status: sendAt === null ? "queued" : "scheduled",
    channel: null,
    forced_channel: forced,
    text: input.text ?? null,
    effect: input.effect ?? null,
    reply_to: input.reply_to?.toLowerCase() ?? null,
    error_code: null,
    error_message: null,
    metadata: input.metadata ? JSON.stringify(input.metadata) : null,
    from_handle: number.handle,
    to_handle: to,
    voice_memo: input.voice_memo ? 1 : 0,
    send_at: sendAt === null ? null : iso(sendAt),
    sent_at: null,
    delivered_at: null,
    read_at: null,
    edited_at: null,
    unsent_at: null,
    edit_count: 0,
    queue_key: sendAt === null ? uuidv7(now) : null,
    expires_at: (sendAt ?? now) + window,
    attempts: 0,
    lease_token: null,
    lease_until: null,
    device_message_id: null,
    possible_duplicate: 0,
    created_at: nowIso,
    updated_at: nowIso,
    attachment_count: attachments.length,
  };
  await insertMessage(trx, row);
  if (lane) {
    lane.pending += 1;
    await saveLane(trx, lane);
  }
  await emitEvents(trx, deps.clock, [{ accountId: scope.accountId, mode: scope.mode, type: "message.created", data: toMessage(row, [], publicAttachments(trx, attachments, "event")) }]);
  return row;
}

/** A failed outbound message goes back to the end of its lane's queue as a new attempt. */
export async function retryMessage(trx: Tx, deps: MessageDeps, scope: Scope, id: string): Promise<MessagesTable> {
  const row = await trx.selectFrom("messages").selectAll().where("id", "=", id.toLowerCase()).where("account_id", "=", scope.accountId).where("mode", "=", scope.mode).executeTakeFirst();
  if (!row) throw new ApiError("not_found", "No such message.");
  if (row.direction !== "outbound" || row.status !== "failed") throw new ApiError("conflict", "Only a failed outbound message can be retried.");
  const number = await trx.selectFrom("numbers").selectAll().where("id", "=", row.number_id).executeTakeFirst();
  if (!number) throw new ApiError("invalid_from_handle", "The message's number is no longer assigned to your account.");
  requireOnline(number, scope);
  const now = deps.clock.now();
  const set = {
    status: "queued" as const,
    error_code: null,
    error_message: null,
    queue_key: uuidv7(now),
    expires_at: now + deps.config.MESSAGE_VALIDITY_HOURS * 3_600_000,
    updated_at: iso(now),
  };
  await trx.updateTable("messages").set(set).where("id", "=", row.id).execute();
  await adjustPending(trx, deps.db, row.lane_id, row.number_id, row.mode, +1);
  return { ...row, ...set };
}

/** Cancels a queued or scheduled message (DELETE before it went out). */
export async function cancelQueued(trx: Tx, deps: MessageDeps, row: MessagesTable): Promise<MessagesTable> {
  // Lane first, then message: the order the dispatcher's claim takes them in (no deadlock).
  const lane = row.status === "queued" ? await lockLane(trx, deps.db, row.lane_id, row.number_id, row.mode) : null;
  const set = { status: "canceled" as const, updated_at: iso(deps.clock.now()) };
  const res = await trx.updateTable("messages").set(set).where("id", "=", row.id).where("status", "=", row.status).executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new ApiError("conflict", "The message is already being sent.");
  if (lane) {
    lane.pending = Math.max(0, lane.pending - 1);
    await saveLane(trx, lane);
  }
  return { ...row, ...set };
}

