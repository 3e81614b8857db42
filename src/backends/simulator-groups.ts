import type { ChannelName } from "../db/schema.js";
import { uuidv7 } from "../ids.js";
import type { DeviceEvent } from "../messages/ingest.js";
import type { ActionOutcome, DeviceNumber, GroupCreateOutcome, GroupRef, NewGroup, OutboundMessage, SendOutcome } from "./backend.js";
import { SIM, type TimerKind, type TimerPayload } from "./simulator.js";

/**
 * The simulator's groups: the network's rules for iMessage groups, as BlueBubbles would report
 * them. The simulator keeps no group table of its own: a group's first message is an ordinary
 * send (its durable history row and delivery timer), and every later operation is told the
 * members as MsgBubbles knows them, which is all these rules need.
 *
 * - Creating refuses a member who cannot join: `+15550000002` (unreachable) always, and the
 *   SMS-only `+15550000001` in an iMessage group.
 * - Adding refuses the same members, and a 32nd other member (iMessage: 32 people at most).
 * - Removing refuses to leave fewer than two other members (iMessage removes someone only from
 *   a group of four or more).
 * - Group messages are delivered, never read (iMessage reports reads in 1:1 chats only); a
 *   group with `+15550000004` gets that member's echo of every message, in the group.
 */

const MAX_OTHERS = 31;
const MIN_OTHERS = 2;
const OFFLINE: ActionOutcome & GroupCreateOutcome = { ok: false, offline: true, message: "The device is offline." };

interface Device {
  health(number: DeviceNumber): Promise<"online" | "offline">;
  send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome>;
}

function cannotJoin(handle: string, channel: ChannelName): string | null {
  if (handle === SIM.fails) return `${handle} cannot be reached.`;
  if (channel === "imessage" && handle === SIM.smsOnly) return `${handle} is not on iMessage and cannot join an iMessage group.`;
  return null;
}

const refused = (message: string) => ({ ok: false as const, offline: false, message });

export async function createSimulatedGroup(device: Device, number: DeviceNumber, g: NewGroup): Promise<GroupCreateOutcome> {
  if ((await device.health(number)) === "offline") return OFFLINE;
  const reason = g.addresses.map((a) => cannotJoin(a, g.channel)).find((r) => r !== null);
  if (reason) return refused(reason);
  // Named after the first message, like a real device's temporary GUID: a create repeated with
  // the same message finds the same group (and the history counts the duplicate send).
  const chatDeviceId = `sim-group-${g.firstMessage.id}`;
  const group: GroupRef = { chatDeviceId, channel: g.channel, participants: g.addresses };
  const { id, text, effect } = g.firstMessage;
  const sent = await device.send(number, { id, to: chatDeviceId, channel: g.channel, text, effect, replyToDeviceId: null, voiceMemo: false, group });
  if (sent.kind === "sent") return { ok: true, chatDeviceId, firstMessageDeviceId: sent.deviceId };
  return { ok: false, offline: sent.kind === "not_sent" && sent.code === "device_offline", message: sent.message };
}

export async function renameSimulatedGroup(device: Device, number: DeviceNumber): Promise<ActionOutcome> {
  return (await device.health(number)) === "online" ? { ok: true } : OFFLINE;
}

export async function addToSimulatedGroup(device: Device, number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
  if ((await device.health(number)) === "offline") return OFFLINE;
  const reason = cannotJoin(handle, group.channel);
  if (reason) return refused(reason);
  if (group.participants.length >= MAX_OTHERS) return refused("An iMessage group holds at most 32 people.");
  return { ok: true };
}

export async function removeFromSimulatedGroup(device: Device, number: DeviceNumber, group: GroupRef): Promise<ActionOutcome> {
  if ((await device.health(number)) === "offline") return OFFLINE;
  if (group.participants.length - 1 < MIN_OTHERS) return refused("Members can be removed only from a group of four or more people.");
  return { ok: true };
}

/** A due timer of a group message: delivered (no read), and the echoing member's reply. */
export async function fireInGroup(
  group: GroupRef,
  kind: TimerKind,
  p: TimerPayload,
  at: number,
  replyLater: (payload: TimerPayload) => Promise<void>,
): Promise<DeviceEvent[]> {
  switch (kind) {
    case "deliver":
      if (group.participants.includes(SIM.echoes)) await replyLater(p);
      return [{ kind: "delivered", deviceId: p.deviceId, at }];
    case "reply":
      return [
        {
          kind: "received",
          numberHandle: p.number,
          mode: p.mode,
          from: SIM.echoes,
          text: p.text,
          channel: p.channel,
          deviceId: `sim-in-${uuidv7(at)}`,
          at,
          group: { chatDeviceId: group.chatDeviceId, participants: group.participants },
        },
      ];
    default:
      return [];
  }
}
