// PATCH /v1/messages/:id (edit) and DELETE /v1/messages/:id (cancel / unsend): the 409 rules of
// api.md §5 Messages — queued text replaced locally; a sent iMessage edited within 15 minutes of
// sent_at, at most 5 times; unsent within 2 minutes; SMS and inbound never; device offline → 503.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  ANYONE, assertError, elapse, eventsOf, FROM, historyOf, iso, type Message, type Messaging, MIN, messageEvents, messagingApp, SEC, SIM, statusOf, untilStatus,
} from "./messaging-helpers.js";

describe("editing and unsending messages", () => {
  let m: Messaging;
  const patch = (id: string, body: unknown) => m.t.call(m.acct.testKey, "PATCH", `/v1/messages/${id}`, body);
  const del = (id: string) => m.t.call(m.acct.testKey, "DELETE", `/v1/messages/${id}`);
  /** A message to `to`, driven until `status`. */
  const reach = async (to: string, status: string, text = "original") => {
    const msg = await m.send({ to, from_handle: FROM, text });
    await untilStatus(m.t, msg.id, status);
    return m.get(msg.id);
  };
  const inbound = async () => {
    const res = await m.t.call(m.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "from them" });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().data as Message;
  };

  beforeEach(async () => {
    m = await messagingApp();
  });
  afterEach(() => m.close());

  describe("PATCH", () => {
    it("a queued message: the text is replaced locally (no edited_at, no event), and the new text is what goes out", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "draft" });
      m.t.clock.advance(5);
      const res = await patch(msg.id, { text: "final" });
      assert.equal(res.statusCode, 200, res.body);
      const edited = res.json().data as Message;
      assert.deepEqual(edited, { ...msg, text: "final", updated_at: iso(m.t.clock.now()) });
      assert.deepEqual(await m.get(msg.id), edited);
      await untilStatus(m.t, msg.id, "read");
      assert.deepEqual((await historyOf(m.t, msg.id)).map((h) => h.text), ["final"]);
      assert.deepEqual((await messageEvents(m.t, m.acct.id, msg.id)).map((e) => [e.type, e.data.text]), [
        ["message.created", "draft"], ["message.sent", "final"], ["message.delivered", "final"], ["message.read", "final"],
      ]);
    });

    it("a scheduled message: the text is replaced and it stays scheduled", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "draft", send_at: iso(m.t.clock.now() + 5 * MIN) });
      const res = await patch(msg.id, { text: "final" });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual([res.json().data.status, res.json().data.text, res.json().data.edited_at], ["scheduled", "final", null]);
    });

    it("a sent iMessage within 15 minutes: edited_at and a message.edited event; 5 edits, the 6th is 409 conflict", async () => {
      const msg = await reach(ANYONE, "read");
      for (let i = 1; i <= 5; i++) {
        m.t.clock.advance(MIN);
        const res = await patch(msg.id, { text: `edit ${i}` });
        assert.equal(res.statusCode, 200, `edit ${i}: ${res.body}`);
        const data = res.json().data as Message;
        assert.deepEqual([data.text, data.edited_at, data.status], [`edit ${i}`, iso(m.t.clock.now()), "read"]);
      }
      const edits = (await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.edited");
      assert.deepEqual(edits.map((e) => [e.data.id, e.data.text]), [1, 2, 3, 4, 5].map((i) => [msg.id, `edit ${i}`]));
      assert.equal(edits[4]?.data.edited_at, iso(m.t.clock.now()));
      assertError(await patch(msg.id, { text: "edit 6" }), 409, "conflict");
      assert.equal((await m.get(msg.id)).text, "edit 5");
      assert.equal((await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.edited").length, 5);
    });

    it("a sent (not yet delivered) iMessage can be edited too", async () => {
      const msg = await reach(SIM.neverDelivered, "sent");
      assert.equal((await patch(msg.id, { text: "better" })).statusCode, 200);
    });

    it("the 15-minute window counts from sent_at: 15:00 is inside, 15:00.001 is 409 conflict", async () => {
      const msg = await reach(ANYONE, "read");
      m.t.clock.set(Date.parse(msg.sent_at ?? "") + 15 * MIN);
      assert.equal((await patch(msg.id, { text: "just in time" })).statusCode, 200);
      m.t.clock.advance(1);
      assertError(await patch(msg.id, { text: "too late" }), 409, "conflict");
      assert.equal((await m.get(msg.id)).text, "just in time");
    });

    it("409 conflict for an SMS, an inbound message, a failed and a canceled message", async () => {
      const sms = await reach(SIM.smsOnly, "delivered");
      assert.equal(sms.channel, "sms");
      const failed = await reach(SIM.fails, "failed");
      const canceled = await m.send({ to: ANYONE, from_handle: FROM, text: "x", send_at: iso(m.t.clock.now() + MIN) });
      assert.equal((await del(canceled.id)).statusCode, 200);
      for (const [label, id] of [["sms", sms.id], ["inbound", (await inbound()).id], ["failed", failed.id], ["canceled", canceled.id]]) {
        assertError(await patch(id ?? "", { text: "changed" }), 409, "conflict", label);
      }
      assert.equal((await m.get(sms.id)).text, "original");
      assert.equal((await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.edited").length, 0);
    });

    it("503 device_offline for an edit on the device while it is offline; nothing changes", async () => {
      const msg = await reach(ANYONE, "read");
      await m.setStatus(FROM, "offline");
      assertError(await patch(msg.id, { text: "changed" }), 503, "device_offline");
      assert.deepEqual(await m.get(msg.id), msg);
      await m.setStatus(FROM, "online");
      assert.equal((await patch(msg.id, { text: "changed" })).statusCode, 200);
    });

    it("400 invalid_request for an empty, missing, too long or extra-field body", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "draft" });
      for (const body of [{}, { text: "" }, { text: "x".repeat(10_001) }, { text: "ok", status: "read" }, { text: 1 }]) {
        assertError(await patch(msg.id, body), 400, "invalid_request", JSON.stringify(body).slice(0, 40));
      }
      assert.equal((await m.get(msg.id)).text, "draft");
    });
  });

  describe("DELETE", () => {
    it("a queued message is canceled and never sent; the next message of the number still goes out", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "oops" });
      const res = await del(msg.id);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual([res.json().data.status, res.json().data.unsent_at], ["canceled", null]);
      const next = await m.send({ to: SIM.smsOnly, from_handle: FROM, text: "next" });
      await elapse(m.t, 5 * SEC);
      await elapse(m.t, 2 * 60 * MIN, 10 * MIN);
      assert.equal(await statusOf(m.t, msg.id), "canceled");
      assert.deepEqual(await historyOf(m.t, msg.id), []);
      assert.deepEqual((await messageEvents(m.t, m.acct.id, msg.id)).map((e) => e.type), ["message.created"]);
      assert.equal(await statusOf(m.t, next.id), "delivered");
      // A canceled message cannot be canceled again.
      assertError(await del(msg.id), 409, "conflict");
    });

    it("a scheduled message is canceled and never sent, even after its send_at", async () => {
      const msg = await m.send({ to: ANYONE, from_handle: FROM, text: "later", send_at: iso(m.t.clock.now() + 10 * MIN) });
      assert.equal((await del(msg.id)).json().data.status, "canceled");
      await elapse(m.t, 30 * MIN, MIN);
      assert.equal(await statusOf(m.t, msg.id), "canceled");
      assert.deepEqual(await historyOf(m.t, msg.id), []);
    });

    it("a sent iMessage within 2 minutes: unsent_at and a message.unsent event; a second DELETE is 409", async () => {
      const msg = await reach(ANYONE, "read");
      m.t.clock.set(Date.parse(msg.sent_at ?? "") + 2 * MIN);
      const res = await del(msg.id);
      assert.equal(res.statusCode, 200, res.body);
      const data = res.json().data as Message;
      assert.deepEqual([data.status, data.unsent_at], ["read", iso(m.t.clock.now())]);
      assert.deepEqual(await m.get(msg.id), data);
      const unsent = (await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.unsent");
      assert.deepEqual(unsent.map((e) => [e.data.id, e.data.unsent_at]), [[msg.id, data.unsent_at]]);
      assertError(await del(msg.id), 409, "conflict");
      assertError(await patch(msg.id, { text: "edit after unsend" }), 409, "conflict");
    });

    it("409 conflict after 2 minutes, for an SMS, an inbound and a failed message", async () => {
      const late = await reach(ANYONE, "read");
      m.t.clock.set(Date.parse(late.sent_at ?? "") + 2 * MIN + 1);
      assertError(await del(late.id), 409, "conflict", "after 2 minutes");
      const sms = await reach(SIM.smsOnly, "delivered");
      assertError(await del(sms.id), 409, "conflict", "sms");
      assertError(await del((await inbound()).id), 409, "conflict", "inbound");
      assertError(await del((await reach(SIM.fails, "failed")).id), 409, "conflict", "failed");
      assert.equal((await m.get(late.id)).unsent_at, null);
      assert.equal((await eventsOf(m.t, m.acct.id)).filter((e) => e.type === "message.unsent").length, 0);
    });

    it("503 device_offline for an unsend while the device is offline; a queued message is still canceled locally", async () => {
      const msg = await reach(ANYONE, "read");
      const queued = await m.send({ to: ANYONE, from_handle: FROM, text: "q" });
      await m.setStatus(FROM, "offline");
      assertError(await del(msg.id), 503, "device_offline");
      assert.equal((await m.get(msg.id)).unsent_at, null);
      assert.equal((await del(queued.id)).json().data.status, "canceled");
    });
  });
});
