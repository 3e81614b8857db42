/**
 * Pieces of the security suite (test/security-*.test.ts): resources made through the public API for
 * the cross-account matrix, the routes' valid bodies and the fields no client may set, a dump of
 * the database to prove a refused request changed nothing, raw sockets for the slow-client tests,
 * the SSRF URL table, and a spy on crypto.timingSafeEqual.
 *
 * The suite is reliability.md §5 (OWASP API Security Top 10 2023 mapped to MsgBubbles), one test or
 * more per SEC-T01…T25, one file per kind of attack. Where another file already owns a property,
 * the security test re-asserts its essence and names that file; the full mapping is the list below.
 *
 * SEC-T01 BOLA by path id ............ security-access.test.ts (+ auth-contract.test.ts: every route × every key kind)
 * SEC-T02 BOLA by id inside a body ... security-access.test.ts (+ messages.test.ts, attachments-send.test.ts)
 * SEC-T03 idempotency across accounts  security-access.test.ts (+ idempotency.test.ts IDEM-T12)
 * SEC-T04 uniform 401 ................ security-keys.test.ts (+ auth-contract.ts)
 * SEC-T05 ?api_key= refused .......... security-keys.test.ts (+ edge.test.ts)
 * SEC-T06 no keys/secrets in logs .... security-keys.test.ts (+ edge.test.ts)
 * SEC-T07 only a hash at rest ........ security-keys.test.ts (+ edge.test.ts); constant-time comparison there only
 * SEC-T08 mass assignment ............ security-exposure.test.ts (+ messages.test.ts)
 * SEC-T09 no excess exposure ......... security-exposure.test.ts
 * SEC-T10 webhook secret never read .. security-exposure.test.ts (+ webhooks-endpoints.test.ts WH-R1)
 * SEC-T11 body limit 413 ............. security-limits.test.ts (+ edge.test.ts)
 * SEC-T12 upload limit 413 ........... security-limits.test.ts (+ attachments.test.ts)
 * SEC-T13 type by magic bytes ........ security-limits.test.ts (+ attachments.test.ts)
 * SEC-T14 pagination caps ............ security-limits.test.ts (+ messages-list.test.ts)
 * SEC-T15 slow clients cut off ....... security-limits.test.ts (a listening server); the defaults in security-config.test.ts
 * SEC-T16 multipart part count ....... security-limits.test.ts (+ attachments.test.ts)
 * SEC-T17 test keys never touch live . security-functions.test.ts and security-access.test.ts (+ chats.test.ts, lifecycle.test.ts)
 * SEC-T18 405 + Allow everywhere ..... security-functions.test.ts (+ edge.test.ts)
 * SEC-T19 mass-sending limits ........ security-functions.test.ts (+ dispatch-pacing.test.ts PACE-T04), daily cap included
 * SSRF (API7; WH-T13…T21) ............ security-ssrf.test.ts: webhook url on POST and PATCH, presign, device ingest
 *                                      (+ webhooks-endpoints.test.ts, webhooks-ssrf.test.ts WH-T15…T18)
 * SEC-T20 5xx carry no internals ..... security-config.test.ts (+ edge.test.ts), including a device's error text in a 502
 * SEC-T21 one envelope, every status . security-config.test.ts; raw 408/431/400 in security-limits.test.ts (+ edge.test.ts)
 * SEC-T22 X-Request-Id injection ..... security-config.test.ts (+ edge.test.ts)
 * SEC-T23 routes == OpenAPI .......... security-config.test.ts (+ edge.test.ts)
 * SEC-T24 untrusted device answers ... security-devices.test.ts (device-http.ts against a raw server, size cap included)
 * SEC-T25 forged device callbacks .... security-ssrf.test.ts (+ bluebubbles-events.test.ts, waha-events.test.ts)
 *
 * A file's blocks run one after another, each with its own app (one live test database at a time
 * per file).
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { syncBuiltinESMExports } from "node:module";
import { Writable } from "node:stream";
import net from "node:net";
import { sql } from "kysely";
import type { Db } from "../src/db/client.js";
import type { Mode } from "../src/db/schema.js";
import { MemoryRateLimiter } from "../src/http/rate-limiter.js";
import { REQUEST_ID } from "./auth-contract.js";
import { buildTestApp, type SeededAccount, type TestApp, type TestAppOptions } from "./helpers.js";
import { ANYONE } from "./messaging-helpers.js";

/** No test here is about the per-key limit (rate-limit.test.ts is): keys never run out. */
export const UNLIMITED = { RATE_LIMIT_PER_MINUTE: 1_000_000 } as const;

/**
 * The app of a block: keys that never run out, and rate-limit buckets in memory on either
 * database (one write less per request on PostgreSQL; the buckets are rate-limit.test.ts's subject).
 */
export async function secApp(opts: TestAppOptions = {}): Promise<TestApp> {
  return buildTestApp({ limiter: new MemoryRateLimiter(), ...opts, config: { ...UNLIMITED, ...opts.config } });
}

export const keyOf = (a: SeededAccount, mode: Mode) => (mode === "test" ? a.testKey : a.liveKey);

/** A route as ID_ROUTES names it: "METHOD /template". */
export const routeKey = (r: { method: string; url: string }) => `${r.method} ${r.url}`;

/** A public IP literal: webhook registration needs no DNS. */
export const HOOK_URL = "http://93.184.216.34/hook";
export const GROUP = ["+15557770101", "+15557770102", "+15557770103"];

/** One account's resources in one mode, each made through the API as its owner would. */
export interface Resources {
  handle: string;
  message: string;
  chat: string;
  group: string;
  webhook: string;
  delivery: string;
  attachment: string;
}

let numbers = 0;

/** A sending number for the account (one per account; numbers serve both modes). */
export async function numberOf(t: TestApp, a: SeededAccount): Promise<string> {
  const row = await t.db.kysely.selectFrom("numbers").select("handle").where("account_id", "=", a.id).executeTakeFirst();
  if (row) return row.handle;
  const handle = `+1555014${String(++numbers).padStart(4, "0")}`;
  await t.addNumber(a.id, handle, "imessage,sms");
  return handle;
}

async function created(t: TestApp, key: string, method: string, url: string, body: unknown, status: number): Promise<{ id: string; conversation_id?: string }> {
  const res = await t.call(key, method, url, body);
  assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
  return res.json().data;
}

export async function makeResources(t: TestApp, a: SeededAccount, mode: Mode): Promise<Resources> {
  const key = keyOf(a, mode);
  const handle = await numberOf(t, a);
  const sent = await created(t, key, "POST", "/v1/messages", { to: ANYONE, from_handle: handle, text: "fixture" }, 202);
  const group = await created(t, key, "POST", "/v1/chats", { from_handle: handle, addresses: GROUP, message: { text: "fixture" } }, 201);
  const webhook = await created(t, key, "POST", "/v1/webhooks", { url: HOOK_URL }, 201);
  const delivery = await created(t, key, "POST", `/v1/webhooks/${webhook.id}/test`, undefined, 202);
  const attachment = await created(t, key, "POST", "/v1/attachments/presign", { filename: "f.txt", content_type: "text/plain" }, 201);
  return {
    handle,
    message: sent.id,
    chat: sent.conversation_id ?? "",
    group: group.id,
    webhook: webhook.id,
    delivery: `${webhook.id}/deliveries/${delivery.id}`,
    attachment: attachment.id,
  };
}

/**
 * Every authenticated route that names a resource in its path: which resource, and a body that
 * passes validation (so the answer is about the id, never about the body).
 */
export const ID_ROUTES: Record<string, { kind: keyof Resources; body?: unknown; url?: string }> = {
  "GET /v1/messages/:id": { kind: "message" },
  "PATCH /v1/messages/:id": { kind: "message", body: { text: "edited" } },
  "DELETE /v1/messages/:id": { kind: "message" },
  "POST /v1/messages/:id/reactions": { kind: "message", body: { reaction: "love" } },
  "POST /v1/messages/:id/retry": { kind: "message" },
  "GET /v1/chats/:id": { kind: "chat" },
  "PATCH /v1/chats/:id": { kind: "group", body: { title: "Renamed" } },
  "POST /v1/chats/:id/read": { kind: "chat" },
  "POST /v1/chats/:id/typing": { kind: "chat", body: { state: "start" } },
  "POST /v1/chats/:id/participants": { kind: "group", body: { handle: "+15557770104" } },
  "DELETE /v1/chats/:id/participants/:handle": { kind: "group", url: "/v1/chats/:id/participants/%2B15557770101" },
  "GET /v1/webhooks/:id": { kind: "webhook" },
  "PATCH /v1/webhooks/:id": { kind: "webhook", body: { enabled: false } },
  "DELETE /v1/webhooks/:id": { kind: "webhook" },
  "POST /v1/webhooks/:id/rotate-secret": { kind: "webhook" },
  "POST /v1/webhooks/:id/test": { kind: "webhook" },
  "GET /v1/webhooks/:id/deliveries": { kind: "webhook" },
  // The pair <webhook id>/deliveries/<delivery id> stands in for ":id/deliveries/:delivery_id".
  "POST /v1/webhooks/:id/deliveries/:delivery_id/retry": { kind: "delivery", url: "/v1/webhooks/:id/retry" },
  "GET /v1/attachments/:id": { kind: "attachment" },
  "POST /v1/test_helpers/numbers/:handle/status": { kind: "handle", body: { status: "offline" }, url: "/v1/test_helpers/numbers/:id/status" },
};

/** Every row of every table but `skip` (rate-limit buckets change on every request on PostgreSQL). */
export async function dump(db: Db, skip: string[] = ["rate_limits"]): Promise<Record<string, unknown[]>> {
  const names =
    db.dialect === "sqlite"
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'table' order by name`.execute(db.kysely)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() order by table_name`.execute(db.kysely);
  const out: Record<string, unknown[]> = {};
  for (const { name } of names.rows) {
    if (skip.includes(name)) continue;
    const rows = (await sql`select * from ${sql.table(name)}`.execute(db.kysely)).rows;
    out[name] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

/** A JSON body with one more field, written raw (so `__proto__` is a real key, not a prototype). */
export function withField(body: unknown, field: string, value: unknown): string {
  const base = body === undefined ? "{}" : JSON.stringify(body);
  const extra = `${JSON.stringify(field)}:${JSON.stringify(value)}`;
  return base === "{}" ? `{${extra}}` : `${base.slice(0, -1)},${extra}}`;
}

/** What a raw client saw before the server closed its connection, and when that was. */
export interface RawOutcome {
  response: string;
  closedAfterMs: number;
}

/**
 * A client on a raw socket: writes `head` at once, then `drip` every `everyMs` until the server
 * closes the connection (or `giveUpMs` passes: then the test fails on the time).
 */
export async function trickle(port: number, head: string, drip: string, everyMs: number, giveUpMs: number): Promise<RawOutcome> {
  const started = Date.now();
  const socket = net.connect(port, "127.0.0.1");
  let response = "";
  socket.on("data", (d) => {
    response += String(d);
  });
  socket.on("error", () => {});
  socket.write(head);
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(drip);
  }, everyMs);
  const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
  await new Promise((resolve) => socket.on("close", resolve));
  clearInterval(timer);
  clearTimeout(giveUp);
  return { response, closedAfterMs: Date.now() - started };
}

/** A logger stream that keeps every line. */
export function logSink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  return { stream, lines };
}

/** reliability.md §2.7: URLs a webhook may never be registered at (rows 1–34, the DNS rows through `SSRF_DNS`). */
export const SSRF_REJECTED = [
  "http://127.0.0.1/", "http://127.1/", "http://0/", "http://0.0.0.0/", "http://2130706433/", "http://0x7f000001/",
  "http://0x7f.0x0.0x0.0x1/", "http://017700000001/", "http://0177.0.0.1/", "http://127.000.000.001/", "http://①②⑦.⓪.⓪.①/",
  "http://%31%32%37.0.0.1/", "http://[::1]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::]/", "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:7f00:1]/", "http://[::127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::127.0.0.1]/",
  "http://[64:ff9b::8.8.8.8]/", "http://[2002:7f00:1::1]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://[fd00:ec2::254]/",
  "http://[fe80::1]/", "http://[fec0::1]/", "http://[ff02::1]/", "http://[fe80::1%25eth0]/", "http://10.0.0.1/", "http://172.16.0.1/",
  "http://172.31.255.255/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://169.254.170.2/v2/credentials",
  "http://100.64.0.1/", "http://100.127.255.255/", "http://192.0.0.8/", "http://192.0.2.1/", "http://198.51.100.1/", "http://203.0.113.1/",
  "http://198.18.0.1/", "http://192.88.99.1/", "http://224.0.0.1/", "http://239.255.255.250/", "http://240.0.0.1/", "http://255.255.255.255/",
  "http://evil.example@127.0.0.1/", "http://127.0.0.1:80@public.test/", "http://user:pass@public.test/", "ftp://public.test/",
  "file:///etc/passwd", "gopher://127.0.0.1:6379/_PING", "javascript:alert(1)", "data:text/plain,hi", "http://localhost/",
  "http://LOCALHOST./", "http://foo.localhost/", "http://metadata.google.internal/", "http://metadata.amazonaws.com/", "http://db.internal/",
  "http://rebind.test/", "http://mixed.test/", "http://nxdomain.test/", `https://public.test/${"a".repeat(2050)}`, "http://public.test/a b",
  "http://public.test/\u0000", "not a url",
];

/** The DNS of the SSRF tests: rows 30–32 and the must-accept `public.test`. */
export const SSRF_DNS: Record<string, string[]> = {
  "public.test": ["93.184.216.34"],
  "rebind.test": ["127.0.0.1"],
  "mixed.test": ["93.184.216.34", "::1"],
};

/** §2.7 must-accept controls: they catch over-blocking (the `::ffff:0:0/96` gotcha among others). */
export const SSRF_ACCEPTED = [
  "http://8.8.8.8/", "http://1.1.1.1/", "http://[::ffff:8.8.8.8]/", "http://[2606:4700:4700::1111]/", "http://172.32.0.1/",
  "http://100.128.0.1/", "http://11.0.0.1/", "http://192.0.1.1/", "http://198.20.0.1/", "https://public.test/hooks",
  "http://public.test#@127.0.0.1/",
];

/** Replaces crypto.timingSafeEqual (for the modules' named imports too) with a recording wrapper. */
export function spyTimingSafeEqual(): { calls: [Buffer, Buffer][]; restore(): void } {
  const original = crypto.timingSafeEqual;
  const calls: [Buffer, Buffer][] = [];
  crypto.timingSafeEqual = ((x: NodeJS.ArrayBufferView, y: NodeJS.ArrayBufferView) => {
    calls.push([Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)]);
    return original(x, y);
  }) as typeof crypto.timingSafeEqual;
  syncBuiltinESMExports();
  return {
    calls,
    restore() {
      crypto.timingSafeEqual = original;
      syncBuiltinESMExports();
    },
  };
}

/** Fields a client never sets: server-owned, internal, or another resource's. */
export const READ_ONLY: [string, unknown][] = [
  ["id", "01a00000-0000-7000-8000-000000000001"], ["account_id", "01a00000-0000-7000-8000-000000000002"], ["mode", "live"], ["livemode", true],
  ["status", "delivered"], ["direction", "inbound"], ["created_at", "2026-01-01T00:00:00.000Z"], ["updated_at", "2026-01-01T00:00:00.000Z"],
  ["sent_at", "2026-01-01T00:00:00.000Z"], ["delivered_at", "2026-01-01T00:00:00.000Z"], ["read_at", "2026-01-01T00:00:00.000Z"],
  ["error", { code: "x", message: "y" }], ["device_message_id", "p:0/GUID"], ["device_chat_id", "iMessage;-;+15550000000"],
  ["number_id", "01a00000-0000-7000-8000-000000000003"], ["chat_id", "01a00000-0000-7000-8000-000000000004"], ["secret", "whsec_AAAA"],
  ["disabled_reason", "manual"], ["possible_duplicate", true], ["attempts", 0], ["message_id", "01a00000-0000-7000-8000-000000000005"],
  ["backend", "waha"], ["key_hash", "00"], ["constructor", "x"], ["__proto__", { admin: true }],
];

/** Every JSON write route with a body that passes validation (the owner's own test-mode resources). */
export const writeRoutes = (r: Resources): [string, string, unknown][] => [
  ["POST", "/v1/messages", { to: ANYONE, from_handle: r.handle, text: "hi" }],
  ["PATCH", `/v1/messages/${r.message}`, { text: "edited" }],
  ["POST", `/v1/messages/${r.message}/reactions`, { reaction: "love" }],
  ["POST", `/v1/messages/${r.message}/retry`, undefined],
  ["POST", "/v1/chats", { from_handle: r.handle, addresses: GROUP, message: { text: "hi" } }],
  ["PATCH", `/v1/chats/${r.group}`, { title: "Renamed" }],
  ["POST", `/v1/chats/${r.chat}/read`, undefined],
  ["POST", `/v1/chats/${r.chat}/typing`, { state: "start" }],
  ["POST", `/v1/chats/${r.group}/participants`, { handle: "+15557770104" }],
  ["POST", "/v1/webhooks", { url: HOOK_URL }],
  ["PATCH", `/v1/webhooks/${r.webhook}`, { enabled: true }],
  ["POST", `/v1/webhooks/${r.webhook}/rotate-secret`, undefined],
  ["POST", `/v1/webhooks/${r.webhook}/test`, undefined],
  ["POST", `/v1/webhooks/${r.delivery}/retry`, undefined],
  ["POST", "/v1/attachments/presign", { filename: "a.txt", content_type: "text/plain" }],
  ["POST", "/v1/test_helpers/inbound", { from_handle: r.handle, remote_handle: ANYONE, text: "hi" }],
  ["POST", "/v1/test_helpers/group_changes", { conversation_id: r.group, type: "renamed", title: "x" }],
  ["POST", `/v1/test_helpers/numbers/${encodeURIComponent(r.handle)}/status`, { status: "online" }],
];

/** The documented envelope on a raw answer: status line, X-Request-Id equal to request_id, nosniff. */
export function rawError(raw: string, status: number, code: string): void {
  const [head = "", body = ""] = raw.split("\r\n\r\n");
  assert.match(head, new RegExp(`^HTTP/1.1 ${status} `), raw);
  const parsed = JSON.parse(body);
  assert.deepEqual(Object.keys(parsed), ["error", "message", "request_id"]);
  assert.equal(parsed.error, code);
  assert.match(parsed.request_id, REQUEST_ID);
  assert.match(head, new RegExp(`\r\nx-request-id: ${parsed.request_id}\r\n`, "i"));
  assert.match(head, /\r\nx-content-type-options: nosniff\r\n/i);
}
