// POST /v1/messages (api.md §5 Messages): the 202 message object, every validation rule and error,
// idempotent replay, scheduling; GET /v1/messages/:id. Lists and pagination: messages-list.test.ts.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { errorBody } from "./auth-contract.js";
import { ANYONE, assertError, FROM, ISO_MS, iso, MESSAGE_FIELDS, type Messaging, MIN, messagingApp, OTHER_FROM, SIM, statusOf, untilStatus } from "./messaging-helpers.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DAY = 24 * 60 * MIN;

describe("POST /v1/messages", () => {
  let m: Messaging;
  const post = (body: unknown, headers?: Record<string, string>, key = m.acct.testKey) => m.t.call(key, "POST", "/v1/messages", body, headers);
  const count = async (table: "messages" | "chats") => Number((await m.t.db.kysely.selectFrom(table).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);

  beforeEach(async () => {
    m = await messagingApp();
  });
  afterEach(() => m.close());

  it("202 with the message object: exactly the documented fields in the documented order, queued, channel null", async () => {
    const res = await post({ to: ANYONE, from_handle: FROM, text: "Hello", effect: "confetti", metadata: { order: "42" } });
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ["data", "request_id"]);
    assert.equal(body.request_id, res.headers["x-request-id"]);
    const msg = body.data;
    assert.deepEqual(Object.keys(msg), MESSAGE_FIELDS);
    assert.match(msg.id, UUID);
    assert.match(msg.conversation_id, UUID);
    const now = iso(m.t.clock.now());
    assert.deepEqual(
      { ...msg, id: "*", conversation_id: "*" },
      {
        id: "*", conversation_id: "*", direction: "outbound", status: "queued", channel: null, text: "Hello", effect: "confetti",
        reply_to: null, error: null, metadata: { order: "42" }, attachments: [], sent_at: null, delivered_at: null, read_at: null,
        from_handle: FROM, to: ANYONE, voice_memo: false, send_at: null, edited_at: null, unsent_at: null, reactions: [],
        created_at: now, updated_at: now,
      },
    );
    assert.match(msg.created_at, ISO_MS);
    // GET answers the same object, in the same order.
    const got = await m.t.call(m.acct.testKey, "GET", `/v1/messages/${msg.id}`);
    assert.equal(got.statusCode, 200);
    assert.deepEqual(Object.keys(got.json().data), MESSAGE_FIELDS);
    assert.deepEqual(got.json().data, msg);
  });

  it("normalises handles: an email recipient is lower-cased; a reply_to of the account is echoed; voice_memo kept", async () => {
    const first = await m.send({ to: ANYONE, from_handle: FROM, text: "one" });
    const msg = await m.send({ to: "Bob.Smith@Example.COM", from_handle: ` ${FROM} `, text: "two", reply_to: first.id, voice_memo: true });
    assert.equal(msg.to, "bob.smith@example.com");
    assert.equal(msg.from_handle, FROM);
    assert.equal(msg.reply_to, first.id);
    assert.equal(msg.voice_memo, true);
    assert.notEqual(msg.conversation_id, first.conversation_id);
  });

  it("text of exactly 10,000 characters is accepted; 10,001 is 400 invalid_request", async () => {
    assert.equal((await m.send({ to: ANYONE, from_handle: FROM, text: "x".repeat(10_000) })).text?.length, 10_000);
    assertError(await post({ to: ANYONE, from_handle: FROM, text: "x".repeat(10_001) }), 400, "invalid_request");
  });

  it("400 invalid_request for every malformed body, and nothing is stored", async () => {
    const base = { to: ANYONE, from_handle: FROM, text: "hi" };
    const cases: [string, unknown][] = [
      ["neither text nor attachment_ids", { to: ANYONE, from_handle: FROM }],
      ["empty text", { ...base, text: "" }],
      ["text not a string", { ...base, text: 5 }],
      ["unknown field", { ...base, colour: "blue" }],
      ["server-owned status (SEC-T08)", { ...base, status: "delivered" }],
      ["server-owned account_id (SEC-T08)", { ...base, account_id: m.acct.id }],
      ["server-owned id", { ...base, id: "01a00000-0000-7000-8000-000000000000" }],
      ["no to", { from_handle: FROM, text: "hi" }],
      ["no from_handle", { to: ANYONE, text: "hi" }],
      ["metadata with 21 keys", { ...base, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"])) }],
      ["a metadata value of 501 characters", { ...base, metadata: { k: "x".repeat(501) } }],
      ["a metadata value that is not a string", { ...base, metadata: { k: 1 } }],
      ["an empty metadata key", { ...base, metadata: { "": "v" } }],
      ["a metadata key of 41 characters", { ...base, metadata: { ["k".repeat(41)]: "v" } }],
      ["an effect not in the list", { ...base, effect: "boom" }],
      ["a channel not in the list", { ...base, channel: "telegram" }],
      ["send_at more than 30 days ahead", { ...base, send_at: iso(m.t.clock.now() + 30 * DAY + 1) }],
      ["send_at not a timestamp", { ...base, send_at: "tomorrow" }],
      ["conversation_id not a uuid", { conversation_id: "abc", text: "hi" }],
      ["reply_to not a uuid", { ...base, reply_to: "abc" }],
      ["voice_memo not a boolean", { ...base, voice_memo: "yes" }],
      ["an array body", [base]],
    ];
    for (const [label, body] of cases) assertError(await post(body), 400, "invalid_request", label);
    assertError(await post("{not json"), 400, "invalid_request");
    assert.deepEqual([await count("messages"), await count("chats")], [0, 0]);
  });

  it("metadata at the limits (20 keys of 40 characters, 500-character values) is accepted and echoed", async () => {
    const metadata = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`${i}`.padEnd(40, "k"), "x".repeat(500)]));
    assert.deepEqual((await m.send({ to: ANYONE, from_handle: FROM, text: "hi", metadata })).metadata, metadata);
  });

  it("400 invalid_handle for a `to` or `from_handle` that is neither E.164 nor an email", async () => {
    for (const to of ["12345", "not-a-handle", "+1555", "+0123456789", "+15557779999x", "@example.com"]) {
      assertError(await post({ to, from_handle: FROM, text: "hi" }), 400, "invalid_handle", to);
    }
    assertError(await post({ to: ANYONE, from_handle: "sales desk", text: "hi" }), 400, "invalid_handle");
    assert.equal(await count("messages"), 0);
  });

  it("400 invalid_from_handle: an unknown number, another account's number, a forced channel the number lacks", async () => {
    await m.t.addNumber(m.acct.id, "+15557770003", "imessage");
    const cases: [string, Record<string, unknown>][] = [
      ["a number nobody has", { from_handle: "+15557770099" }],
      ["another account's number", { from_handle: OTHER_FROM }],
      ["whatsapp forced on a number without it", { from_handle: FROM, channel: "whatsapp" }],
      ["sms forced on an iMessage-only number", { from_handle: "+15557770003", channel: "sms" }],
    ];
    for (const [label, extra] of cases) {
      const res = await post({ to: ANYONE, text: "hi", ...extra });
      assertError(res, 400, "invalid_from_handle", label);
      assert.ok(!res.body.includes(m.other.id), label);
    }
    assert.equal(await count("messages"), 0);
    // Forcing a channel the number has is accepted.
    assert.equal((await m.send({ to: ANYONE, from_handle: FROM, text: "hi", channel: "sms" })).status, "queued");
  });

  it("404 not_found for a conversation_id or reply_to of another account, of the other mode, or missing — byte-identical", async () => {
    const mine = await m.send({ to: ANYONE, from_handle: FROM, text: "test mode" });
    const theirs = await m.send({ to: ANYONE, from_handle: OTHER_FROM, text: "theirs" }, m.other.testKey);
    const live = await m.send({ to: ANYONE, from_handle: FROM, text: "live mode" }, m.acct.liveKey);
    const missingId = "01a00000-0000-7000-8000-000000000000";
    for (const field of ["conversation_id", "reply_to"] as const) {
      const pick = (msg: typeof mine) => (field === "conversation_id" ? msg.conversation_id : msg.id);
      const body = (id: string) => (field === "conversation_id" ? { conversation_id: id, text: "hi" } : { to: ANYONE, from_handle: FROM, text: "hi", reply_to: id });
      const missing = errorBody(await post(body(missingId)), 404, "not_found", `${field} missing`);
      assert.equal(errorBody(await post(body(pick(theirs))), 404, "not_found", `${field} of another account`), missing);
      assert.equal(errorBody(await post(body(pick(live))), 404, "not_found", `${field} of the live mode`), missing);
      // The control: the account's own id in this mode is accepted.
      assert.equal((await post(body(pick(mine)))).statusCode, 202, field);
    }
    assert.equal(await count("messages"), 5);
  });

  it("sending into a conversation_id goes to its contact from its number; a contradicting to/from_handle is 400", async () => {
    const first = await m.send({ to: ANYONE, from_handle: FROM, text: "one" });
    const next = await m.send({ conversation_id: first.conversation_id, text: "two" });
    assert.deepEqual([next.conversation_id, next.from_handle, next.to], [first.conversation_id, FROM, ANYONE]);
    const same = await m.send({ conversation_id: first.conversation_id, to: ANYONE, from_handle: FROM, text: "three" });
    assert.equal(same.conversation_id, first.conversation_id);
    assertError(await post({ conversation_id: first.conversation_id, to: SIM.smsOnly, text: "x" }), 400, "invalid_request");
    assertError(await post({ conversation_id: first.conversation_id, from_handle: OTHER_FROM, text: "x" }), 400, "invalid_request");
    assert.equal(await count("messages"), 3);
  });

  it("send_at with a UTC offset is stored and echoed in UTC with milliseconds", async () => {
    const at = m.t.clock.now() + 60 * MIN;
    const local = new Date(at + 2 * 60 * MIN).toISOString().replace(".000Z", "+02:00");
    const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "later", send_at: local });
    assert.deepEqual([msg.status, msg.send_at], ["scheduled", iso(at)]);
  });

  it("400 invalid_attachments for unknown attachment_ids, with or without text (more in attachments-send.test.ts)", async () => {
    const id = "01a00000-0000-7000-8000-000000000001";
    assertError(await post({ to: ANYONE, from_handle: FROM, attachment_ids: [id] }), 400, "invalid_attachments");
    assertError(await post({ to: ANYONE, from_handle: FROM, text: "hi", attachment_ids: [id] }), 400, "invalid_attachments");
    assertError(await post({ to: ANYONE, from_handle: FROM, attachment_ids: Array.from({ length: 11 }, () => id) }), 400, "invalid_request");
    assert.equal(await count("messages"), 0);
  });

  it("503 device_offline while the number's device is offline; accepted again once it is back", async () => {
    await m.setStatus(FROM, "offline");
    const res = await post({ to: ANYONE, from_handle: FROM, text: "hi" });
    assertError(res, 503, "device_offline");
    assert.equal(await count("messages"), 0);
    // Only this mode's device: the live side of the same number still accepts.
    assert.equal((await post({ to: ANYONE, from_handle: FROM, text: "hi" }, {}, m.acct.liveKey)).statusCode, 202);
    await m.setStatus(FROM, "online");
    assert.equal((await post({ to: ANYONE, from_handle: FROM, text: "hi" })).statusCode, 202);
  });

  it("Idempotency-Key: a replay answers 200 with the same id, its current state and Idempotent-Replayed; one message", async () => {
    const body = { to: ANYONE, from_handle: FROM, text: "once" };
    const first = await post(body, { "idempotency-key": "send-1" });
    assert.equal(first.statusCode, 202, first.body);
    assert.equal(first.headers["idempotent-replayed"], undefined);
    await untilStatus(m.t, first.json().data.id, "read");
    const again = await post(body, { "idempotency-key": "send-1" });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.headers["idempotent-replayed"], "true");
    assert.equal(again.json().data.id, first.json().data.id);
    assert.equal(again.json().data.status, "read");
    assert.deepEqual(Object.keys(again.json().data), MESSAGE_FIELDS);
    assertError(await post({ ...body, text: "other" }, { "idempotency-key": "send-1" }), 422, "idempotency_key_reused");
    assert.equal(await count("messages"), 1);
    const hist = await m.t.db.kysely.selectFrom("simulator_history").select("sends").execute();
    assert.deepEqual(hist, [{ sends: 1 }]);
  });

  it("an error does not burn the Idempotency-Key: the same key succeeds once the device is back", async () => {
    const body = { to: ANYONE, from_handle: FROM, text: "hi" };
    await m.setStatus(FROM, "offline");
    assertError(await post(body, { "idempotency-key": "k" }), 503, "device_offline");
    await m.setStatus(FROM, "online");
    assert.equal((await post(body, { "idempotency-key": "k" })).statusCode, 202);
  });

  it("send_at: scheduled until then (up to exactly 30 days ahead), then queued and sent; a past send_at means now", async () => {
    const at = m.t.clock.now() + 10 * MIN;
    const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "later", send_at: iso(at) });
    assert.deepEqual([msg.status, msg.send_at], ["scheduled", iso(at)]);
    const edge = await m.send({ to: ANYONE, from_handle: FROM, text: "edge", send_at: iso(m.t.clock.now() + 30 * DAY) });
    assert.equal(edge.status, "scheduled");
    const past = await m.send({ to: ANYONE, from_handle: FROM, text: "past", send_at: iso(m.t.clock.now() - MIN) });
    assert.deepEqual([past.status, past.send_at], ["queued", null]);

    await m.t.app.services.dispatcher.runUntilIdle();
    m.t.clock.advance(10 * MIN - 1);
    await m.t.app.services.dispatcher.runUntilIdle();
    assert.equal(await statusOf(m.t, msg.id), "scheduled");
    await untilStatus(m.t, msg.id, "sent", 5_000);
    const sent = await m.get(msg.id);
    assert.ok(sent.sent_at !== null && Date.parse(sent.sent_at) >= at, `sent_at ${sent.sent_at}`);
    assert.equal(await statusOf(m.t, edge.id), "scheduled");
  });

  it("an SMS-only recipient and an email recipient are routed: SMS to the phone, iMessage to the email", async () => {
    const sms = await m.send({ to: SIM.smsOnly, from_handle: FROM, text: "green" });
    const mail = await m.send({ to: "someone@example.com", from_handle: FROM, text: "blue" });
    await untilStatus(m.t, sms.id, "delivered");
    await untilStatus(m.t, mail.id, "read");
    assert.equal((await m.get(sms.id)).channel, "sms");
    assert.equal((await m.get(mail.id)).channel, "imessage");
  });
});

describe("GET /v1/messages/:id", () => {
  let m: Messaging;
  beforeEach(async () => {
    m = await messagingApp();
  });
  afterEach(() => m.close());

  it("200 for the account's own message in its mode; 404, byte-identical, for another account's, the other mode's, a missing id", async () => {
    const mine = await m.send({ to: ANYONE, from_handle: FROM, text: "mine" });
    const theirs = await m.send({ to: ANYONE, from_handle: OTHER_FROM, text: "theirs" }, m.other.testKey);
    const live = await m.send({ to: ANYONE, from_handle: FROM, text: "live" }, m.acct.liveKey);
    assert.deepEqual(await m.get(mine.id), mine);
    assert.deepEqual(await m.get(live.id, m.acct.liveKey), live);
    const get = (id: string) => m.t.call(m.acct.testKey, "GET", `/v1/messages/${id}`);
    const missing = errorBody(await get("01a00000-0000-7000-8000-000000000000"), 404, "not_found");
    assert.equal(errorBody(await get(theirs.id), 404, "not_found"), missing);
    assert.equal(errorBody(await get(live.id), 404, "not_found"), missing);
    assertError(await get("not-a-uuid"), 400, "invalid_request");
  });
});
