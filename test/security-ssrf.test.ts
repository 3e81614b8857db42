/**
 * OWASP API7 (SSRF) at registration time, and SEC-T25: the device ingest route, the one way in
 * that is not authenticated by an API key.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { BlueBubblesBackend } from "../src/backends/bluebubbles/backend.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import { WahaBackend } from "../src/backends/waha/backend.js";
import { uuidv7 } from "../src/ids.js";
import { addNumber } from "../src/numbers/store.js";
import { errorBody } from "./auth-contract.js";
import { openApiDoc } from "./edge-support.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { assertError } from "./messaging-helpers.js";
import { HOOK_URL, secApp, SSRF_ACCEPTED, SSRF_DNS, SSRF_REJECTED } from "./security-support.js";
import { fakeResolver, Receiver } from "./webhook-support.js";

describe("API7 SSRF: every field that takes a URL, and the device ingest route (API10)", () => {
  let t: TestApp;
  let a: SeededAccount;
  let hook: string;
  let mac: Receiver;
  let canary: Receiver;
  const bb = { id: "", secret: "" };
  const wa = { id: "", secret: "" };
  before(async () => {
    mac = await Receiver.start();
    canary = await Receiver.start();
    t = await secApp({
      config: { INGEST_BODY_LIMIT_BYTES: 4096 },
      webhookResolver: fakeResolver(SSRF_DNS),
      backends: ({ db, clock, config }) =>
        new Backends(new SimulatorBackend(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS }), {
          bluebubbles: new BlueBubblesBackend({ config, clock }),
          waha: new WahaBackend({ config }),
        }),
    });
    a = await t.seedAccount();
    hook = (await t.call(a.testKey, "POST", "/v1/webhooks", { url: HOOK_URL })).json().data.id;
    for (const [n, handle, backend, settings] of [
      [bb, "+15557010001", "bluebubbles", { url: mac.url, password: "pw" }],
      [wa, "+15557010009", "waha", { url: mac.url, apiKey: "waha-key" }],
    ] as const) {
      const made = await addNumber(t.db.kysely, t.clock, { accountId: a.id, handle, channels: backend === "waha" ? "whatsapp" : "imessage,sms", backend, settings });
      const row = await t.db.kysely.selectFrom("numbers").select("backend_config").where("id", "=", made.id).executeTakeFirstOrThrow();
      n.id = made.id;
      n.secret = JSON.parse(row.backend_config)[backend].ingestSecret;
    }
  });
  after(async () => {
    await t.close();
    await mac.close();
    await canary.close();
  });

  test("the only request fields that carry a URL are the webhook's url on POST and PATCH", async () => {
    const doc = await openApiDoc(t);
    const found: string[] = [];
    const walk = (where: string, schema: unknown): void => {
      if (!schema || typeof schema !== "object") return;
      for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
        if (k === "properties" && v && typeof v === "object") {
          for (const [name, sub] of Object.entries(v)) {
            if (/url|uri|href|link|callback|endpoint/i.test(name) || JSON.stringify(sub).includes('"format":"uri"')) found.push(`${where} ${name}`);
          }
        }
        walk(where, v);
      }
    };
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) walk(`${method.toUpperCase()} ${path}`, (op as { requestBody?: unknown; parameters?: unknown }).requestBody ?? {});
    }
    assert.deepEqual(found.sort(), ["PATCH /v1/webhooks/{id} url", "POST /v1/webhooks url"]);
  });

  test("WH-T13: POST /v1/webhooks refuses every §2.7 row with 400 invalid_url, never naming a resolved address", async () => {
    for (const url of SSRF_REJECTED) {
      const err = assertError(await t.call(a.testKey, "POST", "/v1/webhooks", { url }), 400, "invalid_url", url);
      for (const ip of ["127.0.0.1", "::1", "169.254"]) assert.ok(url.includes(ip) || !err.message.includes(ip), err.message);
    }
  });

  test("PATCH /v1/webhooks/:id refuses the same rows and keeps the registered url", async () => {
    for (const url of SSRF_REJECTED) assertError(await t.call(a.testKey, "PATCH", `/v1/webhooks/${hook}`, { url }), 400, "invalid_url", url);
    assert.equal((await t.call(a.testKey, "GET", `/v1/webhooks/${hook}`)).json().data.url, HOOK_URL);
  });

  test("WH-T14: the must-accept controls are accepted on POST and PATCH (no over-blocking)", async () => {
    for (const url of SSRF_ACCEPTED) {
      assert.equal((await t.call(a.testKey, "POST", "/v1/webhooks", { url })).statusCode, 201, url);
      assert.equal((await t.call(a.testKey, "PATCH", `/v1/webhooks/${hook}`, { url })).statusCode, 200, url);
    }
  });

  test("presign takes no URL, and the upload URL it returns names this server whatever Host or X-Forwarded-Host the client sends", async () => {
    for (const field of ["url", "upload_url", "source_url"]) {
      assertError(await t.call(a.testKey, "POST", "/v1/attachments/presign", { filename: "a.txt", content_type: "text/plain", [field]: "http://169.254.169.254/" }), 400, "invalid_request", field);
    }
    const res = await t.call(a.testKey, "POST", "/v1/attachments/presign", { filename: "a.txt", content_type: "text/plain" }, { host: "evil.example", "x-forwarded-host": "evil.example", forwarded: "host=evil.example" });
    assert.equal(res.statusCode, 201, res.body);
    assert.ok(!res.body.includes("evil.example"), res.body);
  });

  // Delivery-time defences (DNS rebinding, redirects, private literals written to the database,
  // device agents unaffected): webhooks-ssrf.test.ts WH-T15…T18; the deny list: address-policy.test.ts.

  const ingest = (backend: string, id: string, secret: string | null, payload: unknown) =>
    t.app.inject({ method: "POST", url: `/ingest/${backend}/${id}${secret === null ? "" : `?secret=${encodeURIComponent(secret)}`}`, payload: payload as object });
  const bbMessage = (guid: string) => ({
    type: "new-message",
    data: {
      guid, text: "with links", isFromMe: false, dateCreated: t.clock.now(), handle: { address: "+15557010002", service: "iMessage" },
      chats: [{ guid: "iMessage;-;+15557010002" }], url: canary.url, webhookUrl: canary.url, callbackUrl: canary.url,
      attachments: [{ guid: canary.url, transferName: "x.png", mimeType: "image/png" }, { guid: `../../..${new URL(canary.url).pathname}`, transferName: "y.png" }],
    },
  });
  const count = async () => Number((await t.db.kysely.selectFrom("messages").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n);

  test("SEC-T25: forged callbacks — no secret, a wrong one, another number's — are one identical 401 and apply nothing; unknown URLs are one identical 404", async () => {
    const before = await count();
    const bodies = new Set<string>();
    for (const secret of [null, "", "wrong", `${bb.secret}x`, bb.secret.slice(0, -1), wa.secret]) {
      bodies.add(errorBody(await ingest("bluebubbles", bb.id, secret, bbMessage(`G-${randomBytes(4).toString("hex")}`)), 401, "unauthorized", String(secret)));
    }
    assert.equal(bodies.size, 1, [...bodies].join("\n"));
    const missing = new Set<string>();
    for (const [backend, id] of [["bluebubbles", uuidv7()], ["nope", bb.id], ["waha", bb.id], ["bluebubbles", wa.id]]) {
      missing.add(errorBody(await ingest(backend ?? "", id ?? "", bb.secret, bbMessage("G-404")), 404, "not_found", `${backend} ${id}`));
    }
    assert.equal(missing.size, 1, [...missing].join("\n"));
    assert.equal(await count(), before);
    assert.equal(canary.connections + mac.connections, 0);
    // waha-events.test.ts: a WAHA body whose X-Webhook-Hmac does not match is refused the same way.
  });

  test("API4: a device body over INGEST_BODY_LIMIT_BYTES is 413 payload_too_large", async () => {
    const res = await t.app.inject({ method: "POST", url: `/ingest/bluebubbles/${bb.id}?secret=${bb.secret}`, headers: { "content-type": "application/json" }, payload: `{"x":"${"a".repeat(4096)}"}` });
    assertError(res, 413, "payload_too_large");
  });

  test("an authenticated BlueBubbles event cannot make the server fetch a URL it names: media come from the configured device only", async () => {
    const res = await ingest("bluebubbles", bb.id, bb.secret, bbMessage("G-SSRF-1"));
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(canary.connections, 0, "the server fetched a URL from the event");
    const device = `${new URL(mac.url).pathname}/api/v1/attachment/`;
    assert.ok(mac.requests.length > 0 && mac.requests.every((q) => q.url.startsWith(device)), JSON.stringify(mac.requests.map((q) => q.url)));
  });

  test(
    "an authenticated WAHA event cannot make the server fetch a URL it names (media.url off the WAHA server)",
    async () => {
      const chat = "15557010002@c.us";
      const payload = {
        id: `false_${chat}_3EB0SSRF`, timestamp: Math.floor(t.clock.now() / 1000), from: chat, fromMe: false, source: "app", body: "x", hasMedia: true,
        media: { url: `${canary.url}/latest/meta-data/`, mimetype: "image/png", filename: "a.png", error: null }, ack: 1, ackName: "SERVER",
        _data: { key: { remoteJid: "15557010002@s.whatsapp.net", fromMe: false, id: "3EB0SSRF" }, messageTimestamp: 1, message: { imageMessage: { mimetype: "image/png" } } },
      };
      const res = await ingest("waha", wa.id, wa.secret, { id: "evt_1", timestamp: t.clock.now(), session: "default", event: "message", me: { id: "15557010009@c.us" }, payload });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(canary.connections, 0, "the server fetched media.url from the event");
    },
  );
});
