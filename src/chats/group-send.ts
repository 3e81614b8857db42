import type { OutboundMessage } from "../backends/backend.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, ChatsTable, MessagesTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { participantsOf } from "./group-change.js";

/**
 * Messages into a group. A group has no single recipient, so a group message's `to` is the
 * group's own id (its `conversation_id`): it names the thread without naming one member, and it
 * lets the dispatcher tell a group message from a 1:1 one by looking at the row alone — 1:1
 * sends, the hot path, cost no extra query.
 */
export const groupAddress = (chat: Pick<ChatsTable, "id">): string => chat.id;

export const isGroupMessage = (row: Pick<MessagesTable, "to_handle" | "chat_id">): boolean => row.to_handle === row.chat_id;

/**
 * A group lives on one network (an iMessage group cannot take an SMS member), so its messages go
 * on the group's channel, with no SMS fallback; forcing another channel is refused.
 */
export function groupChannel(chat: Pick<ChatsTable, "channel">, forced: ChannelName | undefined): ChannelName {
  const channel = chat.channel ?? "imessage";
  if (forced !== undefined && forced !== channel) {
    throw new ApiError("invalid_request", `This group chat is on ${channel}; its messages cannot be sent as ${forced}.`);
  }
  return channel;
}

/**
 * The message as the device must get it: a group message addressed by the group's device id
 * (`to` and `group`), with the members as we know them. 1:1 messages come back unchanged.
 */
export async function addressedForDevice(db: Tx, row: Pick<MessagesTable, "to_handle" | "chat_id">, out: OutboundMessage): Promise<OutboundMessage> {
  if (!isGroupMessage(row)) return out;
  const chat = await db.selectFrom("chats").select(["device_chat_id", "participants"]).where("id", "=", row.chat_id).executeTakeFirst();
  // Every group chat is created with its device id; without one there is nowhere to send, and
  // guessing an address could reach the wrong people. The dispatcher treats a throw as unresolved.
  if (!chat?.device_chat_id) throw new Error(`group chat ${row.chat_id} has no device id`);
  const group = { chatDeviceId: chat.device_chat_id, channel: out.channel, participants: participantsOf(chat) };
  return { ...out, to: group.chatDeviceId, group };
}
