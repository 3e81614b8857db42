import type { Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, Mode } from "../db/schema.js";
import { prepared } from "../db/prepared.js";
import type { Capabilities, DeviceBackend, DeviceNumber } from "../backends/backend.js";

/**
 * Channel choice for one recipient: a forced channel wins; otherwise iMessage when the recipient
 * has it and the number serves it, then SMS, then WhatsApp. Reachability comes from the back-end's
 * lookup, cached per (number, mode, handle) for LOOKUP_CACHE_HOURS.
 */
export async function cachedLookup(db: Tx, clock: Clock, cacheHours: number, backend: DeviceBackend, number: DeviceNumber, handle: string): Promise<Capabilities> {
  const now = clock.now();
  const cached = await lookupFromCache(db, clock, cacheHours, number, handle);
  if (cached) return cached;
  const caps = await backend.lookup(number, handle);
  const row = {
    number_id: number.id,
    mode: number.mode as Mode,
    handle,
    imessage: caps.imessage === null ? null : caps.imessage ? 1 : 0,
    whatsapp: caps.whatsapp === null ? null : caps.whatsapp ? 1 : 0,
    checked_at: now,
  };
  await db
    .insertInto("lookup_cache")
    .values(row)
    .onConflict((oc) => oc.columns(["number_id", "mode", "handle"]).doUpdateSet({ imessage: row.imessage, whatsapp: row.whatsapp, checked_at: now }))
    .execute();
  return caps;
}

const cachedAnswer = prepared(
  (db, numberId: string, mode: Mode, handle: string) => db.selectFrom("lookup_cache").selectAll().where("number_id", "=", numberId).where("mode", "=", mode).where("handle", "=", handle),
  [":number", "test" as Mode, ":handle"],
);

/** A fresh cached answer, or null: needs no device. */
export async function lookupFromCache(db: Tx, clock: Clock, cacheHours: number, number: Pick<DeviceNumber, "id" | "mode">, handle: string): Promise<Capabilities | null> {
  const [hit] = await cachedAnswer(db, number.id, number.mode, handle);
  if (!hit || clock.now() - hit.checked_at >= cacheHours * 3_600_000) return null;
  return { imessage: hit.imessage === null ? null : hit.imessage === 1, whatsapp: hit.whatsapp === null ? null : hit.whatsapp === 1 };
}

export function chooseChannel(serves: ChannelName[], caps: Capabilities, forced: ChannelName | null): ChannelName | null {
  if (forced) return serves.includes(forced) ? forced : null;
  if (serves.includes("imessage") && caps.imessage !== false) return "imessage";
  if (serves.includes("sms")) return "sms";
  if (serves.includes("whatsapp") && caps.whatsapp !== false) return "whatsapp";
  return null;
}

export function recommendedChannel(serves: ChannelName[], caps: Capabilities): ChannelName | null {
  return chooseChannel(serves, caps, null);
}
