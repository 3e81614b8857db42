/**
 * Shared pieces of the messaging tests (messages, lifecycle, actions, chats, lookup): an app with
 * an account and a simulator number, a send that asserts its 202, time driven through the
 * ManualClock and the dispatcher (never sleeps), and readers of the `events` table.
 */
import assert from "node:assert/strict";
import type { LightMyRequestResponse } from "fastify";
import { SIM } from "../src/backends/simulator.js";
import type { Mode } from "../src/db/schema.js";
import type { ErrorCode } from "../src/errors.js";
import type { Message } from "../src/messages/schemas.js";
import { buildTestApp, type SeededAccount, type TestApp, type TestAppOptions } from "./helpers.js";

export { SIM };
export type { Message };

/** The account's sending number (iMessage + SMS) and a second account's (iMessage only). */
export const FROM = "+15557770001";
export const OTHER_FROM = "+15557770002";
/** A recipient with no script: an iMessage user that gets the message, then reads it. */
export const ANYONE = "+15557779999";

export const SEC = 1_000;
export const MIN = 60 * SEC;

export interface Messaging {
  t: TestApp;
  acct: SeededAccount;
  other: SeededAccount;
  /** POST /v1/messages; asserts 202 and returns the message. */
  send(body: Record<string, unknown>, key?: string): Promise<Message>;
  /** GET /v1/messages/:id with the account's test key (or `key`); asserts 200. */
  get(id: string, key?: string): Promise<Message>;
  /** Sets the simulated device of a number online or offline; asserts 200. */
  setStatus(handle: string, status: "online" | "offline"): Promise<void>;
  close(): Promise<void>;
}

/** An app with an account ("Acme", number FROM) and another account ("Other", number OTHER_FROM). */
export async function messagingApp(opts: TestAppOptions = {}): Promise<Messaging> {
  const t = await buildTestApp(opts);
  const acct = await t.seedAccount("Acme");
  const other = await t.seedAccount("Other");
  await t.addNumber(acct.id, FROM, "imessage,sms");
  await t.addNumber(other.id, OTHER_FROM, "imessage");
  return {
    t,
    acct,
    other,
    async send(body, key = acct.testKey) {
      const res = await t.call(key, "POST", "/v1/messages", body);
      assert.equal(res.statusCode, 202, res.body);
      return res.json().data as Message;
    },
    async get(id, key = acct.testKey) {
      const res = await t.call(key, "GET", `/v1/messages/${id}`);
      assert.equal(res.statusCode, 200, res.body);
      return res.json().data as Message;
    },
    async setStatus(handle, status) {
      const res = await t.call(acct.testKey, "POST", `/v1/test_helpers/numbers/${handle}/status`, { status });
      assert.equal(res.statusCode, 200, res.body);
    },
    close: () => t.close(),
  };
}

/** Asserts the error envelope and code; returns the body. */
export function assertError(res: LightMyRequestResponse, status: number, code: ErrorCode, label = ""): { error: string; message: string; request_id: string } {
  assert.equal(res.statusCode, status, `${label ? `${label}: ` : ""}expected ${status} ${code}, got ${res.statusCode}: ${res.body}`);
  const body = res.json();
  assert.deepEqual(Object.keys(body), ["error", "message", "request_id"]);
  assert.equal(body.error, code, `${label} ${res.body}`);
  assert.equal(body.request_id, res.headers["x-request-id"]);
  return body;
}

/** Runs the dispatcher until idle, then advances the clock by `step`, until `done` holds. */
export async function advanceUntil(t: TestApp, done: () => Promise<boolean> | boolean, opts: { step?: number; maxMs?: number; what?: () => Promise<string> } = {}): Promise<void> {
  const { step = 100, maxMs = 10 * MIN } = opts;
  for (let waited = 0; ; waited += step) {
    await t.app.services.dispatcher.runUntilIdle();
    if (await done()) return;
    if (waited >= maxMs) assert.fail(`not reached within ${maxMs} ms of simulated time: ${opts.what ? await opts.what() : "condition"}`);
    t.clock.advance(step);
  }
}

/** Lets `ms` of simulated time pass in `step`s, running the dispatcher at every step. */
export async function elapse(t: TestApp, ms: number, step = 100): Promise<void> {
  for (let waited = 0; waited < ms; waited += step) {
    await t.app.services.dispatcher.runUntilIdle();
    t.clock.advance(Math.min(step, ms - waited));
  }
  await t.app.services.dispatcher.runUntilIdle();
}

/** The message row's status, read straight from the database. */
export async function statusOf(t: TestApp, id: string): Promise<string | undefined> {
  return (await t.db.kysely.selectFrom("messages").select("status").where("id", "=", id).executeTakeFirst())?.status;
}

/** Advances until the message reaches `status` (and fails when it ends elsewhere). */
export async function untilStatus(t: TestApp, id: string, status: string, maxMs = 10 * MIN, step = 100): Promise<void> {
  await advanceUntil(t, async () => (await statusOf(t, id)) === status, { maxMs, step, what: async () => `message ${id} ${status} (is ${await statusOf(t, id)})` });
}

export interface EventRecord {
  type: string;
  mode: Mode;
  created_at: string;
  // biome-ignore lint/suspicious/noExplicitAny: event payloads are checked field by field
  data: any;
}

/** The account's event rows in the order they were written. */
export async function eventsOf(t: TestApp, accountId: string, mode: Mode = "test"): Promise<EventRecord[]> {
  const rows = await t.db.kysely.selectFrom("events").selectAll().where("account_id", "=", accountId).where("mode", "=", mode).orderBy("id").execute();
  return rows.map((r) => ({ type: r.type, mode: r.mode, created_at: r.created_at, data: JSON.parse(r.data) }));
}

/** The message events (message.*) about one message id, as [type, status] pairs. */
export async function messageEvents(t: TestApp, accountId: string, messageId: string): Promise<EventRecord[]> {
  return (await eventsOf(t, accountId)).filter((e) => e.type.startsWith("message.") && (e.data.id === messageId || e.data.message_id === messageId));
}

/** The simulator's device history rows of one message (what the "device" actually sent). */
export async function historyOf(t: TestApp, messageId: string) {
  return t.db.kysely.selectFrom("simulator_history").selectAll().where("message_id", "=", messageId).execute();
}

/** The documented message object fields, in order (api.md §5 "Message object"). */
export const MESSAGE_FIELDS = [
  "id", "conversation_id", "direction", "status", "channel", "text", "effect", "reply_to", "error", "metadata", "attachments",
  "sent_at", "delivered_at", "read_at",
  "from_handle", "to", "voice_memo", "send_at", "edited_at", "unsent_at", "reactions", "created_at", "updated_at",
];

/** The documented chat object fields, in order (api.md §5 "Conversations"). */
export const CHAT_FIELDS = ["id", "from_handle", "remote_handle", "is_group", "title", "last_message_at", "created_at", "updated_at", "participants", "channel"];

export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const iso = (ms: number) => new Date(ms).toISOString();
