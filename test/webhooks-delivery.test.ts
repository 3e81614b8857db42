// Webhook delivery against real receivers on 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE=true, as for local
// development): Standard Webhooks signing checked with the independent `standardwebhooks` library
// (WH-T02…T05), status handling (WH-T07), timeout (WH-T08), big responses (WH-T19), modes and
// filters of the fan-out, the test event, the deliveries log and manual retry, and the
// per-endpoint concurrency bound. Time is the ManualClock; only real I/O is awaited.
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, it } from "node:test";
import { emitEvents } from "../src/events/catalog.js";
import { uuidv7 } from "../src/ids.js";
import { runMaintenance } from "../src/maintenance.js";
import { policyFromConfig } from "../src/webhooks/address-policy.js";
import { WebhookWorker } from "../src/webhooks/worker.js";
import { buildTestApp, type SeededAccount, type TestApp, type TestAppOptions } from "./helpers.js";
import { assertError } from "./messaging-helpers.js";
import { answer, createWebhook, deliver, deliveriesOf, emit, fakeResolver, HOUR, type Handler, OK, Receiver, SECOND, verifyWith } from "./webhook-support.js";

let t: TestApp;
let a: SeededAccount;
let receivers: Receiver[] = [];

async function boot(opts: TestAppOptions = {}): Promise<void> {
  t = await buildTestApp({ ...opts, config: { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_TIMEOUT_MS: 2_000, ...opts.config }, webhookRandom: () => 0.5 });
  a = await t.seedAccount();
}

async function receiver(handler: Handler = OK): Promise<Receiver> {
  const r = await Receiver.start({ clock: t.clock, handler });
  receivers.push(r);
  return r;
}

async function teardown(): Promise<void> {
  await t.close();
  await Promise.all(receivers.map((r) => r.close()));
  receivers = [];
}

describe("webhook delivery", () => {
  beforeEach(() => boot());
  afterEach(teardown);

  it("WH-T02/T04: the event, not enveloped, with the Standard Webhooks headers; standardwebhooks verifies the bytes received", async () => {
    const r = await receiver();
    const w = await createWebhook(t, a.testKey, r.url);
    const [eventId] = await emit(t, a.id, "test", 1, "message.created", () => ({ id: "m1", text: "héllo ✓" }));
    await deliver(t);
    assert.equal(r.requests.length, 1);
    const got = r.requests[0];
    assert.ok(got);
    assert.equal(got.method, "POST");
    assert.equal(got.headers["content-type"], "application/json");
    assert.match(String(got.headers["user-agent"]), /^MsgBubbles-Webhooks\//);
    assert.equal(got.headers["webhook-id"], eventId);
    assert.equal(got.headers["webhook-timestamp"], String(Math.floor(t.clock.now() / 1000)));
    assert.match(String(got.headers["webhook-signature"]), /^v1,[A-Za-z0-9+/]+=*$/);
    const payload = verifyWith(w.secret, got) as Record<string, unknown>;
    assert.deepEqual(Object.keys(payload), ["id", "type", "created_at", "livemode", "data"]);
    assert.deepEqual(payload, { id: eventId, type: "message.created", created_at: new Date(t.clock.now()).toISOString(), livemode: false, data: { id: "m1", text: "héllo ✓" } });
    const stranger = (await createWebhook(t, a.testKey, r.url)).secret;
    assert.throws(() => verifyWith(stranger, got), /No matching signature/);
    const [d] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual(
      { ...d, id: "*" },
      { id: "*", webhook_id: w.id, event_id: eventId, event_type: "message.created", status: "delivered", attempts: 1, last_status_code: 200, last_error: null, last_attempt_at: new Date(t.clock.now()).toISOString(), next_attempt_at: null, created_at: new Date(t.clock.now()).toISOString(), updated_at: new Date(t.clock.now()).toISOString() },
    );
  });

  it("WH-T03: two attempts of one event: the same webhook-id, a new timestamp, each signature valid for its own", async () => {
    let calls = 0;
    const r = await receiver((req, res, got) => (++calls === 1 ? answer(500)(req, res, got) : OK(req, res, got)));
    const w = await createWebhook(t, a.testKey, r.url);
    await emit(t, a.id, "test");
    await deliver(t);
    t.clock.advance(5 * SECOND);
    await deliver(t);
    assert.equal(r.requests.length, 2);
    const [first, second] = r.requests;
    assert.ok(first && second);
    assert.equal(first.headers["webhook-id"], second.headers["webhook-id"]);
    assert.equal(Number(second.headers["webhook-timestamp"]) - Number(first.headers["webhook-timestamp"]), 5);
    assert.notEqual(first.headers["webhook-signature"], second.headers["webhook-signature"]);
    verifyWith(w.secret, first);
    verifyWith(w.secret, second);
    assert.ok(first.body.equals(second.body), "the same bytes on every attempt");
  });

  it("WH-T05: after a rotation both secrets sign (two v1 signatures, each verifies) for 24 hours, then only the new one", async () => {
    const r = await receiver();
    const w = await createWebhook(t, a.testKey, r.url);
    const rotated = (await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/rotate-secret`)).json().data.secret as string;
    await emit(t, a.id, "test");
    await deliver(t);
    const during = r.requests[0];
    assert.ok(during);
    assert.equal(String(during.headers["webhook-signature"]).split(" ").length, 2);
    assert.match(String(during.headers["webhook-signature"]), /^v1,\S+ v1,\S+$/);
    verifyWith(rotated, during);
    verifyWith(w.secret, during);
    t.clock.advance(24 * HOUR + SECOND);
    await emit(t, a.id, "test");
    await deliver(t);
    const afterwards = r.requests[1];
    assert.ok(afterwards);
    assert.equal(String(afterwards.headers["webhook-signature"]).split(" ").length, 1);
    verifyWith(rotated, afterwards);
    assert.throws(() => verifyWith(w.secret, afterwards), /No matching signature/);
  });

  it("WH-T07: 200 and 204 deliver; 301/302 fail and the Location is never called; 410 disables the endpoint", async () => {
    const target = await receiver();
    const ok200 = await receiver(answer(200));
    const ok204 = await receiver((_q, res) => {
      res.writeHead(204);
      res.end();
    });
    const moved = await receiver(answer(301, { location: target.url }));
    const found = await receiver(answer(302, { location: target.url }));
    const gone = await receiver(answer(410));
    const hooks = new Map<Receiver, string>();
    for (const r of [ok200, ok204, moved, found, gone]) hooks.set(r, (await createWebhook(t, a.testKey, r.url)).id);
    await emit(t, a.id, "test");
    await deliver(t);
    const status = async (r: Receiver) => (await deliveriesOf(t, a.testKey, hooks.get(r) ?? ""))[0];
    assert.deepEqual([(await status(ok200)).status, (await status(ok204)).status], ["delivered", "delivered"]);
    for (const r of [moved, found]) {
      const d = await status(r);
      assert.equal(d.status, "pending");
      assert.match(d.last_error, /^HTTP 30[12] \(redirects are not followed\)/);
      assert.equal(d.next_attempt_at, new Date(t.clock.now() + 5 * SECOND).toISOString());
    }
    assert.equal(target.connections, 0, "a redirect was followed");
    const g = await status(gone);
    assert.deepEqual([g.status, g.last_status_code, g.next_attempt_at], ["pending", 410, null]);
    const endpoint = (await t.call(a.testKey, "GET", `/v1/webhooks/${hooks.get(gone)}`)).json().data;
    assert.deepEqual([endpoint.enabled, endpoint.disabled_reason], [false, "gone"]);
    // Disabled: no new deliveries for it.
    await emit(t, a.id, "test");
    assert.equal((await deliveriesOf(t, a.testKey, hooks.get(gone) ?? "")).length, 1);
  });

  it("WH-T07: 429 and 503 with Retry-After: 120 put the next attempt 120 s later (not the 5 s of the schedule)", async () => {
    for (const code of [429, 503]) {
      const r = await receiver(answer(code, { "retry-after": "120" }));
      const w = await createWebhook(t, a.testKey, r.url);
      await emit(t, a.id, "test");
      await deliver(t);
      const [d] = await deliveriesOf(t, a.testKey, w.id);
      assert.equal(d.next_attempt_at, new Date(t.clock.now() + 120 * SECOND).toISOString(), `${code}`);
      t.clock.advance(119 * SECOND);
      await deliver(t);
      assert.equal(r.requests.length, 1, `${code}: retried before Retry-After`);
      t.clock.advance(SECOND);
      await deliver(t);
      assert.equal(r.requests.length, 2, `${code}: not retried at Retry-After`);
      await t.call(a.testKey, "DELETE", `/v1/webhooks/${w.id}`);
    }
  });

  it("WH-T19: a receiver streaming 100 MB: we stop reading after a few KB, memory stays flat, the attempt is recorded", async () => {
    let written = 0;
    let closedEarly = false;
    const chunk = Buffer.alloc(64 * 1024, "x");
    const r = await receiver((_q, res) => {
      res.writeHead(500, { "content-type": "text/plain", "content-length": String(100 * 1024 * 1024) });
      const pump = () => {
        while (written < 100 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => {
        closedEarly = written < 100 * 1024 * 1024 || !res.writableFinished;
      });
      pump();
    });
    const w = await createWebhook(t, a.testKey, r.url);
    global.gc?.();
    const before = process.memoryUsage().rss;
    await emit(t, a.id, "test");
    await deliver(t);
    const grew = process.memoryUsage().rss - before;
    const [d] = await deliveriesOf(t, a.testKey, w.id);
    assert.equal(d.last_status_code, 500);
    assert.match(d.last_error, /^HTTP 500: x{100,}/);
    assert.ok(d.last_error.length < 1_000, "the stored error is short");
    assert.ok(grew < 40 * 1024 * 1024, `RSS grew by ${Math.round(grew / 1024 / 1024)} MB`);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.ok(closedEarly || written < 100 * 1024 * 1024, "the whole 100 MB was read");
  });

  it("test-mode endpoints receive only test-mode events, live ones only live events (livemode says which)", async () => {
    const testR = await receiver();
    const liveR = await receiver();
    await createWebhook(t, a.testKey, testR.url);
    await createWebhook(t, a.liveKey, liveR.url);
    const [testEvent] = await emit(t, a.id, "test");
    const [liveEvent] = await emit(t, a.id, "live");
    const other = await t.seedAccount("Other");
    await emit(t, other.id, "test");
    await emit(t, other.id, "live");
    await deliver(t);
    assert.deepEqual(testR.events().map((e) => [e.id, e.livemode]), [[testEvent, false]]);
    assert.deepEqual(liveR.events().map((e) => [e.id, e.livemode]), [[liveEvent, true]]);
  });

  it("the events filter: only subscribed types are delivered; a disabled endpoint gets nothing, and its paused deliveries go out when re-enabled", async () => {
    const sentOnly = await receiver();
    const all = await receiver();
    await createWebhook(t, a.testKey, sentOnly.url, ["message.sent"]);
    const w = await createWebhook(t, a.testKey, all.url);
    await emit(t, a.id, "test", 1, "message.created");
    await emit(t, a.id, "test", 1, "message.sent");
    await t.call(a.testKey, "PATCH", `/v1/webhooks/${w.id}`, { enabled: false });
    await emit(t, a.id, "test", 1, "message.read");
    await deliver(t);
    assert.deepEqual(sentOnly.events().map((e) => e.type), ["message.sent"]);
    assert.deepEqual(all.events().map((e) => e.type), [], "a disabled endpoint got a delivery");
    const res = await t.call(a.testKey, "PATCH", `/v1/webhooks/${w.id}`, { enabled: true });
    assert.equal(res.statusCode, 200);
    await deliver(t);
    assert.deepEqual(all.events().map((e) => e.type).sort(), ["message.created", "message.sent"], "the two from before it was disabled; none from while it was");
  });

  it("the fan-out is part of the event's transaction: a rollback leaves neither event nor delivery; one delivery per endpoint and event", async () => {
    const r = await receiver();
    const w1 = await createWebhook(t, a.testKey, r.url);
    const w2 = await createWebhook(t, a.testKey, r.url);
    await assert.rejects(
      t.db.transaction(async (trx) => {
        await emitEvents(trx, t.clock, [{ accountId: a.id, mode: "test", type: "message.sent", data: {} }]);
        throw new Error("rolled back");
      }),
      /rolled back/,
    );
    assert.equal((await t.db.kysely.selectFrom("webhook_deliveries").select("id").execute()).length, 0);
    const ids = await emit(t, a.id, "test", 3);
    const rows = await t.db.kysely.selectFrom("webhook_deliveries").selectAll().execute();
    assert.equal(rows.length, 6);
    for (const w of [w1, w2]) assert.deepEqual(rows.filter((d) => d.endpoint_id === w.id).map((d) => d.event_id).sort(), [...ids].sort());
    for (const d of rows) assert.match(d.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "a UUIDv7");
    assert.equal(new Set(rows.map((d) => d.id)).size, 6);
  });

  it("POST /v1/webhooks/:id/test: 202 with the delivery; a signed webhook.test reaches that endpoint only; 409 while disabled", async () => {
    const r = await receiver();
    const bystander = await receiver();
    const w = await createWebhook(t, a.testKey, r.url);
    await createWebhook(t, a.testKey, bystander.url);
    const res = await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/test`);
    assert.equal(res.statusCode, 202, res.body);
    const d = res.json().data;
    assert.deepEqual([d.event_type, d.status, d.attempts, d.webhook_id], ["webhook.test", "pending", 0, w.id]);
    await deliver(t);
    assert.equal(bystander.requests.length, 0);
    const got = r.requests[0];
    assert.ok(got);
    const payload = verifyWith(w.secret, got) as { id: string; type: string; data: { id: string; url: string } };
    assert.deepEqual([payload.id, payload.type, payload.data.id, payload.data.url], [d.event_id, "webhook.test", w.id, r.url]);
    await t.call(a.testKey, "PATCH", `/v1/webhooks/${w.id}`, { enabled: false });
    assertError(await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/test`), 409, "conflict");
  });

  it("the deliveries log (newest first, status filter, paged) and manual retry: now, with the same webhook-id, for failed, blocked and delivered ones", async () => {
    let fail = true;
    const r = await receiver((q, res, got) => (fail ? answer(500, {}, "boom")(q, res, got) : OK(q, res, got)));
    const w = await createWebhook(t, a.testKey, r.url);
    const ids = await emit(t, a.id, "test", 3);
    await deliver(t);
    const log = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual(log.map((d) => d.event_id), [...ids].reverse());
    for (const d of log) assert.deepEqual([d.status, d.attempts, d.last_status_code, d.last_error], ["pending", 1, 500, "HTTP 500: boom"]);
    const page = (await t.call(a.testKey, "GET", `/v1/webhooks/${w.id}/deliveries?limit=2`)).json();
    assert.equal(page.has_more, true);
    const rest = await deliveriesOf(t, a.testKey, w.id, `?before=${page.data[1].id}`);
    assert.deepEqual(rest.map((d) => d.event_id), [ids[0]]);
    assert.deepEqual(await deliveriesOf(t, a.testKey, w.id, "?status=delivered"), []);

    fail = false;
    const target = log[2];
    const retried = await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/deliveries/${target.id}/retry`);
    assert.equal(retried.statusCode, 202, retried.body);
    assert.equal(retried.json().data.next_attempt_at, new Date(t.clock.now()).toISOString());
    await deliver(t);
    assert.deepEqual(r.requests.slice(3).map((q) => q.headers["webhook-id"]), [ids[0]], "only the retried one, now, same webhook-id");
    const after = (await deliveriesOf(t, a.testKey, w.id, "?status=delivered"))[0];
    assert.deepEqual([after.id, after.attempts], [target.id, 2]);
    // A delivered one may be sent again too.
    assert.equal((await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/deliveries/${target.id}/retry`)).statusCode, 202);
    await deliver(t);
    assert.equal(r.requests.length, 5);
    assertError(await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/deliveries/${ids[0]}/retry`), 404, "not_found");
    const other = await createWebhook(t, a.testKey, r.url);
    assertError(await t.call(a.testKey, "POST", `/v1/webhooks/${other.id}/deliveries/${target.id}/retry`), 404, "not_found");
  });

  it("the by-hand verification of docs/webhooks.md (Node crypto) accepts a real delivery and refuses a tampered one", async () => {
    const doc = readFileSync(new URL("../docs/webhooks.md", import.meta.url), "utf8");
    const block = [...doc.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? "").find((b) => b.includes("function verifyWebhook"));
    assert.ok(block, "no verifyWebhook snippet in docs/webhooks.md");
    const body = block.replace(/^import .*$/m, "");
    const verifyWebhook = new Function("createHmac", "timingSafeEqual", `${body}\nreturn verifyWebhook;`)(createHmac, timingSafeEqual) as (secret: string, headers: Record<string, unknown>, raw: Buffer) => unknown;
    const r = await receiver();
    const w = await createWebhook(t, a.testKey, r.url);
    const rotated = (await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/rotate-secret`)).json().data.secret as string;
    await emit(t, a.id, "test");
    await deliver(t);
    const got = r.requests[0];
    assert.ok(got);
    const realNow = Date.now;
    Date.now = () => got.at;
    try {
      for (const secret of [w.secret, rotated]) assert.equal((verifyWebhook(secret, got.headers, got.body) as { type: string }).type, "message.created");
      assert.throws(() => verifyWebhook(rotated, got.headers, Buffer.concat([got.body, Buffer.from(" ")])), /no matching signature/);
      Date.now = () => got.at + 6 * 60_000;
      assert.throws(() => verifyWebhook(rotated, got.headers, got.body), /timestamp/);
    } finally {
      Date.now = realNow;
    }
  });

  it("finished deliveries leave the log after 30 days (maintenance); pending ones stay", async () => {
    let up = true;
    const r = await receiver((q, res, got) => (up ? OK(q, res, got) : answer(500)(q, res, got)));
    const w = await createWebhook(t, a.testKey, r.url);
    await emit(t, a.id, "test", 2);
    await deliver(t);
    up = false;
    await t.call(a.testKey, "PATCH", `/v1/webhooks/${w.id}`, { enabled: false });
    await emit(t, a.id, "test", 1);
    await t.db.kysely.insertInto("webhook_deliveries").values({ id: uuidv7(), endpoint_id: w.id, event_id: uuidv7(), event_type: "message.created", status: "pending", attempts: 3, next_attempt_at: null, lease_token: null, last_status_code: 500, last_error: "HTTP 500", last_attempt_at: null, created_at: new Date(t.clock.now()).toISOString(), updated_at: new Date(t.clock.now()).toISOString() }).execute();
    t.clock.advance(30 * 24 * HOUR - 1);
    assert.equal((await runMaintenance(t.db, t.clock, t.config)).webhookDeliveries, 0);
    t.clock.advance(2);
    assert.equal((await runMaintenance(t.db, t.clock, t.config)).webhookDeliveries, 2);
    assert.deepEqual((await deliveriesOf(t, a.testKey, w.id)).map((d) => d.status), ["pending"]);
  });

  it("metrics: attempts by outcome and their duration on /metrics", async () => {
    const r = await receiver();
    await createWebhook(t, a.testKey, r.url);
    await emit(t, a.id, "test", 2);
    await deliver(t);
    const body = (await t.call(null, "GET", "/metrics")).body;
    assert.ok(body.includes('msgbubbles_webhook_attempts_total{outcome="delivered"} 2'), body);
    assert.ok(body.includes('msgbubbles_webhook_attempt_duration_seconds_count{outcome="delivered"} 2'));
    assert.ok(body.includes("msgbubbles_webhook_due_deliveries 0"));
    assert.ok(body.includes("msgbubbles_webhook_in_flight 0"));
  });
});

describe("webhook delivery: timeout (WH-T08)", () => {
  beforeEach(() => boot({ config: { WEBHOOK_TIMEOUT_MS: 300 } }));
  afterEach(teardown);

  it("an endpoint that does not answer within WEBHOOK_TIMEOUT_MS: a failed attempt, retried on the schedule", async () => {
    let hang = true;
    const r = await receiver((q, res, got) => {
      if (!hang) OK(q, res, got);
      // else: never answers (the client gives up)
    });
    const w = await createWebhook(t, a.testKey, r.url);
    await emit(t, a.id, "test");
    await deliver(t);
    const [d] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([d.status, d.last_status_code, d.last_error], ["pending", null, "timeout: no answer within 300 ms"]);
    hang = false;
    t.clock.advance(5 * SECOND);
    await deliver(t);
    assert.equal((await deliveriesOf(t, a.testKey, w.id))[0].status, "delivered");
  });
});

describe("webhook delivery: two workers on one database", () => {
  beforeEach(() => boot());
  afterEach(teardown);

  it("claims are exclusive: 60 events to 3 endpoints, two workers draining at once, every delivery sent exactly once", async () => {
    const rs = [await receiver(), await receiver(), await receiver()];
    for (const r of rs) await createWebhook(t, a.testKey, r.url);
    const ids = await emit(t, a.id, "test", 60);
    // A second worker, as another server process on the same database would run (on PostgreSQL
    // its claims contend through FOR UPDATE SKIP LOCKED; on SQLite through the write lock).
    const other = new WebhookWorker({ db: t.db, clock: t.clock, config: t.config, policy: policyFromConfig(t.config), resolve: fakeResolver(), random: () => 0.5 });
    try {
      await Promise.all([deliver(t), other.runUntilIdle()]);
    } finally {
      await other.stop();
    }
    for (const r of rs) {
      const got = r.requests.map((q) => String(q.headers["webhook-id"]));
      assert.equal(got.length, 60, "a delivery was sent twice or not at all");
      assert.deepEqual([...got].sort(), [...ids].sort());
    }
    const attempts = await t.db.kysely.selectFrom("webhook_deliveries").select(["status", "attempts"]).execute();
    assert.deepEqual([...new Set(attempts.map((d) => `${d.status}/${d.attempts}`))], ["delivered/1"]);
  });
});

describe("webhook delivery: per-endpoint concurrency", () => {
  beforeEach(() => boot({ config: { WEBHOOK_CONCURRENCY_PER_ENDPOINT: 2, WEBHOOK_CONCURRENCY: 8, WEBHOOK_TIMEOUT_MS: 30_000 } }));
  afterEach(teardown);

  it("a slow endpoint holds at most its 2 slots; another endpoint's 10 deliveries all go through meanwhile", async () => {
    const held: (() => void)[] = [];
    let release = false;
    const slow = await receiver((q, res, got) => {
      if (release) OK(q, res, got);
      else held.push(() => OK(q, res, got));
    });
    const fast = await receiver();
    await createWebhook(t, a.testKey, slow.url);
    await createWebhook(t, a.testKey, fast.url);
    await emit(t, a.id, "test", 10);
    const worker = t.app.services.webhooks;
    const letGo = () => {
      release = true;
      for (const open of held.splice(0)) open();
    };
    try {
      for (let i = 0; i < 50 && fast.requests.length < 10; i++) {
        await worker.tick();
        await Promise.race([worker.anySettled(), fast.waitFor(10)]);
      }
      assert.equal(fast.requests.length, 10, "the fast endpoint was stalled");
      // The fast endpoint's last attempts are recorded; the slow one's two are still held.
      for (let i = 0; i < 10 && worker.inFlight > 2; i++) await worker.anySettled();
      await slow.waitFor(2);
      assert.equal(slow.requests.length, 2, "more than 2 attempts in flight to one endpoint");
      assert.equal(worker.inFlight, 2);
      assert.equal(await worker.tick(), 0, "a third attempt to the slow endpoint was claimed");
    } finally {
      letGo();
    }
    await deliver(t);
    assert.equal(slow.requests.length, 10);
    assert.equal(new Set(slow.events().map((e) => e.id)).size, 10);
  });
});
