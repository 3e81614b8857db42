// Webhook endpoint management (api.md §5 Webhooks; reliability.md WH-R1, WH-R7, WH-T06, WH-T13,
// WH-T14, WH-T20): create, read, list, change, delete, rotate; who sees the secret; the event
// filter; the URL check at the HTTP level with an injected resolver (no DNS, no internet).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EVENT_TYPES } from "../src/events/catalog.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";
import { assertError } from "./messaging-helpers.js";
import { createWebhook, fakeResolver } from "./webhook-support.js";

const PUBLIC_URL = "https://hooks.example.com/msgbubbles";
const SECRET = /^whsec_[A-Za-z0-9+/=]+$/;
const WEBHOOK_FIELDS = ["id", "url", "events", "enabled", "disabled_reason", "livemode", "created_at", "updated_at"];

const resolver = fakeResolver({
  "hooks.example.com": ["93.184.216.34"],
  "public.test": ["93.184.216.34"],
  "other.example.com": ["93.184.216.35", "2606:4700:4700::1111"],
  "rebind.test": ["127.0.0.1"],
  "private.test": ["10.1.2.3"],
  "mixed.test": ["93.184.216.34", "::1"],
  "imds.test": ["169.254.169.254"],
});

describe("webhook endpoints", () => {
  let t: TestApp;
  let a: SeededAccount;
  let key: string;
  before(async () => {
    t = await buildTestApp({ webhookResolver: resolver });
    a = await t.seedAccount();
    key = await t.newKey(a.id, "test", 1_000_000);
  });
  after(() => t.close());

  it("201: the endpoint with a whsec_ secret of 32 random bytes; every type when events is left out (WH-T06)", async () => {
    const res = await t.call(key, "POST", "/v1/webhooks", { url: PUBLIC_URL });
    assert.equal(res.statusCode, 201, res.body);
    const w = res.json().data;
    assert.deepEqual(Object.keys(w), [...WEBHOOK_FIELDS, "secret"]);
    assert.deepEqual(
      { ...w, id: "*", secret: "*" },
      { id: "*", url: PUBLIC_URL, events: null, enabled: true, disabled_reason: null, livemode: false, created_at: new Date(t.clock.now()).toISOString(), updated_at: new Date(t.clock.now()).toISOString(), secret: "*" },
    );
    assert.match(w.secret, SECRET);
    assert.ok(Buffer.from(w.secret.slice(6), "base64").length >= 24);
    const other = await createWebhook(t, key, PUBLIC_URL);
    assert.notEqual(other.secret, w.secret, "a secret per endpoint");
  });

  it("the secret is shown at creation only: GET, list, PATCH and DELETE never carry it (WH-R1)", async () => {
    const w = await createWebhook(t, key, PUBLIC_URL);
    const reads = [
      await t.call(key, "GET", `/v1/webhooks/${w.id}`),
      await t.call(key, "GET", "/v1/webhooks"),
      await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, { events: ["message.sent"] }),
      await t.call(key, "DELETE", `/v1/webhooks/${w.id}`),
    ];
    for (const res of reads) {
      assert.equal(res.statusCode, 200, res.body);
      assert.ok(!res.body.includes(w.secret) && !res.body.includes("whsec_"), res.body);
    }
    assert.deepEqual(Object.keys(reads[0]?.json().data), WEBHOOK_FIELDS);
  });

  it("an idempotent replay answers 200 with the same endpoint and its secret; nothing is created twice", async () => {
    const headers = { "idempotency-key": "create-hook-1" };
    const first = await t.call(key, "POST", "/v1/webhooks", { url: "https://public.test/a" }, headers);
    const again = await t.call(key, "POST", "/v1/webhooks", { url: "https://public.test/a" }, headers);
    assert.equal(first.statusCode, 201, first.body);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.headers["idempotent-replayed"], "true");
    assert.equal(again.json().data.id, first.json().data.id);
    assert.equal(again.json().data.secret, first.json().data.secret);
    const rows = await t.db.kysely.selectFrom("webhook_endpoints").select("id").where("url", "=", "https://public.test/a").execute();
    assert.equal(rows.length, 1);
  });

  it("events: checked against the catalogue (unknown → 400), duplicates harmless, [] refused, null on PATCH = every type", async () => {
    assertError(await t.call(key, "POST", "/v1/webhooks", { url: PUBLIC_URL, events: ["message.sent", "message.exploded"] }), 400, "invalid_request");
    assertError(await t.call(key, "POST", "/v1/webhooks", { url: PUBLIC_URL, events: [] }), 400, "invalid_request");
    assertError(await t.call(key, "POST", "/v1/webhooks", { url: PUBLIC_URL, colour: "blue" }), 400, "invalid_request");
    const w = await createWebhook(t, key, PUBLIC_URL, ["message.read", "message.sent", "message.read"]);
    assert.deepEqual(w.events, ["message.read", "message.sent"]);
    const all = await createWebhook(t, key, PUBLIC_URL, [...EVENT_TYPES]);
    assert.deepEqual(all.events, [...EVENT_TYPES]);
    const res = await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, { events: null });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().data.events, null);
  });

  it("PATCH: url re-checked (400 invalid_url), enabled false/true with its reason", async () => {
    const w = await createWebhook(t, key, PUBLIC_URL);
    assertError(await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, { url: "http://127.0.0.1/" }), 400, "invalid_url");
    const moved = await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, { url: "https://other.example.com/x" });
    assert.equal(moved.json().data.url, "https://other.example.com/x");
    const off = (await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, { enabled: false })).json().data;
    assert.deepEqual([off.enabled, off.disabled_reason], [false, "manual"]);
    const on = (await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, { enabled: true })).json().data;
    assert.deepEqual([on.enabled, on.disabled_reason], [true, null]);
    const same = await t.call(key, "PATCH", `/v1/webhooks/${w.id}`, {});
    assert.equal(same.statusCode, 200);
  });

  it("rotate-secret: 200 with a new secret; GET still shows none; a replay shows the same new secret", async () => {
    const w = await createWebhook(t, key, PUBLIC_URL);
    const headers = { "idempotency-key": `rotate-${w.id}` };
    const res = await t.call(key, "POST", `/v1/webhooks/${w.id}/rotate-secret`, undefined, headers);
    assert.equal(res.statusCode, 200, res.body);
    const rotated = res.json().data.secret;
    assert.match(rotated, SECRET);
    assert.notEqual(rotated, w.secret);
    const replay = await t.call(key, "POST", `/v1/webhooks/${w.id}/rotate-secret`, undefined, headers);
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.headers["idempotent-replayed"], "true");
    assert.equal(replay.json().data.secret, rotated);
    assert.ok(!(await t.call(key, "GET", `/v1/webhooks/${w.id}`)).body.includes("whsec_"));
  });

  it("DELETE: 200 with the endpoint, then 404; its deliveries are gone", async () => {
    const w = await createWebhook(t, key, PUBLIC_URL);
    await t.call(key, "POST", `/v1/webhooks/${w.id}/test`);
    const res = await t.call(key, "DELETE", `/v1/webhooks/${w.id}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().data.id, w.id);
    assertError(await t.call(key, "GET", `/v1/webhooks/${w.id}`), 404, "not_found");
    assertError(await t.call(key, "GET", `/v1/webhooks/${w.id}/deliveries`), 404, "not_found");
    assert.equal((await t.db.kysely.selectFrom("webhook_deliveries").select("id").where("endpoint_id", "=", w.id).execute()).length, 0);
  });

  it("the endpoint's mode is the key's: a live key's endpoint is livemode, invisible to test keys, and vice versa", async () => {
    const live = await createWebhook(t, a.liveKey, PUBLIC_URL);
    const got = await t.call(a.liveKey, "GET", `/v1/webhooks/${live.id}`);
    assert.equal(got.json().data.livemode, true);
    assertError(await t.call(a.testKey, "GET", `/v1/webhooks/${live.id}`), 404, "not_found");
    const listed = (await t.call(a.testKey, "GET", "/v1/webhooks?limit=100")).json().data as { id: string }[];
    assert.ok(!listed.some((w) => w.id === live.id));
    const other = await t.seedAccount("Other");
    assertError(await t.call(other.liveKey, "GET", `/v1/webhooks/${live.id}`), 404, "not_found");
  });

  it("GET /v1/webhooks: newest first, paged with limit and before", async () => {
    const b = await t.seedAccount("Pager");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createWebhook(t, b.testKey, `${PUBLIC_URL}/${i}`)).id);
      t.clock.advance(1);
    }
    const first = (await t.call(b.testKey, "GET", "/v1/webhooks?limit=2")).json();
    assert.deepEqual(first.data.map((w: { id: string }) => w.id), [ids[4], ids[3]]);
    assert.equal(first.has_more, true);
    const next = (await t.call(b.testKey, "GET", `/v1/webhooks?limit=10&before=${ids[3]}`)).json();
    assert.deepEqual(next.data.map((w: { id: string }) => w.id), [ids[2], ids[1], ids[0]]);
    assert.equal(next.has_more, false);
    assertError(await t.call(b.testKey, "GET", "/v1/webhooks?limit=0"), 400, "invalid_request");
  });

  it("409 conflict past 50 endpoints per account and mode", async () => {
    const c = await t.seedAccount("Many");
    const bulk = await t.newKey(c.id, "test", 1_000_000);
    for (let i = 0; i < 50; i++) await createWebhook(t, bulk, `${PUBLIC_URL}/${i}`);
    assertError(await t.call(bulk, "POST", "/v1/webhooks", { url: PUBLIC_URL }), 409, "conflict");
    await createWebhook(t, c.liveKey, PUBLIC_URL); // the other mode has its own 50
  });
});

describe("webhook URL check at registration (WH-T13, WH-T14, a representative subset of §2.7)", () => {
  let t: TestApp;
  let key: string;
  before(async () => {
    t = await buildTestApp({ webhookResolver: resolver });
    const a = await t.seedAccount();
    key = await t.newKey(a.id, "test", 1_000_000);
  });
  after(() => t.close());

  const rejected = [
    "http://127.0.0.1/", "http://127.1/", "http://0/", "http://0.0.0.0/", "http://2130706433/", "http://0x7f000001/",
    "http://0177.0.0.1/", "http://①②⑦.⓪.⓪.①/", "http://%31%32%37.0.0.1/", "http://[::1]/", "http://[::]/",
    "http://[::ffff:127.0.0.1]/", "http://[::127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::8.8.8.8]/",
    "http://[2002:7f00:1::1]/", "http://[fd00:ec2::254]/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/", "http://10.0.0.1/",
    "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://192.0.2.1/", "http://198.18.0.1/", "http://224.0.0.1/", "http://255.255.255.255/", "http://evil.example@127.0.0.1/",
    "http://user:pass@public.test/", "ftp://public.test/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_PING", "javascript:alert(1)",
    "data:text/plain,hi", "http://localhost/", "http://LOCALHOST./", "http://foo.localhost/", "http://metadata.google.internal/",
    "http://rebind.test/", "http://private.test/", "http://mixed.test/", "http://nxdomain.test/", `https://public.test/${"a".repeat(2050)}`,
    "http://public.test/a b", "not a url",
  ];
  for (const url of rejected) {
    it(`400 invalid_url: ${url.length > 60 ? `${url.slice(0, 60)}…` : url}`, async () => {
      const body = assertError(await t.call(key, "POST", "/v1/webhooks", { url }), 400, "invalid_url", url);
      // WH-R7: the message never echoes a resolved internal address.
      for (const ip of ["127.0.0.1", "10.1.2.3", "::1", "169.254.169.254"]) assert.ok(!body.message.includes(ip) || url.includes(ip), body.message);
    });
  }

  const accepted = [
    "http://8.8.8.8/", "http://1.1.1.1/", "http://[::ffff:8.8.8.8]/", "http://[2606:4700:4700::1111]/", "http://172.32.0.1/",
    "http://100.128.0.1/", "http://11.0.0.1/", "http://192.0.1.1/", "http://198.20.0.1/", "https://public.test/hooks",
    "http://example.com#@127.0.0.1/".replace("example.com", "public.test"),
  ];
  for (const url of accepted) {
    it(`201: ${url}`, async () => {
      await createWebhook(t, key, url);
    });
  }

  it("WH-T20: WEBHOOK_ALLOW_PRIVATE_CIDRS=10.0.0.0/8 allows 10.x; 169.254.169.254 and 127.0.0.1 stay refused", async () => {
    const lan = await buildTestApp({ webhookResolver: resolver, config: { WEBHOOK_ALLOW_PRIVATE_CIDRS: "10.0.0.0/8" } });
    try {
      const b = await lan.seedAccount();
      await createWebhook(lan, b.testKey, "http://10.0.0.1/hook");
      await createWebhook(lan, b.testKey, "http://private.test/hook");
      assertError(await lan.call(b.testKey, "POST", "/v1/webhooks", { url: "http://169.254.169.254/" }), 400, "invalid_url");
      assertError(await lan.call(b.testKey, "POST", "/v1/webhooks", { url: "http://imds.test/" }), 400, "invalid_url");
      assertError(await lan.call(b.testKey, "POST", "/v1/webhooks", { url: "http://127.0.0.1/" }), 400, "invalid_url");
    } finally {
      await lan.close();
    }
  });
});
