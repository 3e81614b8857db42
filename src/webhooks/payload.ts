import type { Mode } from "../db/schema.js";

export interface StoredEvent {
  id: string;
  type: string;
  created_at: string;
  mode: Mode;
  /** The event's `data` as stored: JSON text. */
  data: string;
}

/**
 * The bytes of a delivery: the event itself, not enveloped — `{ id, type, created_at, livemode,
 * data }`. Built from the stored row without re-serialising `data`, so every attempt of an event
 * sends the same bytes, and these exact bytes are what gets signed (WH-R2, WH-T04).
 */
export function eventBody(e: StoredEvent): Buffer {
  const head = `{"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)},"created_at":${JSON.stringify(e.created_at)},"livemode":${e.mode === "live"},"data":`;
  return Buffer.from(`${head}${e.data}}`, "utf8");
}
