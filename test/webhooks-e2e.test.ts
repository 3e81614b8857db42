// Webhooks end to end: the simulator's scripted recipients drive the real messaging engine on the
// ManualClock, and a local receiver gets each event signed (checked with `standardwebhooks`);
// then deliveries that survive an app restart, including one whose attempt was cut off.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { claimDue } from "../src/webhooks/claim.js";
import { persistentStorage } from "./dispatch-support.js";
import { buildTestApp } from "./helpers.js";
import { elapse, FROM, type Messaging, messagingApp, SIM } from "./messaging-helpers.js";
import { type CreatedWebhook, createWebhook, deliver, deliveriesOf, emit, Receiver, verifyWith } from "./webhook-support.js";

describe("end to end: simulator events reach a local receiver, signed", () => {
  let m: Messaging;
  let r: Receiver;
  let w: CreatedWebhook;
  before(async () => {
    m = await messagingApp({ config: { WEBHOOK_ALLOW_PRIVATE: true, SIMULATOR_DELIVERY_MS: 300, SIMULATOR_READ_MS: 700 } });
    r = await Receiver.start({ clock: m.t.clock });
    w = await createWebhook(m.t, m.acct.testKey, r.url);
  });
  after(async () => {
    await m.close();
    await r.close();
  });

  /** Sends to `to`, lets the simulator play for `ms`, delivering webhooks at every step; the payloads about that message. */
  async function run(to: string, ms = 5_000) {
    const sent = await m.send({ to, from_handle: FROM, text: `hello ${to}` });
    for (let waited = 0; waited < ms; waited += 100) {
      await elapse(m.t, 100, 100);
      await deliver(m.t);
    }
    const mine = r.requests.filter((q) => {
      const e = JSON.parse(q.body.toString("utf8"));
      return e.data.id === sent.id || e.data.message_id === sent.id || (e.type === "message.received" && e.data.from_handle === to);
    });
    return { sent, payloads: mine.map((q) => verifyWith(w.secret, q) as { id: string; type: string; livemode: boolean; data: Record<string, unknown> }) };
  }

  it(`${SIM.echoes}: message.created, .sent, .delivered, .read and the reply's message.received, each verified`, async () => {
    const { sent, payloads } = await run(SIM.echoes);
    assert.deepEqual(payloads.map((p) => p.type), ["message.created", "message.sent", "message.delivered", "message.read", "message.received"]);
    assert.deepEqual(payloads.map((p) => p.data.status), ["queued", "sent", "delivered", "read", "received"]);
    for (const p of payloads.slice(0, 4)) assert.equal(p.data.id, sent.id);
    assert.equal(payloads[4]?.data.text, `hello ${SIM.echoes}`);
    assert.ok(payloads.every((p) => p.livemode === false));
    // Each event once (no retries were needed), webhook-id = the event id.
    const ids = r.requests.map((q) => q.headers["webhook-id"]);
    assert.equal(new Set(ids).size, ids.length);
  });

  it(`${SIM.reactsLove}: message.reaction after the read`, async () => {
    const { payloads } = await run(SIM.reactsLove);
    assert.deepEqual(payloads.map((p) => p.type), ["message.created", "message.sent", "message.delivered", "message.read", "message.reaction"]);
    assert.equal(payloads[4]?.data.reaction, "love");
  });

  it(`${SIM.fails}: message.failed with error.code undeliverable`, async () => {
    const { payloads } = await run(SIM.fails);
    assert.deepEqual(payloads.map((p) => p.type), ["message.created", "message.failed"]);
    assert.deepEqual(payloads[1]?.data.error, { code: "undeliverable", message: "The recipient cannot receive messages." });
  });

  it("every delivery of the run is in the log as delivered, on the first attempt", async () => {
    const log = await deliveriesOf(m.t, m.acct.testKey, w.id, "?limit=100");
    assert.equal(log.length, r.requests.length);
    assert.deepEqual([...new Set(log.map((d) => `${d.status}/${d.attempts}`))], ["delivered/1"]);
  });
});

describe("deliveries survive a restart", () => {
  const storage = persistentStorage();
  const receivers: Receiver[] = [];
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  after(() => storage.cleanup());

  it("pending deliveries written before a shutdown go out from the next process; one cut off mid-attempt is sent again after its lease, same webhook-id", async () => {
    const r = await Receiver.start();
    receivers.push(r);
    const config = { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_TIMEOUT_MS: 1_000 };
    const first = await buildTestApp({ db: await storage.open(), config });
    const a = await first.seedAccount();
    const w = await createWebhook(first, a.testKey, r.url);
    const ids = await emit(first, a.id, "test", 3);
    // One delivery claimed (leased, `delivering`) and then the process "dies" before its request.
    const [cut] = await claimDue(first.db, first.clock.now(), { max: 1, perEndpoint: 4, busy: new Map(), leaseMs: first.app.services.webhooks.leaseMs });
    assert.ok(cut);
    const leaseMs = first.app.services.webhooks.leaseMs;
    await first.close();
    assert.equal(r.requests.length, 0);

    const second = await buildTestApp({ db: await storage.open(), config });
    try {
      await deliver(second);
      const now = r.requests.map((q) => String(q.headers["webhook-id"]));
      assert.deepEqual(now.sort(), ids.filter((id) => id !== cut.event?.id).sort(), "the two pending ones, not the leased one yet");
      second.clock.advance(leaseMs);
      await deliver(second);
      assert.equal(r.requests.length, 3);
      assert.equal(r.requests[2]?.headers["webhook-id"], cut.event?.id);
      const again = r.requests[2];
      assert.ok(again);
      verifyWith(w.secret, { ...again, at: second.clock.now() });
      const log = await deliveriesOf(second, a.testKey, w.id);
      assert.deepEqual(log.map((d) => [d.status, d.attempts]).sort(), [["delivered", 1], ["delivered", 1], ["delivered", 2]]);
    } finally {
      await second.close();
    }
  });
});
