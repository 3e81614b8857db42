/**
 * FUZZ-P06: a model of messages (send, edit, react, retry, unsend, time passing) and webhook
 * endpoints (create, get, patch, delete, list), and the `fc.commands` that hold the server to it.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { SIM } from "../src/backends/simulator.js";
import { TAPBACKS } from "../src/messages/schemas.js";
import type { TestApp } from "./helpers.js";
import { elapse } from "./messaging-helpers.js";

// ───────────────────────────── P06: stateful model ─────────────────────────────

type Status = "scheduled" | "queued" | "sending" | "sent" | "delivered" | "read" | "failed" | "canceled";
const RANK: Partial<Record<Status, number>> = { scheduled: 0, queued: 1, sending: 2, sent: 3, delivered: 4, read: 5 };

interface MMessage {
  id: string;
  to: string;
  status: Status;
  channel: string | null;
  sentAt: number | null;
  text: string | null;
  unsent: boolean;
  edits: number;
  reactions: Set<string>;
}

interface MHook {
  id: string;
  url: string;
  events: string[] | null;
  enabled: boolean;
  deleted: boolean;
}

interface Model {
  messages: MMessage[];
  hooks: MHook[];
}

interface Real {
  t: TestApp;
  key: string;
  from: string;
}

interface WireMessage {
  id: string;
  status: Status;
  channel: string | null;
  text: string | null;
  sent_at: string | null;
  edited_at: string | null;
  unsent_at: string | null;
  to: string;
  from_handle: string;
  reactions: { reaction: string; handle: string }[];
}

interface WireHook {
  id: string;
  url: string;
  events: string[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  secret?: string;
}

const MIN = 60_000;
type Cmd = fc.AsyncCommand<Model, Real, false>;

/** Commands run, by name: the model run reports what it exercised. */
export const ran = new Map<string, number>();
const count = (cmd: Cmd) => {
  const name = String(cmd).replace(/\(.*$/, "");
  ran.set(name, (ran.get(name) ?? 0) + 1);
};

/** Outcomes seen by the model run, e.g. "Edit→200". */
export const outcomes = new Map<string, number>();

function expectStatus(res: LightMyRequestResponse, status: number, what: string, code?: string): void {
  const key = `${what.replace(/\(.*$/, "")}→${res.statusCode}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  assert.equal(res.statusCode, status, `${what}: expected ${status}${code ? ` ${code}` : ""}, got ${res.statusCode} ${res.body}`);
  if (code) assert.equal((res.json() as { error?: string }).error, code, `${what}: ${res.body}`);
}

const pick = <T>(xs: T[], n: number): T => xs[n % xs.length] as T;

class Send implements Cmd {
  constructor(readonly to: string, readonly text: string, readonly laterMs: number | null, readonly idem: boolean) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const body: Record<string, unknown> = { from_handle: r.from, to: this.to, text: this.text };
    if (this.laterMs !== null) body.send_at = new Date(r.t.clock.now() + this.laterMs).toISOString();
    const headers: Record<string, string> = this.idem ? { "idempotency-key": `send-${r.t.clock.now()}-${m.messages.length}` } : {};
    const res = await r.t.call(r.key, "POST", "/v1/messages", body, headers);
    expectStatus(res, 202, String(this));
    const msg = (res.json() as { data: WireMessage }).data;
    assert.equal(msg.status, this.laterMs !== null && this.laterMs > 0 ? "scheduled" : "queued");
    assert.equal(msg.text, this.text);
    if (this.idem) {
      const again = await r.t.call(r.key, "POST", "/v1/messages", body, headers);
      expectStatus(again, 200, `${this} replayed`);
      assert.equal(again.headers["idempotent-replayed"], "true");
      assert.equal((again.json() as { data: WireMessage }).data.id, msg.id, "a replay made another message");
    }
    m.messages.push({ id: msg.id, to: this.to, status: msg.status, channel: null, sentAt: null, text: this.text, unsent: false, edits: 0, reactions: new Set() });
  }
  toString = () => `Send(${this.to}, ${JSON.stringify(this.text)}${this.laterMs !== null ? `, +${this.laterMs}ms` : ""}${this.idem ? ", idem" : ""})`;
}

/** Time passes: the engine runs, then every message is read back and held to the model. */
class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await elapse(r.t, this.ms, Math.max(250, Math.ceil(this.ms / 12)));
    const res = await r.t.call(r.key, "GET", "/v1/messages?direction=outbound&limit=100");
    expectStatus(res, 200, "list messages");
    const listed = (res.json() as { data: WireMessage[] }).data;
    assert.deepEqual(listed.map((x) => x.id).sort(), m.messages.map((x) => x.id).sort(), "the list is not exactly the messages sent");
    const byId = new Map(listed.map((x) => [x.id, x]));
    for (const mm of m.messages) {
      const now = byId.get(mm.id) as WireMessage;
      assertForward(mm, now.status);
      // The simulator's scripts (api.md §5): what each recipient can and cannot reach.
      if (mm.to === SIM.fails) assert.ok(!["sent", "delivered", "read"].includes(now.status), `${mm.to} got ${now.status}`);
      if (mm.to === SIM.neverDelivered) assert.ok(!["delivered", "read"].includes(now.status), `${mm.to} got ${now.status}`);
      if (mm.to === SIM.smsOnly) {
        assert.notEqual(now.status, "read", "SMS has no read receipts");
        if (now.channel !== null) assert.equal(now.channel, "sms");
      }
      if (now.status === "failed" && mm.to === SIM.fails) assert.equal((now as unknown as { error: { code: string } }).error.code, "undeliverable");
      assert.equal(now.text, mm.unsent ? null : mm.text, `text of ${mm.id}`);
      mm.status = now.status;
      mm.channel = now.channel;
      mm.sentAt = now.sent_at ? Date.parse(now.sent_at) : null;
    }
  }
  toString = () => `Advance(${this.ms}ms)`;
}

function assertForward(mm: MMessage, next: Status): void {
  const prev = mm.status;
  if (prev === next) return;
  const a = RANK[prev];
  const b = RANK[next];
  const ok = (a !== undefined && b !== undefined && b > a) || (next === "failed" && a !== undefined) || (next === "canceled" && (prev === "queued" || prev === "scheduled"));
  assert.ok(ok, `message ${mm.id} to ${mm.to} moved back: ${prev} → ${next}`);
}

class Edit implements Cmd {
  constructor(readonly n: number, readonly text: string) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "PATCH", `/v1/messages/${mm.id}`, { text: this.text });
    const local = mm.status === "queued" || mm.status === "scheduled";
    const onDevice = ["sent", "delivered", "read"].includes(mm.status) && !mm.unsent && mm.channel !== "sms" &&
      r.t.clock.now() - (mm.sentAt ?? 0) <= 15 * MIN && mm.edits < 5;
    if (!local && !onDevice) return expectStatus(res, 409, `${this} of a ${mm.status}${mm.unsent ? " unsent" : ""} ${mm.channel} message`, "conflict");
    expectStatus(res, 200, `${this} of a ${mm.status} message`);
    const data = (res.json() as { data: WireMessage }).data;
    assert.equal(data.text, this.text);
    assert.equal(data.status, mm.status, "an edit changed the status");
    assert.equal(data.edited_at !== null, onDevice || mm.edits > 0, "edited_at");
    mm.text = this.text;
    if (onDevice) mm.edits++;
  }
  toString = () => `Edit(#${this.n}, ${JSON.stringify(this.text)})`;
}

class Unsend implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "DELETE", `/v1/messages/${mm.id}`);
    if (mm.status === "queued" || mm.status === "scheduled") {
      expectStatus(res, 200, `${this} of a ${mm.status} message`);
      assert.equal((res.json() as { data: WireMessage }).data.status, "canceled");
      mm.status = "canceled";
      return;
    }
    const can = ["sent", "delivered", "read"].includes(mm.status) && !mm.unsent && mm.channel !== "sms" &&
      (mm.channel !== "imessage" || r.t.clock.now() - (mm.sentAt ?? 0) <= 2 * MIN);
    if (!can) return expectStatus(res, 409, `${this} of a ${mm.status}${mm.unsent ? " unsent" : ""} ${mm.channel} message`, "conflict");
    expectStatus(res, 200, `${this} of a ${mm.status} message`);
    const data = (res.json() as { data: WireMessage }).data;
    assert.ok(data.unsent_at, "unsent_at");
    assert.equal(data.text, null);
    assert.equal(data.status, mm.status, "an unsend changed the status");
    mm.unsent = true;
  }
  toString = () => `Unsend(#${this.n})`;
}

class React implements Cmd {
  constructor(readonly n: number, readonly reaction: string, readonly remove: boolean) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "POST", `/v1/messages/${mm.id}/reactions`, { reaction: this.reaction, remove: this.remove });
    const what = `${this} on a ${mm.status}${mm.unsent ? " unsent" : ""} ${mm.channel} message`;
    if (mm.unsent || mm.channel === "sms" || (mm.status !== "delivered" && mm.status !== "read")) return expectStatus(res, 409, what, "conflict");
    if (!(TAPBACKS as readonly string[]).includes(this.reaction)) return expectStatus(res, 400, what, "invalid_request");
    expectStatus(res, 200, what);
    if (this.remove) mm.reactions.delete(this.reaction);
    else mm.reactions.add(this.reaction);
    const ours = (res.json() as { data: WireMessage }).data.reactions.filter((x) => x.handle === r.from).map((x) => x.reaction).sort();
    assert.deepEqual(ours, [...mm.reactions].sort(), `${what}: our reactions`);
  }
  toString = () => `React(#${this.n}, ${this.reaction}${this.remove ? ", remove" : ""})`;
}

class Retry implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.messages.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const mm = pick(m.messages, this.n);
    const res = await r.t.call(r.key, "POST", `/v1/messages/${mm.id}/retry`);
    if (mm.status !== "failed") return expectStatus(res, 409, `${this} of a ${mm.status} message`, "conflict");
    expectStatus(res, 202, String(this));
    assert.equal((res.json() as { data: WireMessage }).data.status, "queued");
    mm.status = "queued";
  }
  toString = () => `Retry(#${this.n})`;
}

const HOOK_URLS = ["https://hooks.example.com/a", "http://api.example.com:8080/in?x=1", "https://HOOKS.example.com/%7Eb", "https://bad.example.net/x", "http://10.0.0.1/"];
const EVENTS = ["message.sent", "message.delivered", "message.failed", "message.received", "webhook.test"];
const normalUrl = (u: string) => new URL(u).href;
const refused = (u: string) => u.includes("example.net") || u.includes("10.0.0.1");

function assertHook(got: WireHook, h: MHook, what: string): void {
  assert.equal(got.id, h.id, what);
  assert.equal(got.url, h.url, `${what}: url`);
  assert.deepEqual(got.events, h.events, `${what}: events`);
  assert.equal(got.enabled, h.enabled, `${what}: enabled`);
  assert.equal(got.disabled_reason, h.enabled ? null : "manual", `${what}: disabled_reason`);
}

class HookCreate implements Cmd {
  constructor(readonly url: string, readonly events: string[] | null) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await r.t.call(r.key, "POST", "/v1/webhooks", { url: this.url, ...(this.events ? { events: this.events } : {}) });
    if (refused(this.url)) return expectStatus(res, 400, String(this), "invalid_url");
    expectStatus(res, 201, String(this));
    const got = (res.json() as { data: WireHook }).data;
    assert.match(String(got.secret), /^whsec_/);
    const h: MHook = { id: got.id, url: normalUrl(this.url), events: this.events ? [...new Set(this.events)] : null, enabled: true, deleted: false };
    assertHook(got, h, String(this));
    m.hooks.push(h);
  }
  toString = () => `HookCreate(${this.url}, ${JSON.stringify(this.events)})`;
}

class HookGet implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.hooks.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const h = pick(m.hooks, this.n);
    const res = await r.t.call(r.key, "GET", `/v1/webhooks/${h.id}`);
    if (h.deleted) return expectStatus(res, 404, `${this} of a deleted endpoint`, "not_found");
    expectStatus(res, 200, String(this));
    const got = (res.json() as { data: WireHook }).data;
    assert.equal(got.secret, undefined, "a read shows the secret");
    assertHook(got, h, String(this));
  }
  toString = () => `HookGet(#${this.n})`;
}

class HookPatch implements Cmd {
  constructor(readonly n: number, readonly changes: { url?: string; events?: string[] | null; enabled?: boolean }) {}
  check = (m: Readonly<Model>) => m.hooks.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const h = pick(m.hooks, this.n);
    const res = await r.t.call(r.key, "PATCH", `/v1/webhooks/${h.id}`, this.changes);
    if (this.changes.url !== undefined && refused(this.changes.url)) return expectStatus(res, 400, String(this), "invalid_url");
    if (h.deleted) return expectStatus(res, 404, `${this} of a deleted endpoint`, "not_found");
    expectStatus(res, 200, String(this));
    if (this.changes.url !== undefined) h.url = normalUrl(this.changes.url);
    if (this.changes.events !== undefined) h.events = this.changes.events ? [...new Set(this.changes.events)] : null;
    if (this.changes.enabled !== undefined) h.enabled = this.changes.enabled;
    assertHook((res.json() as { data: WireHook }).data, h, String(this));
  }
  toString = () => `HookPatch(#${this.n}, ${JSON.stringify(this.changes)})`;
}

class HookDelete implements Cmd {
  constructor(readonly n: number) {}
  check = (m: Readonly<Model>) => m.hooks.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const h = pick(m.hooks, this.n);
    const res = await r.t.call(r.key, "DELETE", `/v1/webhooks/${h.id}`);
    if (h.deleted) return expectStatus(res, 404, `${this} of a deleted endpoint`, "not_found");
    expectStatus(res, 200, String(this));
    h.deleted = true;
    const gone = await r.t.call(r.key, "GET", `/v1/webhooks/${h.id}`);
    expectStatus(gone, 404, "GET after DELETE", "not_found");
  }
  toString = () => `HookDelete(#${this.n})`;
}

class HookList implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const res = await r.t.call(r.key, "GET", "/v1/webhooks?limit=100");
    expectStatus(res, 200, "list webhooks");
    const got = (res.json() as { data: WireHook[] }).data;
    const live = m.hooks.filter((h) => !h.deleted).reverse();
    assert.deepEqual(got.map((x) => x.id), live.map((h) => h.id), "the list is not the live endpoints, newest first");
    got.forEach((g, i) => {
      assert.equal(g.secret, undefined, "a list shows secrets");
      assertHook(g, live[i] as MHook, "listed");
    });
  }
  toString = () => "HookList";
}

const MODEL_RECIPIENTS = [SIM.smsOnly, SIM.fails, SIM.neverDelivered, SIM.echoes, SIM.reactsLove, SIM.typesThenReplies, "+15557779999", "+15557779998"];
const text = fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" });
export const commands = [
  fc.tuple(fc.constantFrom(...MODEL_RECIPIENTS), text, fc.option(fc.constantFrom(0, 1500, 3 * 86_400_000), { freq: 4 }), fc.boolean()).map(([to, tx, later, idem]) => new Send(to, tx, later, idem)),
  fc.constantFrom(300, 1000, 2500, 10_000, 2 * MIN).map((ms) => new Advance(ms)),
  fc.tuple(fc.nat(), text).map(([n, tx]) => new Edit(n, tx)),
  fc.nat().map((n) => new Unsend(n)),
  fc.tuple(fc.nat(), fc.constantFrom(...TAPBACKS, "👍", "nope"), fc.boolean()).map(([n, re, rm]) => new React(n, re, rm)),
  fc.nat().map((n) => new Retry(n)),
  fc.tuple(fc.constantFrom(...HOOK_URLS), fc.option(fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 4 }), { nil: null })).map(([u, e]) => new HookCreate(u, e)),
  fc.nat().map((n) => new HookGet(n)),
  fc.tuple(
    fc.nat(),
    fc.record(
      { url: fc.constantFrom(...HOOK_URLS), events: fc.option(fc.array(fc.constantFrom(...EVENTS), { minLength: 1, maxLength: 3 }), { nil: null }), enabled: fc.boolean() },
      { requiredKeys: [] },
    ),
  ).map(([n, c]) => new HookPatch(n, c)),
  fc.nat().map((n) => new HookDelete(n)),
  fc.constant(new HookList()),
];

/** The command, counted when it runs (check() passed). */
export function counted(cmd: Cmd): Cmd {
  return { check: (m) => cmd.check(m), run: async (m, r) => { count(cmd); await cmd.run(m, r); }, toString: () => String(cmd) };
}
