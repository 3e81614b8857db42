import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, ChatsTable, Mode } from "../db/schema.js";
import type { EventRow } from "../events/catalog.js";
import { uuidv7 } from "../ids.js";
import type { GroupChange } from "./group-change.js";
import { applyGroupChange, groupByDeviceId, insertGroupChat } from "./group-store.js";
import { touchChat } from "./store.js";

/**
 * Group signals from a device (messages/ingest.ts dispatches them here): which chat an inbound
 * group message belongs to, and changes made on the network by other members — BlueBubbles
 * `group-name-change` / `participant-added|removed|left`, WAHA `group.v2.participants|update`.
 */

/** The group an inbound message was written in, as the device reports it. */
export interface DeviceGroup {
  /** The device's id of the group (BlueBubbles chat GUID, WAHA `…@g.us`). */
  chatDeviceId: string;
  /** The other members, as the device lists them; used when the group is new to us. */
  participants: string[];
  /** The group's name, when the device says; used when the group is new to us. */
  title?: string | null;
}

/** A member changed the group on the network (not through our API). */
export interface GroupChangedEvent {
  kind: "group_changed";
  numberHandle: string;
  mode: Mode;
  chatDeviceId: string;
  change: GroupChange;
  /** The member who made the change, when the device says (BlueBubbles: the message's `handle`). */
  by: string | null;
  at: number;
}

interface Receiver {
  id: string;
  account_id: string;
  handle: string;
}

/**
 * The chat of an inbound group message, touched like any thread. A group we have no chat for is
 * one someone else created with our number in it: it becomes a group chat here, with the
 * members the device reports, so the message is never lost or misfiled as a 1:1 thread.
 */
export async function groupChatForInbound(trx: Tx, clock: Clock, number: Receiver, mode: Mode, group: DeviceGroup, channel: ChannelName): Promise<ChatsTable> {
  const known = await groupByDeviceId(trx, number.id, mode, group.chatDeviceId);
  if (known) {
    await touchChat(trx, clock, known.id);
    const now = iso(clock.now());
    return { ...known, last_message_at: now, updated_at: now, channel: known.channel ?? channel };
  }
  const now = iso(clock.now());
  return insertGroupChat(trx, {
    id: uuidv7(clock.now()),
    account_id: number.account_id,
    mode,
    number_id: number.id,
    from_handle: number.handle,
    remote_handle: null,
    is_group: 1,
    title: group.title ?? null,
    participants: JSON.stringify([...new Set(group.participants)].filter((p) => p !== number.handle)),
    channel,
    last_message_at: now,
    created_at: now,
    updated_at: now,
    device_chat_id: group.chatDeviceId,
  });
}

/**
 * A network-side change: applied to the group's chat with a `chat.updated` event. A change to a
 * group we have no chat for is dropped (we cannot know its other members), and a repeat is a
 * no-op (group-change.ts).
 */
export async function applyGroupChanged(trx: Tx, clock: Clock, e: GroupChangedEvent, out: EventRow[]): Promise<void> {
  const number = await trx.selectFrom("numbers").select(["id"]).where("handle", "=", e.numberHandle).executeTakeFirst();
  if (!number) return;
  const chat = await groupByDeviceId(trx, number.id, e.mode, e.chatDeviceId);
  if (!chat) return;
  const { event } = await applyGroupChange(trx, clock, chat.id, e.change, e.by, "network");
  if (event) out.push(event);
}
