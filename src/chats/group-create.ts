import type { Backends } from "../backends/registry.js";
import { deviceNumber } from "../backends/registry.js";
import { iso, type Clock } from "../clock.js";
import type { Db, Tx } from "../db/client.js";
import type { ChannelName, ChatsTable, MessagesTable, NumbersTable } from "../db/schema.js";
import { laneIdOf } from "../dispatch/lanes.js";
import { ApiError } from "../errors.js";
import { emitEvents } from "../events/catalog.js";
import { normaliseHandle } from "../handles.js";
import { uuidv7 } from "../ids.js";
import { requireOnline, senderNumber } from "../messages/service.js";
import { type Scope, toMessage } from "../messages/store.js";
import type { ChatIn } from "./group-schemas.js";
import { groupAddress } from "./group-send.js";
import { insertGroupChat } from "./group-store.js";
import { touchChat } from "./store.js";

export interface GroupDeps {
  db: Db;
  clock: Clock;
  backends: Backends;
}

/** Called inside the transaction that stores the outcome (the idempotency key's completion). */
export type Commit = (trx: Tx, chatId: string) => Promise<void>;

/**
 * POST /v1/chats. The group is created on the device first, with its first message, outside any
 * transaction — the network's verdict is the answer (502 chat_create_failed, 503 device_offline)
 * and nothing is written when it refuses. Then one transaction stores the chat, the first message
 * (status `sent`: it already went out with the group) and its `message.created` and
 * `message.sent` events. The first message bypasses the number's pacing queue: it is the group's
 * creation, not a queued send, and nothing in its new thread can be overtaken.
 */
export async function createGroupChat(deps: GroupDeps, scope: Scope, input: ChatIn, commit: Commit): Promise<ChatsTable> {
  const number = await senderNumber(deps.db.kysely, scope, input.from_handle);
  const addresses = groupAddresses(input.addresses, number.handle);
  const channel = groupChannelOf(number);
  requireOnline(number, scope);

  // Our message id goes to the device as its temporary GUID, so it is chosen before the call.
  const messageId = uuidv7(deps.clock.now());
  const outcome = await deps.backends.for(number, scope.mode).createGroup(deviceNumber(number, scope.mode), {
    addresses,
    title: input.title ?? null,
    channel,
    firstMessage: { id: messageId, text: input.message.text, effect: input.message.effect ?? null },
  });
  if (!outcome.ok) throw new ApiError(outcome.offline ? "device_offline" : "chat_create_failed", outcome.message);

  return deps.db.transaction(async (trx) => {
    const now = iso(deps.clock.now());
    const planned: ChatsTable = {
      id: uuidv7(deps.clock.now()),
      account_id: scope.accountId,
      mode: scope.mode,
      number_id: number.id,
      from_handle: number.handle,
      remote_handle: null,
      is_group: 1,
      title: input.title ?? null,
      participants: JSON.stringify(addresses),
      channel,
      last_message_at: now,
      created_at: now,
      updated_at: now,
      device_chat_id: outcome.chatDeviceId,
    };
    let chat = await insertGroupChat(trx, planned);
    if (chat.id !== planned.id) {
      // The device answered with a group we already have: the first message lands in it.
      await touchChat(trx, deps.clock, chat.id);
      chat = { ...chat, last_message_at: now, updated_at: now };
    }
    const row = firstMessageRow(chat, number, messageId, outcome.firstMessageDeviceId, input, now);
    await trx.insertInto("messages").values(row).execute();
    const data = toMessage(row);
    await emitEvents(trx, deps.clock, [
      { accountId: scope.accountId, mode: scope.mode, type: "message.created", data },
      { accountId: scope.accountId, mode: scope.mode, type: "message.sent", data },
    ]);
    await commit(trx, chat.id);
    return chat;
  });
}

/** The members as handles: normalised, each once, in the order given; never our own number. */
function groupAddresses(raw: string[], own: string): string[] {
  const handles = raw.map((a, i) => {
    const h = normaliseHandle(a);
    if (!h) throw new ApiError("invalid_handle", `addresses[${i}] is not a valid E.164 phone number or email address.`);
    return h.handle;
  });
  if (handles.includes(own)) throw new ApiError("invalid_request", "addresses must not include from_handle: you are in the group already.");
  const unique = [...new Set(handles)];
  if (unique.length < 2) throw new ApiError("invalid_request", "addresses must name at least 2 different handles.");
  return unique;
}

/** Groups are iMessage (or WhatsApp on a WhatsApp-only number); SMS has no groups here. */
function groupChannelOf(number: NumbersTable): ChannelName {
  const channels = number.channels.split(",");
  if (channels.includes("imessage")) return "imessage";
  if (channels.includes("whatsapp")) return "whatsapp";
  throw new ApiError("invalid_from_handle", `${number.handle} serves SMS only and cannot create group chats.`);
}

function firstMessageRow(chat: ChatsTable, number: NumbersTable, id: string, deviceId: string, input: ChatIn, now: string): MessagesTable {
  return {
    id,
    account_id: chat.account_id,
    mode: chat.mode,
    chat_id: chat.id,
    number_id: number.id,
    lane_id: laneIdOf(number.id, chat.mode),
    direction: "outbound",
    status: "sent",
    channel: chat.channel,
    forced_channel: chat.channel,
    text: input.message.text,
    effect: input.message.effect ?? null,
    reply_to: null,
    error_code: null,
    error_message: null,
    metadata: input.message.metadata ? JSON.stringify(input.message.metadata) : null,
    from_handle: number.handle,
    to_handle: groupAddress(chat),
    voice_memo: 0,
    send_at: null,
    sent_at: now,
    delivered_at: null,
    read_at: null,
    edited_at: null,
    unsent_at: null,
    edit_count: 0,
    queue_key: null,
    expires_at: null,
    attempts: 1,
    lease_token: null,
    lease_until: null,
    device_message_id: deviceId,
    possible_duplicate: 0,
    created_at: now,
    updated_at: now,
  };
}
