/**
 * The messaging app on a real BlueBubbles back-end, talking HTTP to the local fake Mac
 * (fakes/bluebubbles): the app listens on 127.0.0.1 so the fake's webhooks reach its ingest URL.
 */
import assert from "node:assert/strict";
import { BlueBubblesBackend } from "../src/backends/bluebubbles/backend.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import type { Config } from "../src/config.js";
import { addNumber } from "../src/numbers/store.js";
import { FakeBlueBubbles } from "../fakes/bluebubbles/server.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";

export const NUMBER = "+15557010001";
export const ALICE = "+15557010002";
export const BOB = "+15557010003";

export interface BlueBubblesRig {
  t: TestApp;
  fake: FakeBlueBubbles;
  account: SeededAccount;
  numberId: string;
  /** POST /v1/messages with the live key; asserts 202 and returns the message. */
  send(body: Record<string, unknown>): Promise<{ id: string; status: string; conversation_id: string }>;
  message(id: string): Promise<Record<string, unknown> & { status: string }>;
  /** A second passes; the dispatcher sends what is due; the fake's webhooks are answered and applied. */
  settle(): Promise<void>;
  eventsOf(type: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function blueBubblesRig(config: Partial<Config> = {}): Promise<BlueBubblesRig> {
  const t = await buildTestApp({
    config: { DEVICE_SEND_TIMEOUT_MS: 5_000, ...config },
    backends: ({ db, clock, config: c }) =>
      new Backends(new SimulatorBackend(db, clock, { deliveryMs: c.SIMULATOR_DELIVERY_MS, readMs: c.SIMULATOR_READ_MS }), { bluebubbles: new BlueBubblesBackend({ config: c, clock }) }),
  });
  const address = await t.app.listen({ host: "127.0.0.1", port: 0 });
  t.config.PUBLIC_URL = address;
  const fake = new FakeBlueBubbles({ now: () => t.clock.now() });
  await fake.start();
  const account = await t.seedAccount();
  const n = await addNumber(t.db.kysely, t.clock, { accountId: account.id, handle: NUMBER, channels: "imessage,sms", backend: "bluebubbles", settings: { url: fake.url, password: fake.password } });
  await t.app.services.devices.tick();
  const rig: BlueBubblesRig = {
    t,
    fake,
    account,
    numberId: n.id,
    async send(body) {
      const res = await t.call(account.liveKey, "POST", "/v1/messages", { from_handle: NUMBER, ...body });
      assert.equal(res.statusCode, 202, res.body);
      return res.json().data;
    },
    async message(id) {
      const res = await t.call(account.liveKey, "GET", `/v1/messages/${id}`);
      assert.equal(res.statusCode, 200, res.body);
      return res.json().data;
    },
    async settle() {
      t.clock.advance(1_000); // the number's pace (1/s) lets its next message go
      await t.app.services.dispatcher.runUntilIdle();
      await t.app.services.dispatcher.settled();
      await fake.flushWebhooks();
      await t.app.services.dispatcher.runUntilIdle();
    },
    async eventsOf(type) {
      const rows = await t.db.kysely.selectFrom("events").select("data").where("type", "=", type).where("mode", "=", "live").orderBy("id").execute();
      return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
    },
    async close() {
      await fake.stop();
      await t.close();
    },
  };
  return rig;
}
