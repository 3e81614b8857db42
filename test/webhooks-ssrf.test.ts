// Egress safety at delivery time, end to end through the worker (reliability.md §2.5, WH-R8;
// WH-T15 DNS rebinding, WH-T16 redirect to a private address, WH-T17 a private literal that
// bypassed registration, WH-T18 device back-ends on 127.0.0.1 unaffected). Address policy is
// the default (private targets denied); DNS is an injected resolver; canaries on 127.0.0.1 must
// see no connection at all.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { afterEach, describe, it } from "node:test";
import type { DeviceNumber, OutboundMessage, SendOutcome } from "../src/backends/backend.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import { buildTestApp, type TestApp, type TestAppOptions } from "./helpers.js";
import { untilStatus } from "./messaging-helpers.js";
import { answer, createWebhook, deliver, deliveriesOf, emit, fakeResolver, OK, Receiver, verifyWith } from "./webhook-support.js";

const PUBLIC_IP = "93.184.216.34";

let t: TestApp | undefined;
let receivers: Receiver[] = [];
afterEach(async () => {
  await t?.close();
  t = undefined;
  await Promise.all(receivers.map((r) => r.close()));
  receivers = [];
});

async function canary(): Promise<Receiver> {
  const r = await Receiver.start({ handler: OK });
  receivers.push(r);
  return r;
}

/** An app whose logs are kept, to check what a blocked delivery logs. */
async function boot(opts: TestAppOptions): Promise<{ t: TestApp; logs: string[] }> {
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  t = await buildTestApp({ ...opts, logger: { level: "warn", stream } });
  return { t, logs };
}

describe("egress safety at delivery", () => {
  it("WH-T15 DNS rebinding: public at registration, 127.0.0.1 at delivery → blocked and dropped; the canary gets 0 connections; the log names no address", async () => {
    const target = await canary();
    let answerWith = PUBLIC_IP;
    const resolver = fakeResolver({ "rebind.test": () => [answerWith] });
    const { t, logs } = await boot({ webhookResolver: resolver });
    const a = await t.seedAccount();
    const w = await createWebhook(t, a.testKey, `http://rebind.test:${target.port}/hook`);
    answerWith = "127.0.0.1";
    await emit(t, a.id, "test");
    await deliver(t);
    assert.equal(target.connections, 0, "the canary was reached");
    const [d] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([d.status, d.attempts, d.next_attempt_at, d.last_status_code], ["blocked", 1, null, null]);
    assert.match(d.last_error, /non-public address/);
    assert.ok(!d.last_error.includes("127.0.0.1"));
    // Dropped: no further attempt, whatever the time.
    t.clock.advance(3 * 24 * 3_600_000);
    await deliver(t);
    assert.equal((await deliveriesOf(t, a.testKey, w.id))[0].attempts, 1);
    assert.ok(resolver.lookups.filter((h) => h === "rebind.test").length >= 2, "the name was resolved again at delivery");
    const warn = logs.find((l) => l.includes("non-public"));
    assert.ok(warn, logs.join("\n"));
    assert.ok(!warn.includes("127.0.0.1") && warn.includes(w.id), warn);
    // It counts as a failure for the disable rule.
    const row = await t.db.kysely.selectFrom("webhook_endpoints").select("failing_since").where("id", "=", w.id).executeTakeFirstOrThrow();
    assert.notEqual(row.failing_since, null);
  });

  it("§9 decision 6: DNS down at registration → accepted; deliveries fail and retry while it is down, then arrive", async () => {
    const receiver = await canary();
    let dnsDown = true;
    const resolver = async (hostname: string) => {
      if (dnsDown) throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), { code: "EAI_AGAIN" });
      return [{ address: "127.0.0.1", family: 4 as const }];
    };
    // The receiver sits on an allowed range, as a LAN host would.
    const { t } = await boot({ webhookResolver: resolver, config: { WEBHOOK_ALLOW_PRIVATE_CIDRS: "127.0.0.1/32" } });
    const a = await t.seedAccount();
    const w = await createWebhook(t, a.testKey, `http://hooks.lan.test:${receiver.port}/hook`);
    await emit(t, a.id, "test");
    await deliver(t);
    const [failed] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([failed.status, failed.attempts], ["pending", 1]);
    assert.match(failed.last_error, /does not resolve \(EAI_AGAIN\)/);
    assert.ok(failed.next_attempt_at, "a retry is scheduled");
    assert.equal(receiver.requests.length, 0);
    dnsDown = false;
    t.clock.advance(10 * 60_000);
    await deliver(t);
    const [done] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([done.status, done.attempts], ["delivered", 2]);
    assert.equal(receiver.requests.length, 1);
  });

  it("a name with a public and a private answer is blocked too (one denied answer is enough)", async () => {
    const target = await canary();
    const both = [PUBLIC_IP];
    const { t } = await boot({ webhookResolver: fakeResolver({ "mixed.test": () => both }) });
    const a = await t.seedAccount();
    const w = await createWebhook(t, a.testKey, `http://mixed.test:${target.port}/`);
    both.push("127.0.0.1");
    await emit(t, a.id, "test");
    await deliver(t);
    assert.equal((await deliveriesOf(t, a.testKey, w.id))[0].status, "blocked");
    assert.equal(target.connections, 0);
  });

  it("WH-T16: a 302 to a private address is not followed: the canary gets 0 connections and the attempt is a failure", async () => {
    const target = await canary();
    const redirector = await Receiver.start({ handler: answer(302, { location: `http://127.0.0.1:${target.port}/` }) });
    receivers.push(redirector);
    // The redirecting server itself sits on an allowed range (as a LAN host would be).
    const { t } = await boot({ webhookResolver: fakeResolver(), config: { WEBHOOK_ALLOW_PRIVATE_CIDRS: "127.0.0.1/32" } });
    const a = await t.seedAccount();
    const w = await createWebhook(t, a.testKey, redirector.url);
    await emit(t, a.id, "test");
    await deliver(t);
    const [d] = await deliveriesOf(t, a.testKey, w.id);
    assert.deepEqual([d.status, d.last_status_code], ["pending", 302]);
    assert.equal(redirector.requests.length, 1);
    assert.equal(target.connections, 0);
  });

  it("WH-T17: a private literal written straight into the database (bypassing registration) is blocked by the connector", async () => {
    const target = await canary();
    const { t } = await boot({ webhookResolver: fakeResolver() });
    const a = await t.seedAccount();
    for (const url of [`http://[::ffff:127.0.0.1]:${target.port}/`, `http://127.0.0.1:${target.port}/`, `http://2130706433:${target.port}/`]) {
      const w = await createWebhook(t, a.testKey, `http://${PUBLIC_IP}/`);
      await t.db.kysely.updateTable("webhook_endpoints").set({ url }).where("id", "=", w.id).execute();
      await t.call(a.testKey, "POST", `/v1/webhooks/${w.id}/test`);
      await deliver(t);
      assert.equal((await deliveriesOf(t, a.testKey, w.id))[0].status, "blocked", url);
    }
    assert.equal(target.connections, 0);
  });

  it("WH-T18: device back-ends on 127.0.0.1 are unaffected (their own agent): a live send through a local device server goes out while webhooks to it are blocked", async () => {
    const device = await canary();
    class LocalDevice extends SimulatorBackend {
      override async send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
        const res = await fetch(device.url, { method: "POST", body: JSON.stringify({ to: m.to, text: m.text }) });
        if (res.status !== 200) return { kind: "not_sent", permanent: false, code: "device_error", message: "device error" };
        return super.send(number, m);
      }
    }
    const { t } = await boot({
      webhookResolver: fakeResolver(),
      backends: ({ db, clock, config }) => {
        const sim = new SimulatorBackend(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS });
        return new Backends(sim, { local: new LocalDevice(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS }) });
      },
    });
    const a = await t.seedAccount();
    await t.addNumber(a.id, "+15557770001", "imessage,sms");
    await t.db.kysely.updateTable("numbers").set({ backend: "local" }).where("handle", "=", "+15557770001").execute();
    const w = await createWebhook(t, a.liveKey, `http://${PUBLIC_IP}/`);
    await t.db.kysely.updateTable("webhook_endpoints").set({ url: device.url }).where("id", "=", w.id).execute();
    const res = await t.call(a.liveKey, "POST", "/v1/messages", { from_handle: "+15557770001", to: "+15557779999", text: "via the LAN device" });
    assert.equal(res.statusCode, 202, res.body);
    await untilStatus(t, res.json().data.id, "sent");
    assert.equal(device.requests.length, 1, "the device call went through");
    await deliver(t);
    const log = await deliveriesOf(t, a.liveKey, w.id);
    assert.ok(log.length > 0 && log.every((d) => d.status === "blocked"), JSON.stringify(log));
    assert.equal(device.requests.length, 1, "a webhook reached the private device server");
  });

  it("with WEBHOOK_ALLOW_PRIVATE=true (local development), the same private receiver gets signed deliveries", async () => {
    const local = await canary();
    const { t } = await boot({ webhookResolver: fakeResolver(), config: { WEBHOOK_ALLOW_PRIVATE: true } });
    const a = await t.seedAccount();
    const w = await createWebhook(t, a.testKey, local.url);
    await emit(t, a.id, "test");
    await deliver(t);
    assert.equal(local.requests.length, 1);
    const got = local.requests[0];
    assert.ok(got);
    verifyWith(w.secret, { ...got, at: t.clock.now() });
  });
});
