import type { DeviceNumber } from "../backend.js";
import { type WahaClient, seg, wahaConfig } from "./client.js";

/** The events we subscribe to: everything backends.md §5 maps onto MsgBubbles. */
export const EVENTS = [
  "message",
  "message.ack",
  "message.ack.group",
  "message.reaction",
  "message.edited",
  "message.revoked",
  "presence.update",
  "session.status",
  "group.v2.participants",
  "group.v2.update",
];

interface Webhook {
  url?: string;
  events?: string[];
  hmac?: { key?: string } | null;
  [field: string]: unknown;
}

function same(a: Webhook, b: Webhook): boolean {
  const events = (w: Webhook) => [...(w.events ?? [])].sort().join(",");
  return a.url === b.url && events(a) === events(b) && (a.hmac?.key ?? null) === (b.hmac?.key ?? null);
}

/**
 * Points the session's webhooks at our ingest URL. WAHA keeps webhooks in the session's config,
 * and `PUT /api/sessions/{s}` replaces that config — restarting a running session — so: read the
 * session, keep every webhook that is not ours (the operator's own, untouched), replace any
 * earlier one of ours (a rotated secret, a new PUBLIC_URL), and only PUT when ours is not
 * already there as it should be.
 */
export async function subscribeWebhook(client: WahaClient, number: DeviceNumber, url: string): Promise<void> {
  const cfg = wahaConfig(number);
  const path = `/api/sessions/${seg(cfg.session)}`;
  const current = await client.call(number, "GET", path);
  if (!current.ok) throw new Error(`WAHA session read failed: ${current.message}`);
  const config = ((current.data as { config?: Record<string, unknown> | null } | null)?.config ?? {}) as Record<string, unknown>;
  const hooks = Array.isArray(config.webhooks) ? (config.webhooks as Webhook[]) : [];
  const ours: Webhook = { url, events: EVENTS, hmac: { key: cfg.ingestSecret } };
  const ingestPath = `/ingest/waha/${number.id}`;
  const isOurs = (h: Webhook) => {
    try {
      return new URL(String(h.url)).pathname.endsWith(ingestPath);
    } catch {
      return false; // not a URL: not ours, kept as the operator left it
    }
  };
  const mine = hooks.filter(isOurs);
  if (mine.length === 1 && same(mine[0] as Webhook, ours)) return;
  const webhooks = [...hooks.filter((h) => !isOurs(h)), ours];
  const updated = await client.call(number, "PUT", path, { json: { name: cfg.session, config: { ...config, webhooks } } });
  if (!updated.ok) throw new Error(`WAHA webhook registration failed: ${updated.message}`);
}
