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
}

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

export interface DeviceBackend {
  readonly name: string;
  /** Is the number's device reachable now? Drives `status` and 503 device_offline. */
  health(number: DeviceNumber): Promise<"online" | "offline">;
  /** Whether a handle can be reached on iMessage / WhatsApp (null = unknown). */
  lookup(number: DeviceNumber, handle: string): Promise<Capabilities>;
  send(number: DeviceNumber, message: OutboundMessage): Promise<SendOutcome>;
  /** Did an earlier, ambiguous attempt of this message reach the device? */
  reconcile(number: DeviceNumber, message: OutboundMessage): Promise<ReconcileOutcome>;
  react(number: DeviceNumber, target: { deviceId: string; to: string; channel: ChannelName }, reaction: string, remove: boolean): Promise<ActionOutcome>;
  edit(number: DeviceNumber, target: { deviceId: string; to: string; channel: ChannelName }, text: string): Promise<ActionOutcome>;
  unsend(number: DeviceNumber, target: { deviceId: string; to: string; channel: ChannelName }): Promise<ActionOutcome>;
  markRead(number: DeviceNumber, chat: { remoteHandle: string; channel: ChannelName }): Promise<ActionOutcome>;
  typing(number: DeviceNumber, chat: { remoteHandle: string; channel: ChannelName }, state: "start" | "stop"): Promise<ActionOutcome>;
}
