import type { IncomingHttpHeaders } from "node:http";
import type { InboundMedia } from "../attachments/inbound.js";
import type { DeviceEvent } from "../messages/ingest.js";
import type { DeviceBackend, DeviceNumber } from "./backend.js";

/** One webhook a device posted to our ingest URL (`/ingest/:backend/:numberId`). */
export interface IngestRequest {
  query: Record<string, string | undefined>;
  headers: IncomingHttpHeaders;
  /** The exact bytes, for signatures (WAHA's HMAC). */
  rawBody: Buffer;
  body: unknown;
}

/** What a back-end may do while it normalises device events (bound to the receiving number). */
export interface IngestTools {
  /** Stores one inbound file as an attachment of the number's account (live mode); returns its id. */
  storeMedia(media: InboundMedia): Promise<string>;
  /** Our message id for a device message id, when we know that message (BlueBubbles `updated-message` carries no chat). */
  messageByDeviceId(deviceId: string): Promise<{ id: string; direction: "inbound" | "outbound"; chatDeviceId: string | null; remoteHandle: string | null } | null>;
  /** The members of one of the number's group chats as we know them (null: no such group here). */
  groupParticipants(chatDeviceId: string): Promise<string[] | null>;
}

/** The ingest URL authenticates the device: its secret is in the query (BlueBubbles cannot sign). */
export class IngestRefused extends Error {}

/**
 * A real device back-end (BlueBubbles, WAHA): a DeviceBackend that also receives events from its
 * device over HTTP, points the device's webhooks at us, and can poll for what webhooks missed.
 */
export interface LiveBackend extends DeviceBackend {
  readonly name: "bluebubbles" | "waha";
  /** Authenticates (throws IngestRefused) and normalises one webhook. */
  ingest(number: DeviceNumber, req: IngestRequest, tools: IngestTools): Promise<DeviceEvent[]>;
  /** Makes the device post its events to `url`; idempotent. Called whenever the device is (back) online. */
  subscribe(number: DeviceNumber, url: string): Promise<void>;
  /** Device events since `cursor` (epoch ms on the device) that webhooks may have missed, and the new cursor. */
  poll?(number: DeviceNumber, cursor: number, tools: IngestTools): Promise<{ events: DeviceEvent[]; cursor: number }>;
}
