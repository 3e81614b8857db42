// GET /v1/messages (api.md §1 Pagination, §5 Messages): newest first, limit/has_more, `before` as a
// timestamp and as an id (exact when timestamps tie), the filters, and test/live separation.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { ANYONE, assertError, FROM, iso, type Message, type Messaging, messagingApp, OTHER_FROM, SIM, SEC, untilStatus } from "./messaging-helpers.js";

describe("GET /v1/messages", () => {
  let m: Messaging;
  const list = async (query = "", key = m.acct.testKey) => {
    const res = await m.t.call(key, "GET", `/v1/messages${query}`);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ["data", "has_more", "request_id"]);
    return body as { data: Message[]; has_more: boolean };
  };
  const ids = (items: Message[]) => items.map((x) => x.id);
  /** Every page of a query, following `before=<last id>`. */
  const allPages = async (query: string) => {
    const pages: string[][] = [];
    let before = "";
    for (;;) {
      const page = await list(`${query}${before ? `&before=${before}` : ""}`);
      pages.push(ids(page.data));
      if (!page.has_more) return pages;
      before = page.data.at(-1)?.id ?? assert.fail("has_more on an empty page");
    }
  };

  beforeEach(async () => {
    m = await messagingApp();
  });
  afterEach(() => m.close());

  it("an empty list is { data: [], has_more: false }", async () => {
    const empty = await list();
    assert.deepEqual([empty.data, empty.has_more], [[], false]);
  });

  it("newest first by created_at; limit and has_more; `before` as a timestamp returns strictly older items", async () => {
    const sent: Message[] = [];
    for (let i = 0; i < 5; i++) {
      sent.push(await m.send({ to: ANYONE, from_handle: FROM, text: `m${i}` }));
      m.t.clock.advance(SEC);
    }
    const newest = [...sent].reverse();
    assert.deepEqual(ids((await list()).data), ids(newest));
    const first = await list("?limit=2");
    assert.deepEqual([ids(first.data), first.has_more], [ids(newest.slice(0, 2)), true]);
    assert.deepEqual((await list("?limit=5")).has_more, false);
    // A timestamp: items created strictly before it.
    const t2 = sent[2]?.created_at ?? "";
    assert.deepEqual(ids((await list(`?before=${t2}`)).data), ids(newest.slice(3)));
    assert.deepEqual(ids((await list(`?before=${iso(Date.parse(t2) + 1)}`)).data), ids(newest.slice(2)));
    const older = await list(`?before=${t2}&limit=1`);
    assert.deepEqual([ids(older.data), older.has_more], [[sent[1]?.id], true]);
    // The message objects in a list are the same as GET /v1/messages/:id.
    assert.deepEqual((await list("?limit=1")).data[0], await m.get(sent[4]?.id ?? ""));
  });

  it("`before` as an id is exact when timestamps tie: pages of 2 over 7 messages of one millisecond cover each once, in order", async () => {
    const sent: Message[] = [];
    for (let i = 0; i < 7; i++) sent.push(await m.send({ to: ANYONE, from_handle: FROM, text: `tie ${i}` }));
    assert.equal(new Set(sent.map((x) => x.created_at)).size, 1, "the ManualClock did not move: every created_at ties");
    const pages = await allPages("?limit=2");
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 2, 1]);
    assert.deepEqual(pages.flat(), ids(sent).reverse());
    // With a tie, a timestamp cursor cannot split the group: `before` = that instant skips all of them.
    assert.deepEqual((await list(`?before=${sent[0]?.created_at}`)).data, []);
  });

  it("`before` as an id works across distinct timestamps and ties mixed", async () => {
    const sent: Message[] = [];
    for (let i = 0; i < 6; i++) {
      sent.push(await m.send({ to: ANYONE, from_handle: FROM, text: `mix ${i}` }));
      if (i % 2 === 1) m.t.clock.advance(1);
    }
    assert.deepEqual((await allPages("?limit=4")).flat(), ids(sent).reverse());
    assert.deepEqual(ids((await list(`?before=${sent[3]?.id}`)).data), ids(sent.slice(0, 3)).reverse());
  });

  it("filters: conversation_id, direction, status — alone and combined", async () => {
    const a1 = await m.send({ to: ANYONE, from_handle: FROM, text: "a1" });
    const b1 = await m.send({ to: SIM.fails, from_handle: FROM, text: "b1" });
    const a2 = await m.send({ conversation_id: a1.conversation_id, text: "a2" });
    const inbound = await m.t.call(m.acct.testKey, "POST", "/v1/test_helpers/inbound", { from_handle: FROM, remote_handle: ANYONE, text: "in" });
    assert.equal(inbound.statusCode, 201, inbound.body);
    const in1 = inbound.json().data as Message;
    assert.equal(in1.conversation_id, a1.conversation_id);
    await untilStatus(m.t, b1.id, "failed");
    await untilStatus(m.t, a2.id, "read");

    assert.deepEqual(ids((await list(`?conversation_id=${a1.conversation_id}`)).data), [in1.id, a2.id, a1.id]);
    assert.deepEqual(ids((await list(`?conversation_id=${b1.conversation_id}`)).data), [b1.id]);
    assert.deepEqual(ids((await list("?direction=inbound")).data), [in1.id]);
    assert.deepEqual(ids((await list("?direction=outbound")).data), [a2.id, b1.id, a1.id]);
    assert.deepEqual(ids((await list("?status=failed")).data), [b1.id]);
    assert.deepEqual(ids((await list("?status=read")).data), [a2.id, a1.id]);
    assert.deepEqual(ids((await list("?status=received")).data), [in1.id]);
    assert.deepEqual(ids((await list("?status=queued")).data), []);
    assert.deepEqual(ids((await list(`?conversation_id=${a1.conversation_id}&direction=outbound&limit=1`)).data), [a2.id]);
    assert.deepEqual(ids((await list(`?conversation_id=${a1.conversation_id}&direction=outbound&before=${a2.id}`)).data), [a1.id]);
    // Another account's conversation filters to nothing (no 404: it is a filter, not a lookup).
    const theirs = await m.send({ to: ANYONE, from_handle: OTHER_FROM, text: "x" }, m.other.testKey);
    assert.deepEqual((await list(`?conversation_id=${theirs.conversation_id}`)).data, []);
  });

  it("test and live keys see only their own mode's messages; other accounts' never", async () => {
    const test = await m.send({ to: ANYONE, from_handle: FROM, text: "test" });
    const live = await m.send({ to: ANYONE, from_handle: FROM, text: "live" }, m.acct.liveKey);
    await m.send({ to: ANYONE, from_handle: OTHER_FROM, text: "other" }, m.other.testKey);
    assert.deepEqual(ids((await list()).data), [test.id]);
    assert.deepEqual(ids((await list("", m.acct.liveKey)).data), [live.id]);
    // An id cursor of the other mode names no item of this list.
    assertError(await m.t.call(m.acct.testKey, "GET", `/v1/messages?before=${live.id}`), 400, "invalid_request");
  });

  it("400 invalid_request for a bad limit, before, filter value or an unknown parameter; limit defaults to 50", async () => {
    for (const q of ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "before=yesterday", "before=2026-13-45T00:00:00Z", "direction=sideways", "status=lost", "conversation_id=abc", "colour=blue", `before=${"01a00000-0000-7000-8000-000000000000"}`]) {
      assertError(await m.t.call(m.acct.testKey, "GET", `/v1/messages?${q}`), 400, "invalid_request", q);
    }
    for (let i = 0; i < 51; i++) await m.send({ to: ANYONE, from_handle: FROM, text: `n${i}` });
    const page = await list();
    assert.deepEqual([page.data.length, page.has_more], [50, true]);
    const full = await list("?limit=100");
    assert.deepEqual([full.data.length, full.has_more], [51, false]);
  });
});
