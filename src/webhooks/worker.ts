import type { FastifyBaseLogger } from "fastify";
import { throttledErrorLog } from "../log-throttle.js";
import type { Registry } from "prom-client";
import type { Agent } from "undici";
import type { Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Db } from "../db/client.js";
import type { AddressPolicy, Resolver } from "./address-policy.js";
import { makeWebhookAgent } from "./agent.js";
import { attemptDelivery } from "./attempt.js";
import { type ClaimedDelivery, claimDue } from "./claim.js";
import { type WebhookMetrics, webhookMetrics } from "./metrics.js";
import { type RecordedAs, recordDelivered, recordOutcome } from "./record.js";
import { onEventsWritten } from "../events/catalog.js";

export interface WebhookWorkerDeps {
  db: Db;
  clock: Clock;
  config: Config;
  policy: AddressPolicy;
  resolve: Resolver;
  /** Jitter source of the retry schedule (tests pin it). */
  random?: () => number;
  log?: FastifyBaseLogger | undefined;
  metrics?: Registry | undefined;
}

export const USER_AGENT = "MsgBubbles-Webhooks/1.0";

/**
 * The webhook delivery worker: claims due deliveries with a lease, sends each through the pinned
 * agent, records the outcome. Like the dispatcher it runs a loop in `serve` and is driven with
 * tick()/runUntilIdle() in tests; time comes from the injected clock (schedules, leases,
 * webhook-timestamp), only the HTTP timeout is real time.
 *
 * A tick claims as many deliveries as there are free slots (WEBHOOK_CONCURRENCY in flight at
 * most, WEBHOOK_CONCURRENCY_PER_ENDPOINT per endpoint) and starts them without waiting: a slow
 * endpoint holds its own few slots, never the loop. Each finished attempt wakes the loop.
 * The per-endpoint bound is per process; with several processes on PostgreSQL an endpoint sees at
 * most that many per process.
 */
export class WebhookWorker {
  private readonly agent: Agent;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly busy = new Map<string, number>();
  private readonly metrics: WebhookMetrics;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = true;
  private ticking: Promise<number> | null = null;
  private again = false;
  private unsubscribe: (() => void) | null = null;

  private readonly logLoopError = throttledErrorLog();

  constructor(private readonly deps: WebhookWorkerDeps) {
    this.agent = makeWebhookAgent({ policy: deps.policy, resolve: deps.resolve, timeoutMs: deps.config.WEBHOOK_TIMEOUT_MS });
    this.random = deps.random ?? Math.random;
    this.metrics = webhookMetrics(deps.metrics, deps.db, deps.clock, () => this.inflight.size);
  }

  /**
   * How long a claimed delivery is ours: the attempt's own deadline twice over plus a second to
   * record it. After that another worker may take it over (the process is presumed dead).
   */
  get leaseMs(): number {
    return this.deps.config.WEBHOOK_TIMEOUT_MS * 2 + 1_000;
  }

  /** Attempts running now. */
  get inFlight(): number {
    return this.inflight.size;
  }

  /** One claim; starts the claimed attempts and returns how many (0 = nothing due or no free slot). */
  async tick(): Promise<number> {
    if (this.ticking) return this.ticking;
    this.ticking = this.claimAndStart().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /** Tests: tick and wait for the attempts, until nothing is due at the current clock time. */
  async runUntilIdle(maxTicks = 100_000): Promise<void> {
    for (let i = 0; i < maxTicks; i++) {
      // Idle only when a claim made with no attempt in flight finds nothing: attempts that were
      // running during the claim may have freed slots (or scheduled retries) since.
      const runningBefore = this.inflight.size;
      const claimed = await this.tick();
      if (claimed === 0 && runningBefore === 0 && this.inflight.size === 0) return;
      await this.settled();
    }
    throw new Error("webhook worker did not become idle");
  }

  /** Resolves when every attempt now in flight has been recorded. */
  async settled(): Promise<void> {
    await Promise.all([...this.inflight.values()]);
  }

  /** Resolves when any attempt now in flight has been recorded (at once if none is). */
  async anySettled(): Promise<void> {
    if (this.inflight.size > 0) await Promise.race([...this.inflight.values()]);
  }

  /** New work (a test event, a retry): run the next tick now instead of after the idle interval. */
  wake(): void {
    if (this.stopped) return;
    // Mid-tick: the loop goes again as soon as this tick ends (slots may have been freed).
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(this.loop, 0);
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe ??= onEventsWritten(() => this.wake());
    this.timer = setTimeout(this.loop, 0);
  }

  /** Stops claiming; waits for the attempts in flight (each bounded by the timeout) to be recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    clearTimeout(this.timer);
    if (this.ticking) await this.ticking.catch(() => 0);
    await this.settled();
    if (!this.agent.closed) await this.agent.close();
  }

  private readonly loop = async (): Promise<void> => {
    if (this.stopped) return;
    this.running = true;
    this.again = false;
    let claimed = 0;
    try {
      claimed = await this.tick();
    } catch (err) {
      this.logLoopError(this.deps.log, err, "webhook worker tick failed");
    }
    this.running = false;
    if (this.stopped) return;
    const full = this.inflight.size >= this.deps.config.WEBHOOK_CONCURRENCY;
    // Busy, or woken meanwhile: go again at once (a finished attempt also wakes us). Idle or
    // every slot taken: wait for the interval or the next wake.
    this.timer = setTimeout(this.loop, this.again || (claimed > 0 && !full) ? 0 : this.deps.config.WEBHOOK_INTERVAL_MS);
  };

  private async claimAndStart(): Promise<number> {
    const { config, clock, db } = this.deps;
    const claimed = await claimDue(db, clock.now(), {
      max: config.WEBHOOK_CONCURRENCY - this.inflight.size,
      perEndpoint: config.WEBHOOK_CONCURRENCY_PER_ENDPOINT,
      busy: this.busy,
      leaseMs: this.leaseMs,
    });
    for (const d of claimed) this.start1(d);
    return claimed.length;
  }

  private start1(d: ClaimedDelivery): void {
    this.busy.set(d.endpointId, (this.busy.get(d.endpointId) ?? 0) + 1);
    // The per-endpoint bound is about requests the endpoint sees at once: a slot is free again
    // as soon as the answer is in, while the outcome is still being written.
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const n = (this.busy.get(d.endpointId) ?? 1) - 1;
      if (n <= 0) this.busy.delete(d.endpointId);
      else this.busy.set(d.endpointId, n);
      this.wake();
    };
    const run = this.deliver(d, release).finally(() => {
      this.inflight.delete(d.id);
      release();
      this.wake();
    });
    this.inflight.set(d.id, run);
  }

  private delivered: { d: ClaimedDelivery; status: number; resolve: (as: RecordedAs) => void; reject: (err: unknown) => void }[] = [];

  /** Successes that finish in the same turn of the event loop are recorded together. */
  private recordDeliveredSoon(d: ClaimedDelivery, status: number): Promise<RecordedAs> {
    return new Promise((resolve, reject) => {
      this.delivered.push({ d, status, resolve, reject });
      if (this.delivered.length > 1) return;
      setImmediate(() => {
        const batch = this.delivered;
        this.delivered = [];
        recordDelivered({ db: this.deps.db, clock: this.deps.clock, random: this.random, log: this.deps.log }, batch).then(
          (results) => {
            for (const [i, b] of batch.entries()) b.resolve(results[i] ?? "lost_lease");
          },
          (err: unknown) => {
            for (const b of batch) b.reject(err);
          },
        );
      });
    });
  }

  private async deliver(d: ClaimedDelivery, release: () => void): Promise<void> {
    const { config, clock, log } = this.deps;
    const started = performance.now();
    try {
      const outcome = await attemptDelivery(d, { agent: this.agent, timeoutMs: config.WEBHOOK_TIMEOUT_MS, nowMs: d.claimedAt, userAgent: USER_AGENT });
      release();
      const seconds = (performance.now() - started) / 1000;
      if (outcome.kind === "failed") log?.debug({ webhook_id: d.endpointId, delivery_id: d.id, attempts: d.attempts, error: outcome.error, response: outcome.snippet }, "webhook attempt failed");
      const as =
        outcome.kind === "delivered" ? await this.recordDeliveredSoon(d, outcome.status) : await recordOutcome({ db: this.deps.db, clock, random: this.random, log }, d, outcome);
      this.metrics.attempt(as, seconds);
    } catch (err) {
      // Not recorded (database unavailable): the lease runs out and the delivery is tried again.
      log?.error({ err, webhook_id: d.endpointId, delivery_id: d.id }, "webhook attempt could not be recorded");
    }
  }
}
