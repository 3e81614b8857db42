/**
 * A seeded "world" for the fuzzer (two accounts × two modes with messages, chats, webhooks,
 * deliveries and attachments) whose ids the generators draw on.
 */
import assert from "node:assert/strict";
import type { LightMyRequestResponse } from "fastify";
import { SIM } from "../src/backends/simulator.js";
import type { Mode } from "../src/db/schema.js";
import { multipart } from "./attachment-support.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { elapse } from "./messaging-helpers.js";

// ───────────────────────────── the world ─────────────────────────────

export interface Resources {
  message: string[];
  failedMessage: string[];
  chat: string[];
  group: string[];
  webhook: string[];
  delivery: string[];
  attachment: string[];
  /** Uploaded and not yet used by a message. */
  freeAttachment: string[];
  participant: string[];
  /** Deliveries with their webhook: { id, delivery_id }. */
  hookDelivery: { id: string; delivery_id: string }[];
  /** Signed URL queries (expires, signature) of the attachments. */
  signed: { id: string; expires: string; signature: string }[];
}

const emptyResources = (): Resources => ({
  message: [], failedMessage: [], chat: [], group: [], webhook: [], delivery: [], attachment: [], freeAttachment: [], participant: [], hookDelivery: [], signed: [],
});

export interface Owner {
  acct: SeededAccount;
  mode: Mode;
  key: string;
  numbers: string[];
  res: Resources;
}

export interface World {
  t: TestApp;
  a: SeededAccount;
  b: SeededAccount;
  /** Account A's test and live sides: the fuzzer's callers. */
  own: Record<Mode, Owner>;
  /** Account B (both modes): resources no A key may see, and that nothing mutates. */
  foreign: Owner[];
  /** Lower-cased ids of B's resources, and of A's in each mode. */
  idsOf(owners: Owner[]): Set<string>;
}

export const A_NUMBERS = ["+15557770101", "+15557770102"];
export const B_NUMBERS = ["+15557770201"];
/** Recipients: the simulator's scripted ones and an ordinary iMessage user. */
export const RECIPIENTS = [SIM.smsOnly, SIM.fails, SIM.neverDelivered, SIM.echoes, SIM.reactsLove, SIM.typesThenReplies, "+15557779999", "bob@example.com"];

async function ok2xx(res: LightMyRequestResponse, what: string): Promise<Record<string, unknown>> {
  assert.ok(res.statusCode >= 200 && res.statusCode < 300, `seeding ${what}: ${res.statusCode} ${res.body}`);
  return (res.json() as { data: Record<string, unknown> }).data;
}

/** Gives an owner (account, mode) messages in several states, a 1:1 chat and a group, a webhook with a delivery, and attachments. */
async function seedOwner(t: TestApp, o: Owner): Promise<void> {
  const from = o.numbers[0] as string;
  const sendTo = async (to: string, text: string) => {
    const m = await ok2xx(await t.call(o.key, "POST", "/v1/messages", { from_handle: from, to, text }), `a message to ${to}`);
    o.res.message.push(String(m.id));
    if (!o.res.chat.includes(String(m.conversation_id))) o.res.chat.push(String(m.conversation_id));
    return m;
  };
  await sendTo("+15557779999", "hello");
  await sendTo(SIM.smsOnly, "sms");
  o.res.failedMessage.push(String((await sendTo(SIM.fails, "fails")).id));
  await sendTo(SIM.neverDelivered, "pending");
  const queuedLater = await ok2xx(await t.call(o.key, "POST", "/v1/messages", { from_handle: from, to: "+15557779998", text: "later", send_at: new Date(t.clock.now() + 86_400_000).toISOString() }), "a scheduled message");
  o.res.message.push(String(queuedLater.id));
  const members = ["+15557778881", "+15557778882"];
  const group = await ok2xx(await t.call(o.key, "POST", "/v1/chats", { from_handle: from, addresses: members, message: { text: "group hi" }, title: "Fuzz group" }), "a group");
  o.res.group.push(String(group.id));
  o.res.chat.push(String(group.id));
  o.res.participant.push(...members);
  const hook = await ok2xx(await t.call(o.key, "POST", "/v1/webhooks", { url: "https://hooks.example.com/fuzz" }), "a webhook");
  o.res.webhook.push(String(hook.id));
  const delivery = await ok2xx(await t.call(o.key, "POST", `/v1/webhooks/${hook.id}/test`, {}), "a test delivery");
  o.res.delivery.push(String(delivery.id));
  o.res.hookDelivery.push({ id: String(hook.id), delivery_id: String(delivery.id) });
  for (const name of ["a.txt", "b.txt", "c.txt"]) {
    const body = multipart([{ filename: name, type: "text/plain", data: Buffer.from(`file ${name}`) }]);
    const res = await t.app.inject({ method: "POST", url: "/v1/attachments", headers: { authorization: `Bearer ${o.key}`, ...body.headers }, payload: body.payload });
    const [att] = (await ok2xx(res, "an attachment")) as unknown as { id: string; url: string }[];
    assert.ok(att);
    o.res.attachment.push(att.id);
    o.res.freeAttachment.push(att.id);
    const u = new URL(att.url);
    o.res.signed.push({ id: att.id, expires: u.searchParams.get("expires") ?? "", signature: u.searchParams.get("signature") ?? "" });
  }
  const presigned = await ok2xx(await t.call(o.key, "POST", "/v1/attachments/presign", { filename: "p.bin", content_type: "application/octet-stream" }), "a presigned attachment");
  o.res.attachment.push(String(presigned.id));
  if (o.mode === "test") {
    const inbound = await ok2xx(await t.call(o.key, "POST", "/v1/test_helpers/inbound", { from_handle: from, remote_handle: "+15557776666", text: "hi there" }), "an inbound message");
    o.res.message.push(String(inbound.id));
    o.res.chat.push(String(inbound.conversation_id));
  }
}

/** Accounts A and B with numbers, and resources on each side (both modes); time moved on so messages reach their states. */
export async function seedWorld(t: TestApp): Promise<World> {
  const a = await t.seedAccount("Fuzz A");
  const b = await t.seedAccount("Fuzz B");
  await t.addNumber(a.id, A_NUMBERS[0] as string, "imessage,sms");
  await t.addNumber(a.id, A_NUMBERS[1] as string, "whatsapp");
  await t.addNumber(b.id, B_NUMBERS[0] as string, "imessage,sms");
  const owner = (acct: SeededAccount, mode: Mode, numbers: string[]): Owner => ({ acct, mode, key: mode === "test" ? acct.testKey : acct.liveKey, numbers, res: emptyResources() });
  const own = { test: owner(a, "test", A_NUMBERS), live: owner(a, "live", A_NUMBERS) };
  const foreign = [owner(b, "test", B_NUMBERS), owner(b, "live", B_NUMBERS)];
  for (const o of [own.test, own.live, ...foreign]) await seedOwner(t, o);
  await elapse(t, 10_000, 1_000);
  return {
    t,
    a,
    b,
    own,
    foreign,
    idsOf(owners) {
      const ids = new Set<string>();
      for (const o of owners) {
        for (const kind of ["message", "chat", "webhook", "delivery", "attachment"] as const) for (const v of o.res[kind]) ids.add(v.toLowerCase());
      }
      return ids;
    },
  };
}

/** Adds what a successful request created to the caller's pools (and takes out a deleted webhook). */
export function track(w: World, mode: Mode, opId: string, path: Record<string, string>, data: unknown): void {
  const res = w.own[mode].res;
  const one = (data ?? {}) as { id?: string; conversation_id?: string };
  const push = (xs: string[], v: string | undefined) => {
    if (v && !xs.includes(v)) xs.push(v);
  };
  switch (opId) {
    case "POST /v1/messages":
    case "POST /v1/test_helpers/inbound":
      push(res.message, one.id);
      push(res.chat, one.conversation_id);
      break;
    case "POST /v1/chats":
      push(res.group, one.id);
      push(res.chat, one.id);
      break;
    case "POST /v1/webhooks":
      push(res.webhook, one.id);
      break;
    case "DELETE /v1/webhooks/{id}": {
      const i = res.webhook.indexOf(String(path.id).toLowerCase());
      if (i >= 0) res.webhook.splice(i, 1);
      break;
    }
    case "POST /v1/webhooks/{id}/test":
      push(res.delivery, one.id);
      if (one.id && path.id) res.hookDelivery.push({ id: path.id, delivery_id: one.id });
      break;
    case "POST /v1/attachments/presign":
      push(res.attachment, one.id);
      break;
    case "POST /v1/attachments":
      for (const a of Array.isArray(data) ? (data as { id: string }[]) : []) {
        push(res.attachment, a.id);
        push(res.freeAttachment, a.id);
      }
      break;
  }
}

/** Every id in the world (lower case) that the caller in `mode` must not see. */
export function foreignIds(w: World, mode: Mode): Set<string> {
  return w.idsOf([...w.foreign, w.own[mode === "test" ? "live" : "test"]]);
}
