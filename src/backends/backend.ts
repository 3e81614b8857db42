import type { Readable } from "node:stream";
import type { ChannelName, Mode } from "../db/schema.js";

/**
 * The device boundary: the only code that knows how a network works. The dispatcher and the
 * message services speak to a number's device through this interface; the simulator, BlueBubbles
 * (iMessage/SMS) and WAHA (WhatsApp) implement it.
 */

/** The sending number as a back-end needs it. */
export interface DeviceNumber {
  id: string;
  handle: string;
  mode: Mode;
  channels: ChannelName[];
  /** Back-end settings (URL, credentials) from the CLI; {} for the simulator. */
  config: Record<string, unknown>;
  /**
   * The number's recorded status in this mode, when the caller has just read its row (the
   * dispatcher's claim). A back-end whose device state is that very column (the simulator) may
   * use it instead of reading it again; real back-ends ask their device.
   */
  knownStatus?: "online" | "offline";
}

export interface OutboundMessage {
  /** Our message id; sent as the device's temporary GUID so reconcile can find it. */
  id: string;
  to: string;
  channel: ChannelName;
  text: string | null;
  effect: string | null;
  /** The device id of the message replied to. */
  replyToDeviceId: string | null;
  voiceMemo: boolean;
  /**
   * The message's files, already fitted to `channel` (oversized images transcoded; anything that
   * cannot fit never reaches a back-end). Absent or empty: text only.
   */
  attachments?: OutboundAttachment[];
  /**
   * Reconcile only: when the unresolved attempt began (epoch ms). A device that may
   * still be working on a send (BlueBubbles finishes one up to 2 minutes later) answers
   * `unknown`, not `absent`, until that time is far enough behind.
   */
  attemptedAt?: number;
  /** Reconcile only: whether a device message id already belongs to another message of ours. */
  isKnownDeviceId?: (deviceId: string) => Promise<boolean>;
  /**
   * Set for a message into a group: address the group by its device id (then `to` holds that
   * same id, never a handle). Absent for 1:1 messages, which keep using `to`.
   */
  group?: GroupRef;
}

/**
 * One file of an outbound message, in the two forms back-ends take media in: a stream of the bytes
 * (BlueBubbles uploads multipart `attachment`; WAHA accepts base64 `file.data`) and, when the bytes
 * are the original upload, a signed URL the back-end may fetch instead (WAHA `file.url`).
 */
export interface OutboundAttachment {
  id: string;
  filename: string;
  mimeType: string;
  sizeBytes: number;
  /** Send as a native voice note (BlueBubbles `isAudioMessage`, WAHA `sendVoice`): voice_memo on an audio file, on a channel that has them. */
  voiceNote: boolean;
  /** Opens the bytes to send; each call is a fresh stream. */
  open(): Promise<Readable>;
  /** A signed URL serving these exact bytes; null when they were transcoded for the channel (use open()). */
  url: string | null;
}

/** A group chat as the device addresses it. */
export interface GroupRef {
  /** The device's id of the group: BlueBubbles chat GUID `iMessage;+;chat…`, WAHA `…@g.us`. */
  chatDeviceId: string;
  channel: ChannelName;
  /** The other members (handles) as MsgBubbles knows them; the device stays the authority. */
  participants: string[];
}

/** What creating a group needs: a group is established by its first message (BlueBubbles `chat/new`). */
export interface NewGroup {
  addresses: string[];
  title: string | null;
  channel: ChannelName;
  /** `id` is our message id, sent as the device's temporary GUID like any send's. */
  firstMessage: { id: string; text: string; effect: string | null };
}

/** The network's verdict on a group creation: created (with its ids), refused, or unreachable. */
export type GroupCreateOutcome =
  | { ok: true; chatDeviceId: string; firstMessageDeviceId: string }
  | { ok: false; offline: boolean; message: string };

/**
 * Every send outcome is one of three: not sent (safe to retry), sent (record it), or ambiguous
 * (the request may have reached the device: reconcile against its history before any resend).
 */
export type SendOutcome =
  | { kind: "sent"; deviceId: string }
  | { kind: "not_sent"; permanent: boolean; code: string; message: string }
  | { kind: "ambiguous"; message: string };

export type ReconcileOutcome = { kind: "sent"; deviceId: string } | { kind: "absent" } | { kind: "unknown" };

/** A synchronous device action: done, refused by the network, or the device is unreachable. */
export type ActionOutcome = { ok: true } | { ok: false; offline: boolean; message: string };

export interface Capabilities {
  imessage: boolean | null;
  whatsapp: boolean | null;
}

/** A message a device action applies to: its device id, its 1:1 recipient, and for a group message the group's device id. */
export interface MessageTarget {
  deviceId: string;
  to: string;
  channel: ChannelName;
  chatDeviceId?: string;
}

export interface DeviceBackend {
  readonly name: string;
  /** Is the number's device reachable now? Drives `status` and 503 device_offline. */
  health(number: DeviceNumber): Promise<"online" | "offline">;
  /** Whether a handle can be reached on iMessage / WhatsApp (null = unknown). */
  lookup(number: DeviceNumber, handle: string): Promise<Capabilities>;
  send(number: DeviceNumber, message: OutboundMessage): Promise<SendOutcome>;
  /** Did an earlier, ambiguous attempt of this message reach the device? */
  reconcile(number: DeviceNumber, message: OutboundMessage): Promise<ReconcileOutcome>;
  react(number: DeviceNumber, target: MessageTarget, reaction: string, remove: boolean): Promise<ActionOutcome>;
  edit(number: DeviceNumber, target: MessageTarget, text: string): Promise<ActionOutcome>;
  unsend(number: DeviceNumber, target: MessageTarget): Promise<ActionOutcome>;
  /** `chatDeviceId` is set for a group (its `remoteHandle` is then empty). */
  markRead(number: DeviceNumber, chat: { remoteHandle: string; channel: ChannelName; chatDeviceId?: string }): Promise<ActionOutcome>;
  typing(number: DeviceNumber, chat: { remoteHandle: string; channel: ChannelName; chatDeviceId?: string }, state: "start" | "stop"): Promise<ActionOutcome>;
  /** Creates a group and sends its first message, synchronously: the answer is the network's. */
  createGroup(number: DeviceNumber, group: NewGroup): Promise<GroupCreateOutcome>;
  /** Renames a group; null removes its name. */
  renameGroup(number: DeviceNumber, group: GroupRef, title: string | null): Promise<ActionOutcome>;
  addParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome>;
  removeParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome>;
}
