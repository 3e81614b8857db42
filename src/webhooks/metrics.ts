import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Clock } from "../clock.js";
import type { Db } from "../db/client.js";
import type { RecordedAs } from "./record.js";

export interface WebhookMetrics {
  /** An attempt finished and was recorded as `as`; `seconds` is the HTTP part. */
  attempt(as: RecordedAs, seconds: number): void;
}

/**
 * Delivery metrics on the app's registry: attempts by what became of the delivery (delivered,
 * retrying, failed = schedule exhausted, blocked, paused, lost_lease), the duration of the HTTP
 * attempts, and on each scrape the deliveries in flight and those due but not yet claimed (the
 * queue's backlog: growing means the worker cannot keep up).
 */
export function webhookMetrics(registry: Registry | undefined, db: Db, clock: Clock, inFlight: () => number): WebhookMetrics {
  if (!registry) return { attempt: () => {} };
  const attempts = new Counter({
    name: "msgbubbles_webhook_attempts_total",
    help: "Webhook delivery attempts, by what became of the delivery.",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "msgbubbles_webhook_attempt_duration_seconds",
    help: "Duration of webhook delivery attempts (the HTTP request), by outcome.",
    labelNames: ["outcome"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
    registers: [registry],
  });
  new Gauge({
    name: "msgbubbles_webhook_in_flight",
    help: "Webhook delivery attempts running in this process.",
    registers: [registry],
    collect() {
      this.set(inFlight());
    },
  });
  new Gauge({
    name: "msgbubbles_webhook_due_deliveries",
    help: "Webhook deliveries due now and waiting for a worker.",
    registers: [registry],
    async collect() {
      try {
        const r = await db.kysely
          .selectFrom("webhook_deliveries")
          .select((eb) => eb.fn.countAll<number | string>().as("n"))
          .where("status", "=", "pending")
          .where("next_attempt_at", "<=", clock.now())
          .executeTakeFirstOrThrow();
        this.set(Number(r.n));
      } catch {
        // Database unavailable: /readyz says so; the gauge keeps its last value.
      }
    },
  });
  return {
    attempt(as, seconds) {
      attempts.inc({ outcome: as });
      duration.observe({ outcome: as }, seconds);
    },
  };
}
