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

type SessionConfig = Record<string, unknown>;

function same(a: Webhook, b: Webhook): boolean {
  const events = (w: Webhook) => [...(w.events ?? [])].sort().join(",");
  return a.url === b.url && events(a) === events(b) && (a.hmac?.key ?? null) === (b.hmac?.key ?? null);
}

/** The session's config from `GET /api/sessions/{s}`. */
export const configOf = (session: unknown): SessionConfig => ((session as { config?: SessionConfig | null } | null)?.config ?? {}) as SessionConfig;

/**
 * The session's webhooks with ours as it should be, or null when it already is. Every webhook
 * that is not ours (the operator's own) is kept untouched; an earlier one of ours (a rotated
 * secret, a new PUBLIC_URL: same number, same path) is replaced, keeping any field we do not set.
 */
export function webhooksWithOurs(config: SessionConfig, number: DeviceNumber, url: string): Webhook[] | null {
  const hooks = Array.isArray(config.webhooks) ? (config.webhooks as Webhook[]) : [];
  const wanted: Webhook = { url, events: EVENTS, hmac: { key: wahaConfig(number).ingestSecret } };
  const ingestPath = `/ingest/waha/${number.id}`;
  const isOurs = (h: Webhook) => {
    try {
      return new URL(String(h.url)).pathname.endsWith(ingestPath);
    } catch {
      return false; // not a URL: not ours, kept as the operator left it
    }
  };
  const mine = hooks.filter(isOurs);
  if (mine.length === 1 && same(mine[0] as Webhook, wanted)) return null;
  // What the operator added to ours (Plus `retries`, `customHeaders`) survives a rewrite.
  return [...hooks.filter((h) => !isOurs(h)), { ...mine[0], ...wanted }];
}

/**
 * Points the session's webhooks at our ingest URL. WAHA keeps webhooks in the session's config,
 * and `PUT /api/sessions/{s}` replaces that config — restarting a running session — so the PUT
 * only happens when ours is missing or stale. `known` is the session as just read, if it was.
 */
export async function subscribeWebhook(client: WahaClient, number: DeviceNumber, url: string, known?: unknown): Promise<void> {
  const { session } = wahaConfig(number);
  const path = `/api/sessions/${seg(session)}`;
  let current = known;
  if (current === undefined) {
    const read = await client.call(number, "GET", path);
    if (!read.ok) throw new Error(`WAHA session read failed: ${read.message}`);
    current = read.data;
  }
  const config = configOf(current);
  const webhooks = webhooksWithOurs(config, number, url);
  if (!webhooks) return;
  const updated = await client.call(number, "PUT", path, { json: { name: session, config: { ...config, webhooks } } });
  if (!updated.ok) throw new Error(`WAHA webhook registration failed: ${updated.message}`);
}
