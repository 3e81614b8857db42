/**
 * Shared pieces of the fault tests under load (test/faults-*.test.ts, reliability.md §4.4): the
 * real `serve` as a child process with fast timings, a seeded account, a steady send load that is
 * exactly-once from the client's side (one Idempotency-Key per message, the SAME key on every
 * retry), and the check of the invariants once the run settles:
 *
 * - INV-1 no loss: every 202 is a message row, with its text, in a terminal state;
 * - INV-2 no duplicate: the simulator's device history holds every message once, sends = 1;
 * - INV-3 one terminal transition each (message.sent xor message.failed, once);
 * - INV-4 every event of the account reached the healthy webhook receiver at least once, signed;
 * - INV-6 one message per key; INV-7 every error answer has the documented shape, no internals.
 *
 * Real time is unavoidable with child processes: every wait here is bounded.
 */
import assert from "node:assert/strict";
import { after } from "node:test";
import { createAccount } from "../src/accounts/store.js";
import { systemClock } from "../src/clock.js";
import type { Db } from "../src/db/client.js";
import { ERRORS } from "../src/errors.js";
import { createKey } from "../src/keys/store.js";
import { addNumber } from "../src/numbers/store.js";
import { Agent, request } from "undici";
import { persistentStorage } from "./dispatch-support.js";
import { type ServeProcess, startServe } from "./serve-process.js";
import { type Receiver, verifyWith } from "./webhook-support.js";

/** `serve` tuned for short dispatch runs: fast simulator, 1 s dispatch lease. */
export const FAST_DISPATCH_ENV: Record<string, string> = {
  HOST: "127.0.0.1",
  PORT: "0",
  LOG_LEVEL: "error",
  CREATE_DEMO_ACCOUNT: "false",
  SIMULATOR_DELIVERY_MS: "20",
  SIMULATOR_READ_MS: "30",
  DISPATCH_LEASE_MS: "1000",
  // New sends wake the dispatcher at once; the idle poll only finds leases that ran out.
  DISPATCH_INTERVAL_MS: "20",
};

/** FAST_DISPATCH_ENV, plus a webhook worker that polls often and may call local receivers. */
export const FAST_SERVE_ENV: Record<string, string> = {
  ...FAST_DISPATCH_ENV,
  WEBHOOK_ALLOW_PRIVATE: "true",
  WEBHOOK_TIMEOUT_MS: "500",
  WEBHOOK_INTERVAL_MS: "20",
};

export const TERMINAL = new Set(["sent", "delivered", "read", "failed"]);

const T0 = Date.now();
const steps: string[] = [];
/**
 * Notes a step with the time since the file started; a test that runs out of time names the
 * steps it reached (see `bounded`). FAULTS_DEBUG=1 prints them as they happen.
 */
export function step(what: string): void {
  const line = `${((Date.now() - T0) / 1000).toFixed(1)} s ${what}`;
  steps.push(line);
  if (process.env.FAULTS_DEBUG) process.stdout.write(`# ${line}\n`);
}

/**
 * Runs a test body within `ms` (set below the test's own timeout): when it fails or runs out of
 * time, the error lists the steps reached, so a slow machine's failure says where it stalled.
 */
export async function bounded(ms: number, body: () => Promise<void>): Promise<void> {
  try {
    await within(body(), ms, "the test body");
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    e.message = `${e.message}\n  steps: ${steps.join(" | ")}`;
    throw e;
  }
}

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rejects when `p` takes longer than `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** The servers a test started; `killAll()` in `after` leaves no child behind. */
export class Servers {
  readonly all: ServeProcess[] = [];
  current: ServeProcess | null = null;

  constructor(private readonly env: Record<string, string>) {}

  async start(extra: Record<string, string> = {}): Promise<ServeProcess> {
    const s = await startServe({ ...this.env, ...FAST_SERVE_ENV, ...extra });
    this.all.push(s);
    this.current = s;
    return s;
  }

  /** SIGKILL the current server and wait for it to be gone. */
  async kill(): Promise<void> {
    const s = this.current;
    if (!s) return;
    this.current = null;
    s.child.kill("SIGKILL");
    await within(s.exited, 10_000, "SIGKILL");
  }

  /** SIGTERM the current server: it must stop cleanly (exit 0). */
  async stop(): Promise<void> {
    const s = this.current;
    if (!s) return;
    this.current = null;
    s.child.kill("SIGTERM");
    assert.equal(await within(s.exited, 15_000, "graceful stop"), 0, "serve exits 0 on SIGTERM");
  }

  async killAll(): Promise<void> {
    for (const s of this.all) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await Promise.all(this.all.map((s) => s.exited));
  }
}

/**
 * What a fault test under load holds for its whole run — the storage the test and its `serve`
 * processes share, those processes, the webhook receiver and the send load — torn down after the
 * describe block whatever state the run stopped in. The test sets `receiver` and `load`.
 */
export function faultRun(): { storage: ReturnType<typeof persistentStorage>; servers: Servers; receiver?: Receiver; load?: SendLoad } {
  const storage = persistentStorage();
  const rig: ReturnType<typeof faultRun> = { storage, servers: new Servers(storage.env) };
  after(async () => {
    rig.load?.abort();
    await rig.servers.killAll();
    await rig.receiver?.close();
    await storage.cleanup();
  });
  return rig;
}

/** An account with a test key no rate limit stops, and simulator numbers at `pace` per minute. */
export async function seedAccount(db: Db, numbers: readonly string[], pace = 6000): Promise<{ accountId: string; key: string }> {
  const acct = await createAccount(db.kysely, systemClock, "Faults");
  const key = (await createKey(db.kysely, systemClock, { accountId: acct.id, mode: "test", rateLimit: 600_000 })).key;
  for (const handle of numbers) await addNumber(db.kysely, systemClock, { accountId: acct.id, handle, channels: "imessage,sms", backend: "simulator", pace });
  return { accountId: acct.id, key };
}

// One client for every test request: keep-alive, and a bound on how long an answer may take, so
// a server that hangs fails the test instead of stalling it.
const client = new Agent({ connections: 64, headersTimeout: 15_000, bodyTimeout: 15_000, connectTimeout: 5_000 });

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
  body: any;
  ms: number;
}

/** One API call; throws on a connection error (the server is down) or a hang (15 s). */
export async function call(base: string, key: string, method: "GET" | "POST", path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now();
  const h: Record<string, string> = { authorization: `Bearer ${key}`, ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await request(`${base}${path}`, { method, headers: h, body: body === undefined ? null : JSON.stringify(body), dispatcher: client });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text, and the shape check reports it
  }
  return { status: res.statusCode, headers: res.headers, body: parsed, ms: performance.now() - started };
}

/** What a 5xx message must never show (reliability.md SEC-T20): driver, SQL, paths, stacks. */
const INTERNALS = /sqlite|postgres|pg_|econn|sql|\.ts\b|\bat \/|terminat|[a-z]error\b|connection/i;

/**
 * The documented error shape (api.md §1, INV-7): exactly { error, message, request_id }, the
 * request id also in X-Request-Id, a documented code with its status, no internals in a 5xx.
 * Returns a description of what is wrong, or null.
 */
export function errorShapeProblem(a: Answer): string | null {
  const b = a.body;
  if (typeof b !== "object" || b === null) return `${a.status} with a non-JSON body ${String(b).slice(0, 200)}`;
  const keys = Object.keys(b).sort().join(",");
  if (keys !== "error,message,request_id") return `${a.status} with keys ${keys}: ${JSON.stringify(b).slice(0, 300)}`;
  if (a.headers["x-request-id"] !== b.request_id) return `${a.status}: X-Request-Id ${String(a.headers["x-request-id"])} ≠ body ${b.request_id}`;
  const known = (ERRORS as Record<string, { status: number; message: string }>)[b.error];
  if (!known || known.status !== a.status) return `${a.status} with undocumented error ${b.error}`;
  if (a.status >= 500 && INTERNALS.test(String(b.message))) return `${a.status} ${b.error} leaks internals: ${b.message}`;
  return null;
}

export interface SendLoadOptions {
  key: string;
  /** The server to send to now; null while there is none (between a kill and the restart). */
  target: () => string | null;
  numbers: readonly string[];
  recipients: readonly string[];
  /** Requests in flight at most. */
  concurrency?: number;
  /** Pause of each sender between two messages (ms): the stream's pace. */
  gapMs?: number;
  /** Stop issuing new messages after this many. */
  max?: number;
}

/**
 * A steady stream of POST /v1/messages, message i with Idempotency-Key `k<i>` and text `m<i>`.
 * A message is retried — always with its own key — on a connection error, `503 unavailable`,
 * `503 device_offline` and `409 idempotency_key_in_use`, until it is accepted (202, or 200 for a replay): from the
 * client's side every message is sent exactly once. Anything else is a problem the test reports.
 */
export class SendLoad {
  /** Message index → message id, once accepted. */
  readonly accepted = new Map<number, string>();
  /** How often each answer came: "202", "200", "503 unavailable", "ECONNREFUSED", … */
  readonly answers = new Map<string, number>();
  /** Unexpected answers: wrong status, wrong error shape, two ids for one key, a hang. */
  readonly problems: string[] = [];
  /** Slowest answer seen (ms). */
  slowestMs = 0;
  /** When each 503 came (Date.now()), for the outage test. */
  readonly unavailableAt: number[] = [];
  private next = 0;
  private issuing = false;
  private aborted = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly o: SendLoadOptions) {}

  get issued(): number {
    return this.next;
  }

  start(): void {
    this.issuing = true;
    this.workers = Array.from({ length: this.o.concurrency ?? 6 }, () => this.worker());
  }

  /** Stops issuing new messages; resolves when every issued one has been accepted (or given up). */
  async stop(): Promise<void> {
    this.issuing = false;
    await Promise.all(this.workers);
  }

  /** Gives up at once (a failed test): nothing is retried any more. */
  abort(): void {
    this.issuing = false;
    this.aborted = true;
  }

  /** Resolves once `n` messages have been accepted. */
  async waitAccepted(n: number, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (this.accepted.size < n) {
      if (this.problems.length > 0) throw new Error(`send load: ${this.problems.join("; ")}`);
      if (Date.now() > end) throw new Error(`only ${this.accepted.size} of ${n} messages accepted within ${ms} ms`);
      await pause(20);
    }
  }

  private count(what: string): void {
    this.answers.set(what, (this.answers.get(what) ?? 0) + 1);
  }

  private async worker(): Promise<void> {
    while (this.issuing && (this.o.max === undefined || this.next < this.o.max)) {
      const i = this.next++;
      await this.send(i);
      if (this.o.gapMs) await pause(this.o.gapMs);
    }
  }

  /** `n` more messages from `from`, all at once, beside the stream; resolves once they are accepted. */
  async burst(from: string, n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => this.send(this.next++, from)));
  }

  private async send(i: number, from?: string): Promise<void> {
    const { numbers, recipients, key } = this.o;
    const body = { from_handle: from ?? numbers[i % numbers.length], to: recipients[i % recipients.length], text: `m${i}` };
    // Bounded: a message that cannot be placed within a minute is a problem (the test fails).
    const end = Date.now() + 60_000;
    while (Date.now() < end && !this.aborted) {
      const base = this.o.target();
      if (base === null) {
        await pause(25);
        continue;
      }
      let a: Answer;
      try {
        a = await call(base, key, "POST", "/v1/messages", body, { "idempotency-key": `k${i}` });
      } catch (err) {
        const code = (err as { code?: string }).code ?? "error";
        this.count(code);
        if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") this.problems.push(`message ${i}: no answer within 15 s`);
        await pause(25); // the server is gone: the same key again, on whichever server is up next
        continue;
      }
      this.slowestMs = Math.max(this.slowestMs, a.ms);
      if (a.status === 202 || a.status === 200) {
        this.count(String(a.status));
        const id = a.body?.data?.id as string;
        const before = this.accepted.get(i);
        if (before !== undefined && before !== id) this.problems.push(`key k${i} answered two messages: ${before}, ${id}`);
        if (a.body?.data?.text !== `m${i}`) this.problems.push(`key k${i} answered text ${a.body?.data?.text}`);
        this.accepted.set(i, id);
        return;
      }
      const shape = errorShapeProblem(a);
      if (shape) this.problems.push(`message ${i}: ${shape}`);
      this.count(`${a.status} ${a.body?.error}`);
      if (a.status === 503 && a.body?.error === "unavailable") {
        this.unavailableAt.push(Date.now());
        await pause(50);
        continue;
      }
      // Documented as safe to retry: nothing was stored (api.md, Numbers).
      if ((a.status === 409 && a.body?.error === "idempotency_key_in_use") || (a.status === 503 && a.body?.error === "device_offline")) {
        await pause(50);
        continue;
      }
      this.problems.push(`message ${i}: unexpected ${a.status} ${JSON.stringify(a.body).slice(0, 300)}`);
      return;
    }
    if (!this.aborted) this.problems.push(`message ${i}: not accepted within 60 s`);
  }

  /** "202×300 200×4 ECONNREFUSED×12" */
  summary(): string {
    return [...this.answers].map(([k, n]) => `${k}×${n}`).join(" ");
  }
}

/** POST /v1/webhooks on `base` for every event type; returns the endpoint's id and secret. */
export async function registerWebhook(base: string, key: string, url: string): Promise<{ id: string; secret: string }> {
  const a = await call(base, key, "POST", "/v1/webhooks", { url });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  return { id: a.body.data.id, secret: a.body.data.secret };
}

/**
 * Waits until the run has settled: `total` outbound messages of the account, all terminal, no
 * simulator signal still due, and — given an endpoint — none of its deliveries left to make.
 * Queries that fail (the database restarting) are retried until the deadline.
 */
export async function settle(db: Db, o: { accountId: string; total: number; endpointId?: string; ms: number }): Promise<void> {
  const end = Date.now() + o.ms;
  let last = "";
  let polls = 0;
  for (;;) {
    try {
      const rows = await db.kysely.selectFrom("messages").select("status").where("account_id", "=", o.accountId).where("direction", "=", "outbound").execute();
      const open = rows.filter((r) => !TERMINAL.has(r.status)).length;
      const timers = (await db.kysely.selectFrom("simulator_timers").select("id").limit(1).execute()).length;
      const undelivered = o.endpointId
        ? (await db.kysely.selectFrom("webhook_deliveries").select("id").where("endpoint_id", "=", o.endpointId).where("status", "!=", "delivered").execute()).length
        : 0;
      last = `${rows.length}/${o.total} messages, ${open} not terminal, ${timers ? "some" : "no"} simulator timers due, ${undelivered} webhook deliveries to make`;
      if (rows.length >= o.total && open === 0 && timers === 0 && undelivered === 0) return;
    } catch (err) {
      last = `query failed: ${(err as Error).message}`;
    }
    if (Date.now() > end) throw new Error(`not settled within ${o.ms} ms: ${last}`);
    if (process.env.FAULTS_DEBUG && ++polls % 10 === 0) step(`settling: ${last}`);
    await pause(100);
  }
}

/**
 * The end of a fault run under load: it settles (every message terminal, every delivery made), the
 * last server stops cleanly, then reliability.md §4's invariants are checked, with nothing failed.
 */
export async function settleAndCheck(
  db: Db,
  servers: Servers,
  o: { accountId: string; load: SendLoad; receiver: Receiver; webhook: { id: string; secret: string }; ms: number },
): Promise<InvariantReport> {
  await settle(db, { accountId: o.accountId, total: o.load.issued, endpointId: o.webhook.id, ms: o.ms });
  step("settled");
  await servers.stop();
  return assertInvariants(db, { accountId: o.accountId, accepted: o.load.accepted, total: o.load.issued, receiver: o.receiver, secret: o.webhook.secret, failed: "none" });
}

export interface InvariantReport {
  events: number;
  deliveries: number;
  duplicateDeliveries: number;
  reclaimed: number;
}

/**
 * The invariants of reliability.md §4.4 over a settled run (see the header). `receiver` is the
 * account's healthy endpoint, registered before the first message was sent.
 */
export async function assertInvariants(
  db: Db,
  o: { accountId: string; accepted: Map<number, string>; total: number; receiver?: Receiver; secret?: string; failed?: "none" },
): Promise<InvariantReport> {
  const ids = [...o.accepted.values()];
  assert.equal(o.accepted.size, o.total, "every message was accepted");
  assert.equal(new Set(ids).size, o.total, "one message per idempotency key (INV-6)");

  // INV-1: exactly the accepted messages exist, with their text, each in a terminal state.
  const rows = await db.kysely
    .selectFrom("messages")
    .select(["id", "status", "text", "attempts", "error_code"])
    .where("account_id", "=", o.accountId)
    .where("direction", "=", "outbound")
    .execute();
  assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort(), "the messages are exactly the accepted ones (INV-1)");
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const [i, id] of o.accepted) assert.equal(byId.get(id)?.text, `m${i}`, `message ${i}`);
  assert.deepEqual(rows.filter((r) => !TERMINAL.has(r.status)), [], "every message is terminal (INV-1)");
  if (o.failed === "none") assert.deepEqual(rows.filter((r) => r.status === "failed"), [], "no message failed");

  // INV-3: one terminal transition each in the event log.
  const evs = await db.kysely.selectFrom("events").select(["id", "type", "data"]).where("account_id", "=", o.accountId).execute();
  const terminal = new Map<string, string[]>();
  for (const e of evs) {
    if (e.type !== "message.sent" && e.type !== "message.failed") continue;
    const id = (JSON.parse(e.data) as { id: string }).id;
    terminal.set(id, [...(terminal.get(id) ?? []), e.type]);
  }
  for (const id of ids) {
    const t = terminal.get(id) ?? [];
    assert.equal(t.length, 1, `message ${id} has one terminal event (INV-3), got ${JSON.stringify(t)}`);
    assert.equal(t[0] === "message.failed", byId.get(id)?.status === "failed", `message ${id}: its event matches its status`);
  }

  // INV-2: the device sent every message that went out exactly once, and nothing else.
  const hist = await db.kysely.selectFrom("simulator_history").select(["message_id", "sends"]).where("message_id", "in", ids).execute();
  const sentIds = rows.filter((r) => r.status !== "failed").map((r) => r.id).sort();
  assert.deepEqual(hist.map((h) => h.message_id).sort(), sentIds, "the device history holds every sent message (INV-1)");
  assert.deepEqual(hist.filter((h) => h.sends !== 1), [], "no message was sent twice (INV-2)");

  // INV-4: every event reached the healthy receiver at least once, with a valid signature; a
  // repeat carries the same webhook-id and the same bytes.
  let duplicateDeliveries = 0;
  if (o.receiver && o.secret) {
    const got = new Map<string, Buffer>();
    for (const r of o.receiver.requests) {
      const id = String(r.headers["webhook-id"]);
      const before = got.get(id);
      if (before) {
        duplicateDeliveries++;
        assert.ok(before.equals(r.body), `a repeat of ${id} carries the same body`);
        continue;
      }
      verifyWith(o.secret, r);
      got.set(id, r.body);
    }
    const missing = evs.filter((e) => !got.has(e.id)).map((e) => `${e.type} ${e.id}`);
    assert.deepEqual(missing, [], "every event was delivered to the healthy endpoint (INV-4)");
    const unknown = [...got.keys()].filter((id) => !evs.some((e) => e.id === id));
    assert.deepEqual(unknown, [], "nothing but the account's events was delivered");
  }
  return { events: evs.length, deliveries: o.receiver?.requests.length ?? 0, duplicateDeliveries, reclaimed: rows.filter((r) => r.attempts > 1).length };
}
