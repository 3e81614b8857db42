/**
 * Shared pieces of the webhook tests (test/webhooks-*.test.ts): real HTTP receivers on 127.0.0.1
 * that record every request, a fake DNS resolver (tests never reach the internet), signature
 * checks with the independent `standardwebhooks` library, and endpoint creation through the API.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import type { Clock } from "../src/clock.js";
import { emitEvents, type EventType } from "../src/events/catalog.js";
import type { Resolver } from "../src/webhooks/address-policy.js";
import type { TestApp } from "./helpers.js";

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The raw bytes received. */
  body: Buffer;
  /** The injected clock's time when the request arrived. */
  at: number;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, received: Received) => void;

/** Answers 200 "ok": a healthy receiver. */
export const OK: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end("ok");
};

/** Answers `status` (with `headers`, and a short body). */
export const answer = (status: number, headers: Record<string, string> = {}, body = "nope"): Handler => (_req, res) => {
  res.writeHead(status, { "content-type": "text/plain", ...headers });
  res.end(body);
};

/** A local HTTP receiver that records every request (its body read in full) before answering. */
export class Receiver {
  readonly requests: Received[] = [];
  /** TCP connections accepted: a canary must stay at 0. */
  connections = 0;
  handler: Handler;
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly clock: Clock | undefined,
    handler: Handler,
  ) {
    this.handler = handler;
  }

  static async start(opts: { clock?: Clock; handler?: Handler; path?: string } = {}): Promise<Receiver> {
    let self: Receiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r = self;
        if (!r) return;
        const received: Received = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks), at: r.clock?.now() ?? Date.now() };
        r.requests.push(received);
        r.handler(req, res, received);
        r.notify();
      });
    });
    server.on("connection", () => {
      if (self) self.connections++;
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    self = new Receiver(server, `http://127.0.0.1:${port}${opts.path ?? "/hook"}`, opts.clock, opts.handler ?? OK);
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Resolves once `n` requests have arrived (real I/O; never a timer). */
  waitFor(n: number): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.requests.length < w.n) return true;
      w.resolve();
      return false;
    });
  }

  /** The parsed bodies. */
  events(): { id: string; type: string; created_at: string; livemode: boolean; data: Record<string, unknown> }[] {
    return this.requests.map((r) => JSON.parse(r.body.toString("utf8")));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Verifies a received request with the `standardwebhooks` library (never our own code), at the
 * moment it arrived on the injected clock: the library also checks the timestamp is within 5 minutes.
 * Returns the parsed payload; throws when no signature matches.
 */
export function verifyWith(secret: string, r: Received): unknown {
  const realNow = Date.now;
  Date.now = () => r.at;
  try {
    const headers = {
      "webhook-id": String(r.headers["webhook-id"] ?? ""),
      "webhook-timestamp": String(r.headers["webhook-timestamp"] ?? ""),
      "webhook-signature": String(r.headers["webhook-signature"] ?? ""),
    };
    return new Webhook(secret).verify(r.body, headers);
  } finally {
    Date.now = realNow;
  }
}

/**
 * DNS answers from a table (name → addresses, or a function for answers that change); any other
 * name does not resolve. What a test's app uses instead of the system resolver.
 */
export function fakeResolver(table: Record<string, string[] | (() => string[])> = {}): Resolver & { lookups: string[] } {
  const lookups: string[] = [];
  const resolve = async (hostname: string) => {
    lookups.push(hostname);
    const entry = table[hostname.toLowerCase().replace(/\.$/, "")];
    const addresses = typeof entry === "function" ? entry() : entry;
    if (!addresses || addresses.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return addresses.map((address) => ({ address, family: (address.includes(":") ? 6 : 4) as 4 | 6 }));
  };
  return Object.assign(resolve, { lookups });
}

export interface CreatedWebhook {
  id: string;
  url: string;
  secret: string;
  events: string[] | null;
  enabled: boolean;
}

/** POST /v1/webhooks expecting 201; returns the endpoint with its secret. */
export async function createWebhook(t: TestApp, key: string, url: string, events?: string[]): Promise<CreatedWebhook> {
  const res = await t.call(key, "POST", "/v1/webhooks", events ? { url, events } : { url });
  assert.equal(res.statusCode, 201, res.body);
  return res.json().data as CreatedWebhook;
}

/** The endpoint's deliveries through the API, newest first. */
// biome-ignore lint/suspicious/noExplicitAny: delivery objects are checked field by field
export async function deliveriesOf(t: TestApp, key: string, webhookId: string, query = ""): Promise<any[]> {
  const res = await t.call(key, "GET", `/v1/webhooks/${webhookId}/deliveries${query}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json().data;
}

/** Runs the webhook worker until nothing is due at the current clock time. */
export const deliver = (t: TestApp) => t.app.services.webhooks.runUntilIdle();

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** Writes events through emitEvents in their own transaction, as the engine does; returns their ids. */
export async function emit(t: TestApp, accountId: string, mode: "test" | "live", count = 1, type: EventType = "message.created", data: (i: number) => unknown = (i) => ({ n: i })): Promise<string[]> {
  await t.db.transaction((trx) => emitEvents(trx, t.clock, Array.from({ length: count }, (_, i) => ({ accountId, mode, type, data: data(i) }))));
  const rows = await t.db.kysely.selectFrom("events").select("id").where("account_id", "=", accountId).where("mode", "=", mode).orderBy("id", "desc").limit(count).execute();
  return rows.map((r) => r.id).reverse();
}
