// ---- webhooks (services/webhookService: unsigned, no retries, failures only logged; §0.1) -------------
import http from "node:http";
import https from "node:https";
import type { ChatDb } from "./chat-db.js";
import { badRequest, notFound, ok } from "./envelopes.js";
import { str } from "./http-io.js";
import type { Mac } from "./mac.js";
import { NEW_MESSAGE, serialize, UPDATED_MESSAGE } from "./serializers.js";
import type { Ctx, FakeMessage, FakeState, Reply } from "./types.js";

/** Registrable webhook events (§1.4, `api/http/constants.ts` webhookEventOptions). */
export const WEBHOOK_EVENTS: readonly string[] = [
  "*", "new-message", "updated-message", "message-send-error", "group-name-change", "group-icon-changed",
  "group-icon-removed", "participant-removed", "participant-added", "participant-left", "chat-read-status-changed",
  "typing-indicator", "scheduled-message-error", "server-update", "new-server", "new-findmy-location", "hello-world",
  "incoming-facetime", "ft-call-status-changed", "imessage-alias-removed", "theme-backup-created",
  "theme-backup-updated", "theme-backup-deleted", "settings-backup-created", "settings-backup-updated",
  "settings-backup-deleted",
];

export class WebhookEmitter {
  nextWebhookId = 1;
  private abort = new AbortController();
  private readonly chains = new Map<number, Promise<void>>();
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly state: FakeState, private readonly db: ChatDb) {}

  /** On start: deliveries get a fresh signal, so a restarted fake can post again. */
  open(): void {
    this.abort = new AbortController();
  }

  /** On stop: cancels the deliveries in flight. */
  close(): void {
    this.abort.abort();
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** new-message for a new row; with `duplicateNewMessage` it fires twice (§0.3): the send-promise match carrying tempGuid, then the poller's copy. */
  fireNewMessage(m: FakeMessage, tempGuid: string | null): void {
    const data = serialize(this.db, m, NEW_MESSAGE);
    const copies = this.state.duplicateNewMessage ? 2 : 1;
    for (let i = 0; i < copies; i++) this.fire("new-message", i === 0 && tempGuid ? { ...data, tempGuid } : data);
  }

  /** updated-message (§1.4 `MessagePoller` filter): delivery and read only count for your own rows; edits for anyone's. */
  fireUpdated(m: FakeMessage, anyone = false): void {
    if (m.isFromMe || anyone) this.fire("updated-message", serialize(this.db, m, UPDATED_MESSAGE));
  }

  /** POSTs `{type, data}` to every matching webhook. Deliveries to one URL are chained so they arrive in order (BB fires them concurrently). */
  fire(type: string, data: unknown): void {
    if (this.state.dropWebhooks) return;
    const body = JSON.stringify({ type, data });
    for (const hook of this.state.webhooks) {
      if (!hook.events.includes("*") && !hook.events.includes(type)) continue;
      const p = (this.chains.get(hook.id) ?? Promise.resolve())
        .then(() => this.post(hook.url, body))
        .catch((e: unknown) => this.state.log(`webhook ${type} → ${hook.url} failed: ${e instanceof Error ? e.message : String(e)}`));
      this.chains.set(hook.id, p);
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    }
  }

  private post(url: string, body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const request = target.protocol === "https:" ? https.request : http.request;
      const req = request(target, {
        method: "POST", agent: false, signal: this.abort.signal,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
      }, (res) => {
        res.resume();
        res.on("end", () => ((res.statusCode ?? 500) < 400 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }
}

// ---- routes: webhooks -------------------------------------------------------------------------------
export function addWebhook(mac: Mac, c: Ctx): Reply {
  const url = str(c.body.url);
  const events = c.body.events;
  if (!url) throw badRequest("Webhook URL is required!");
  if (!url.startsWith("http")) throw badRequest("Webhook URL must include an HTTP scheme!");
  if (!Array.isArray(events)) throw badRequest("The events field is required and must be an array.");
  for (const e of events) {
    if (typeof e !== "string") throw badRequest("Webhook events must be strings!");
    if (!WEBHOOK_EVENTS.includes(e)) throw badRequest(`Invalid webhook event: ${e}! Webhook must be one of: ${WEBHOOK_EVENTS.join(",")}`);
  }
  // `ServerRepository.addWebhook`: an existing URL is returned as it is, its events NOT updated.
  const existing = mac.state.webhooks.find((w) => w.url === url);
  const hook = existing ?? { id: mac.hooks.nextWebhookId++, url, events: [...(events as string[])] };
  if (!existing) mac.state.webhooks.push(hook);
  return ok("Successfully created webhook!", { ...hook, events: [...hook.events] });
}

export function deleteWebhook(mac: Mac, c: Ctx): Reply {
  const id = Number(c.params[0]);
  const i = mac.state.webhooks.findIndex((w) => w.id === id);
  if (i < 0) throw notFound("Webhook does not exist!");
  mac.state.webhooks.splice(i, 1);
  return ok("Successfully deleted webhook!");
}
