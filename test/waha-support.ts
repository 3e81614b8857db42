/**
 * The messaging app on a real WAHA back-end, talking HTTP to the local fake WAHA (fakes/waha):
 * the app listens on 127.0.0.1 so the fake's webhooks reach its ingest URL and the fake can fetch
 * our signed attachment URLs. Time is the app's ManualClock, shared with the fake, so message
 * timestamps on both sides agree; nothing sleeps — `settle()` waits for real round trips only.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import { WahaBackend } from "../src/backends/waha/backend.js";
import type { Config } from "../src/config.js";
import type { WahaConfig } from "../src/numbers/backend-config.js";
import { addNumber } from "../src/numbers/store.js";
import { FakeWaha } from "../fakes/waha/server.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";

export const NUMBER = "+15557020001";
export const BOB = "+15557020002";
export const CAROL = "+15557020003";
export const DAVE = "+15557020004";
/** The fake says numbers ending in 0001 are not on WhatsApp. */
export const NOBODY = "+15557030001";
export const SESSION = "default";

export const chatOf = (handle: string) => `${handle.slice(1)}@c.us`;

// biome-ignore lint/suspicious/noExplicitAny: API and event payloads are checked field by field
export type Json = Record<string, any>;

export interface WahaRig {
  t: TestApp;
  fake: FakeWaha;
  account: SeededAccount;
  numberId: string;
  /** The number's stored WAHA settings (its ingest secret). */
  settings: WahaConfig;
  /** A /v1 call with the account's live key. */
  call(method: string, url: string, body?: unknown): Promise<LightMyRequestResponse>;
  /** POST /v1/messages from NUMBER with the live key; asserts 202. */
  send(body: Json): Promise<Json>;
  message(id: string): Promise<Json>;
  /** Uploads one file with the live key; returns the attachment object. */
  upload(filename: string, type: string, data: Buffer): Promise<Json>;
  /** A second passes (the number's pace); sends due go out and record themselves; the fake's webhooks are answered and applied. */
  settle(): Promise<void>;
  /** Live events of a type, oldest first: their data. */
  eventsOf(type: string): Promise<Json[]>;
  /** POSTs a webhook body to the number's ingest URL as WAHA would (signed with `hmacKey` when given). */
  ingest(body: unknown, opts?: { secret?: string | null; hmac?: string }): Promise<LightMyRequestResponse>;
  /** Fake WAHA requests to a path (compared decoded: we encode the `@` of ids in paths). */
  requests(method: string, path: string): FakeWaha["requests"];
  /** The body of the last such request (asserts there was one). */
  lastBody(method: string, path: string): Json;
  /** The inbound message a fake message became. */
  received(deviceId: string): Promise<Json>;
  /** The WAHA id we recorded for one of our messages. */
  deviceIdOf(messageId: string): Promise<string | null>;
  close(): Promise<void>;
}

export async function wahaRig(config: Partial<Config> = {}): Promise<WahaRig> {
  const dir = await mkdtemp(join(tmpdir(), "mb-waha-"));
  const t = await buildTestApp({
    config: { DEVICE_SEND_TIMEOUT_MS: 5_000, ATTACHMENTS_DIR: dir, ...config },
    backends: ({ db, clock, config: c }) =>
      new Backends(new SimulatorBackend(db, clock, { deliveryMs: c.SIMULATOR_DELIVERY_MS, readMs: c.SIMULATOR_READ_MS }), { waha: new WahaBackend({ config: c }) }),
  });
  const address = await t.app.listen({ host: "127.0.0.1", port: 0 });
  t.config.PUBLIC_URL = address;
  const fake = new FakeWaha({ apiKey: "waha-test-key", now: () => t.clock.now() });
  fake.addSession(SESSION, { me: chatOf(NUMBER) });
  await fake.start();
  const account = await t.seedAccount();
  const n = await addNumber(t.db.kysely, t.clock, {
    accountId: account.id,
    handle: NUMBER,
    channels: "whatsapp",
    backend: "waha",
    settings: { url: fake.url, apiKey: fake.apiKey, session: SESSION },
  });
  const row = await t.db.kysely.selectFrom("numbers").select("backend_config").where("id", "=", n.id).executeTakeFirstOrThrow();
  const settings = (JSON.parse(row.backend_config) as { waha: WahaConfig }).waha;
  await t.app.services.devices.tick();
  // The subscription restarted the session (PUT); its STARTING/WORKING webhooks are answered.
  await fake.flushWebhooks();
  const call: WahaRig["call"] = (method, url, body) => t.call(account.liveKey, method, url, body);
  const rig: WahaRig = {
    t,
    fake,
    account,
    numberId: n.id,
    settings,
    call,
    async send(body) {
      const res = await call("POST", "/v1/messages", { from_handle: NUMBER, ...body });
      assert.equal(res.statusCode, 202, res.body);
      return res.json().data;
    },
    async message(id) {
      const res = await call("GET", `/v1/messages/${id}`);
      assert.equal(res.statusCode, 200, res.body);
      return res.json().data;
    },
    async upload(filename, type, data) {
      const boundary = "wahatestboundary";
      const payload = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`),
        data,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const res = await t.app.inject({
        method: "POST",
        url: "/v1/attachments",
        headers: { authorization: `Bearer ${account.liveKey}`, "content-type": `multipart/form-data; boundary=${boundary}` },
        payload,
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data[0];
    },
    async settle() {
      t.clock.advance(1_000);
      for (let i = 0; i < 2; i++) {
        await t.app.services.dispatcher.runUntilIdle();
        await t.app.services.dispatcher.settled();
        await fake.flushWebhooks();
      }
    },
    async eventsOf(type) {
      const rows = await t.db.kysely.selectFrom("events").select("data").where("type", "=", type).where("mode", "=", "live").orderBy("id").execute();
      return rows.map((r) => JSON.parse(r.data) as Json);
    },
    ingest(body, opts = {}) {
      const raw = JSON.stringify(body);
      const secret = opts.secret === undefined ? settings.ingestSecret : opts.secret;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (opts.hmac !== undefined) headers["x-webhook-hmac"] = createHmac("sha512", opts.hmac).update(raw).digest("hex");
      const q = secret === null ? "" : `?secret=${encodeURIComponent(secret)}`;
      return t.app.inject({ method: "POST", url: `/ingest/waha/${n.id}${q}`, headers, payload: raw });
    },
    requests(method, path) {
      return fake.requests.filter((r) => r.method === method && decodeURIComponent(r.path) === path);
    },
    lastBody(method, path) {
      const req = rig.requests(method, path).at(-1);
      assert.ok(req, `no ${method} ${path}`);
      return (req.body ?? {}) as Json;
    },
    async received(deviceId) {
      const row = await t.db.kysely.selectFrom("messages").select("id").where("device_message_id", "=", deviceId).executeTakeFirst();
      assert.ok(row, `no message for device id ${deviceId}`);
      return rig.message(row.id);
    },
    async deviceIdOf(messageId) {
      const row = await t.db.kysely.selectFrom("messages").select("device_message_id").where("id", "=", messageId).executeTakeFirstOrThrow();
      return row.device_message_id;
    },
    async close() {
      await fake.stop();
      await t.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

/** Sends a text to `to` and returns the message with its WAHA id, once sent. */
export async function sentText(r: WahaRig, to: string, text: string): Promise<{ id: string; deviceId: string; conversationId: string }> {
  const m = await r.send({ to, text });
  await r.settle();
  const row = await r.message(m.id);
  assert.equal(row.status, "sent", JSON.stringify(row));
  const onDevice = r.fake.sent.filter((s) => s.body === text);
  assert.equal(onDevice.length, 1, `one copy of "${text}" on WhatsApp`);
  const deviceId = onDevice[0]?.id ?? "";
  assert.equal(await r.deviceIdOf(m.id), deviceId, "we recorded WAHA's id");
  return { id: m.id, deviceId, conversationId: m.conversation_id };
}
