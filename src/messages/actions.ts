import { messageEventData } from "./event-data.js";
import { iso } from "../clock.js";
import type { MessagesTable, NumbersTable } from "../db/schema.js";
import { ApiError, type ErrorCode } from "../errors.js";
import { emitEvents } from "../events/catalog.js";
import type { ActionOutcome, MessageTarget } from "../backends/backend.js";
import { type Backends, deviceNumber } from "../backends/registry.js";
import { reactionData, replacedWhatsAppReactions, saveReaction } from "./ingest.js";
import { cancelQueued, type MessageDeps, requireOnline } from "./service.js";
import { type Scope, getMessageRow } from "./store.js";
import { TAPBACKS } from "./schemas.js";

/**
 * The synchronous message actions (edit, unsend, react): the 409 rules of api.md, then the device
 * call outside any transaction, then the change and its event in one transaction. The device's
 * verdict is the answer: refused → 502 *_failed, unreachable → 503 device_offline.
 */
export interface ActionDeps extends MessageDeps {
  backends: Backends;
}

const MIN = 60_000;
const EDIT_WINDOW_MS = 15 * MIN;
const MAX_IMESSAGE_EDITS = 5;
const UNSEND_WINDOW_MS = 2 * MIN;
const DELIVERED_OR_LATER = new Set(["sent", "delivered", "read"]);

async function numberOf(deps: ActionDeps, row: MessagesTable): Promise<NumbersTable> {
  const number = await deps.db.kysely.selectFrom("numbers").selectAll().where("id", "=", row.number_id).executeTakeFirst();
  if (!number) throw new ApiError("conflict", "The message's number is no longer assigned to your account.");
  return number;
}

async function onDevice(deps: ActionDeps, scope: Scope, row: MessagesTable, failed: ErrorCode, call: (b: ReturnType<Backends["for"]>, n: ReturnType<typeof deviceNumber>) => Promise<ActionOutcome>) {
  const number = await numberOf(deps, row);
  requireOnline(number, scope);
  const outcome = await call(deps.backends.for(number, scope.mode), deviceNumber(number, scope.mode));
  if (!outcome.ok) throw new ApiError(outcome.offline ? "device_offline" : failed, outcome.message);
}

/** The message as its device addresses it; in a group, the device's chat too (BlueBubbles needs its chat GUID). */
async function target(deps: ActionDeps, row: MessagesTable): Promise<MessageTarget> {
  const chat = await deps.db.kysely.selectFrom("chats").select(["is_group", "device_chat_id"]).where("id", "=", row.chat_id).executeTakeFirst();
  return {
    deviceId: row.device_message_id ?? "",
    to: row.direction === "outbound" ? row.to_handle : row.from_handle,
    channel: row.channel ?? "imessage",
    ...(chat?.is_group === 1 && chat.device_chat_id ? { chatDeviceId: chat.device_chat_id } : {}),
  };
}

export async function editMessage(deps: ActionDeps, scope: Scope, id: string, text: string): Promise<MessagesTable> {
  const row = await getMessageRow(deps.db.kysely, scope, id);
  const now = deps.clock.now();
  if (row.direction !== "outbound") throw new ApiError("conflict", "Only your own messages can be edited.");
  if (row.status === "queued" || row.status === "scheduled") {
    return deps.db.transaction(async (trx) => {
      const set = { text, updated_at: iso(now) };
      const res = await trx.updateTable("messages").set(set).where("id", "=", row.id).where("status", "=", row.status).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new ApiError("conflict", "The message is already being sent.");
      return { ...row, ...set };
    });
  }
  if (!DELIVERED_OR_LATER.has(row.status) || row.unsent_at) throw new ApiError("conflict", `A ${row.unsent_at ? "unsent" : row.status} message cannot be edited.`);
  if (row.channel === "sms") throw new ApiError("conflict", "SMS messages cannot be edited.");
  if (now - Date.parse(row.sent_at ?? row.created_at) > EDIT_WINDOW_MS) throw new ApiError("conflict", "The 15-minute edit window has passed.");
  if (row.channel === "imessage" && row.edit_count >= MAX_IMESSAGE_EDITS) throw new ApiError("conflict", "An iMessage can be edited at most 5 times.");
  // Reserve the edit before calling the device, so two concurrent edits cannot both pass the
  // 5-edit cap; a refused edit gives its reservation back.
  const reserve = await deps.db.transaction((trx) =>
    trx.updateTable("messages").set({ edit_count: row.edit_count + 1 }).where("id", "=", row.id).where("edit_count", "=", row.edit_count).executeTakeFirst(),
  );
  if (Number(reserve.numUpdatedRows) !== 1) throw new ApiError("conflict", "Another edit of this message is in progress.");
  try {
    const to = await target(deps, row);
    await onDevice(deps, scope, row, "edit_failed", (b, n) => b.edit(n, to, text));
  } catch (err) {
    await deps.db.transaction((trx) => trx.updateTable("messages").set({ edit_count: row.edit_count }).where("id", "=", row.id).execute());
    throw err;
  }
  return deps.db.transaction(async (trx) => {
    const set = { text, edited_at: iso(now), edit_count: row.edit_count + 1, updated_at: iso(now) };
    await trx.updateTable("messages").set(set).where("id", "=", row.id).execute();
    const updated = { ...row, ...set };
    // The event carries the whole message as it now is, reactions included.
    const data = await messageEventData(trx, updated);
    await emitEvents(trx, deps.clock, [{ accountId: row.account_id, mode: row.mode, type: "message.edited", data }]);
    return updated;
  });
}

/** DELETE: cancel a message that has not gone out, or unsend one that has (where allowed). */
export async function deleteMessage(deps: ActionDeps, scope: Scope, id: string): Promise<MessagesTable> {
  const row = await getMessageRow(deps.db.kysely, scope, id);
  const now = deps.clock.now();
  if (row.direction !== "outbound") throw new ApiError("conflict", "Only your own messages can be unsent.");
  if (row.status === "queued" || row.status === "scheduled") return deps.db.transaction((trx) => cancelQueued(trx, deps, row));
  if (!DELIVERED_OR_LATER.has(row.status) || row.unsent_at) throw new ApiError("conflict", `A ${row.unsent_at ? "unsent" : row.status} message cannot be unsent.`);
  if (row.channel === "sms") throw new ApiError("conflict", "SMS messages cannot be unsent.");
  if (row.channel === "imessage" && now - Date.parse(row.sent_at ?? row.created_at) > UNSEND_WINDOW_MS) {
    throw new ApiError("conflict", "The 2-minute unsend window has passed.");
  }
  const to = await target(deps, row);
  await onDevice(deps, scope, row, "unsend_failed", (b, n) => b.unsend(n, to));
  return deps.db.transaction(async (trx) => {
    const set = { unsent_at: iso(now), updated_at: iso(now) };
    await trx.updateTable("messages").set(set).where("id", "=", row.id).execute();
    const updated = { ...row, ...set };
    const data = await messageEventData(trx, updated);
    await emitEvents(trx, deps.clock, [{ accountId: row.account_id, mode: row.mode, type: "message.unsent", data }]);
    return updated;
  });
}

const EMOJI = /^(?:\p{Extended_Pictographic}|\p{Regional_Indicator}{2})(?:\p{Emoji_Modifier}|\uFE0F|\u200D\p{Extended_Pictographic})*$/u;

export async function reactToMessage(deps: ActionDeps, scope: Scope, id: string, reaction: string, remove: boolean): Promise<MessagesTable> {
  const row = await getMessageRow(deps.db.kysely, scope, id);
  if (row.unsent_at) throw new ApiError("conflict", "The message was unsent.");
  if (row.channel === "sms") throw new ApiError("conflict", "SMS messages cannot carry reactions.");
  if (row.direction === "outbound" && row.status !== "delivered" && row.status !== "read") {
    throw new ApiError("conflict", "A message can be reacted to once it is delivered.");
  }
  if (row.channel === "whatsapp" ? !EMOJI.test(reaction) : !(TAPBACKS as readonly string[]).includes(reaction)) {
    throw new ApiError(
      "invalid_request",
      row.channel === "whatsapp" ? "body.reaction must be one emoji on WhatsApp." : `body.reaction must be one of: ${TAPBACKS.join(", ")}.`,
    );
  }
  const to = await target(deps, row);
  await onDevice(deps, scope, row, "reaction_failed", (b, n) => b.react(n, to, reaction, remove));
  const ourHandle = row.direction === "outbound" ? row.from_handle : row.to_handle;
  return deps.db.transaction(async (trx) => {
    const r = { message_id: row.id, handle: ourHandle, reaction, created_at: iso(deps.clock.now()) };
    // WhatsApp keeps one reaction per person: ours replaces our previous one.
    const replaced = !remove && row.channel === "whatsapp" ? await replacedWhatsAppReactions(trx, row.id, ourHandle, reaction) : [];
    await saveReaction(trx, r, remove);
    await emitEvents(trx, deps.clock, [
      ...replaced.map((old) => ({ accountId: row.account_id, mode: row.mode, type: "message.reaction" as const, data: reactionData(row, { ...old, created_at: r.created_at }, true) })),
      { accountId: row.account_id, mode: row.mode, type: "message.reaction", data: reactionData(row, r, remove) },
    ]);
    return row;
  });
}
