import { createHmac, randomBytes, randomUUID } from "node:crypto";
import type { FakeState, FakeWebhookConfig } from "./types.js";
import { WAHA_VERSION } from "./wa-format.js";

/** WAHA's webhook envelope, POSTed (and HMAC-signed) to each session's `config.webhooks`. */
export class Webhooks {
  readonly pending = new Set<Promise<void>>();
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    private readonly fake: FakeState,
    private readonly now: () => number,
    private readonly signal: () => AbortSignal,
  ) {}

  /** One envelope per event, POSTed to every webhook subscribed to it (or "*"): one attempt, no retries (WAHA Core). */
  emit(session: string, event: string, payload: unknown): void {
    const s = this.fake.sessions.get(session);
    if (!s) return;
    const env = { environment: { version: WAHA_VERSION, engine: "NOWEB", tier: this.fake.plus ? "PLUS" : "CORE", browser: null } };
    const envelope = { id: `evt_${randomBytes(13).toString("hex")}`, timestamp: this.now(), session, metadata: {}, engine: "NOWEB", me: s.me ?? undefined, ...env, event, payload };
    const body = JSON.stringify(envelope);
    for (const hook of s.config.webhooks ?? []) {
      if (hook.events.includes(event) || hook.events.includes("*")) this.deliver(hook, event, body);
    }
  }

  /**
   * Deliveries to one URL are serialised so tests see events in the order they were fired; real WAHA POSTs each
   * event independently, so a receiver must not rely on order (out-of-order acks are scripted with ack()).
   */
  private deliver(hook: FakeWebhookConfig, event: string, body: string): void {
    const prev = this.chains.get(hook.url) ?? Promise.resolve();
    const next = prev.then(() => this.post(hook, event, body));
    this.chains.set(hook.url, next);
    this.pending.add(next);
    void next.finally(() => this.pending.delete(next));
  }

  private async post(hook: FakeWebhookConfig, event: string, body: string): Promise<void> {
    const headers: Record<string, string> = { "Content-Type": "application/json", "X-Webhook-Request-Id": randomUUID(), "X-Webhook-Timestamp": String(this.now()) };
    // HMAC per WAHA docs: hex HMAC-SHA512 of the raw body (confirmed by several WAHA integrations' verifiers).
    if (hook.hmac?.key) {
      headers["X-Webhook-Hmac"] = createHmac("sha512", hook.hmac.key).update(body).digest("hex");
      headers["X-Webhook-Hmac-Algorithm"] = "sha512";
    }
    for (const h of hook.customHeaders ?? []) headers[h.name] = h.value;
    const record = { url: hook.url, event, status: null as number | null, error: null as string | null };
    this.fake.deliveries.push(record);
    try {
      const signal = AbortSignal.any([this.signal(), AbortSignal.timeout(10_000)]);
      const res = await fetch(hook.url, { method: "POST", headers, body, signal });
      await res.arrayBuffer();
      record.status = res.status;
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    }
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
