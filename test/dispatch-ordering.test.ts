// Ordering (api.md §5 "Ordering", reliability.md INV-5) and forward-only statuses (INV-3):
// messages of a thread go out in accept order; a message waiting on pacing or on a transient
// device error is never overtaken by a later message of its number; late or repeated device acks
// never move a status back.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { iso } from "../src/clock.js";
import { SIM } from "../src/backends/simulator.js";
import { applyDeviceEvents } from "../src/messages/ingest.js";
import { PACE_MS, SECOND, accept, assertPaced, bulkKey, drive, events, history, row } from "./dispatch-support.js";
import { type ScriptedApp, buildScriptedApp } from "./dispatch-device.js";

const S = "+15555550100";
const OTHER = "+15555550101";
const A = "+15555551001";
const B = "+15555551002";

describe("ordering per number and thread", () => {
  let t: ScriptedApp;
  let key: string;

  beforeEach(async () => {
    t = await buildScriptedApp();
    const acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
    await t.addNumber(acct.id, S);
    await t.addNumber(acct.id, OTHER);
  });
  afterEach(() => t.close());

  const post = (from: string, to: string, text: string) => accept(t, key, { from_handle: from, to, text });

  it("one thread: the device gets its messages in accept order; sent_at follows it", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await post(S, A, `a${i}`));
    await drive(t, 25 * SECOND);
    assertPaced(await history(t.db, S), ids, PACE_MS);
    const chat = (await row(t.db, ids[0] as string)).chat_id;
    const listed = (await t.call(key, "GET", `/v1/messages?conversation_id=${chat}&limit=100`)).json().data as { id: string; sent_at: string }[];
    const bySent = [...listed].sort((x, y) => x.sent_at.localeCompare(y.sent_at)).map((m) => m.id);
    assert.deepEqual(bySent, ids);
  });

  it("interleaved threads of one number share one FIFO; another number's lane runs beside it", async () => {
    const lane: string[] = [];
    const other: string[] = [];
    for (let i = 0; i < 6; i++) {
      lane.push(await post(S, i % 2 ? B : A, `s${i}`));
      other.push(await post(OTHER, A, `o${i}`));
    }
    await drive(t, 8 * SECOND);
    assertPaced(await history(t.db, S), lane, PACE_MS, "S");
    assertPaced(await history(t.db, OTHER), other, PACE_MS, "OTHER");
  });

  it("a transient refusal puts the message back at the head of its lane: the lane backs off and nothing overtakes it", async () => {
    t.device.script("a0", "refuse", "refuse");
    const ids = [await post(S, A, "a0"), await post(S, A, "a1"), await post(S, B, "b2")];
    const other = [await post(OTHER, A, "o0"), await post(OTHER, A, "o1")];
    const t0 = t.clock.now();
    await drive(t, 0);
    const waiting = await row(t.db, ids[0] as string);
    assert.equal(waiting.status, "queued");
    assert.equal(waiting.error_code, null);
    assert.equal(waiting.attempts, 1);
    // a1 would be due after one pace interval, but a0 is backing off (5 s ± 20 %, then 10 s ± 20 %).
    await drive(t, 3 * SECOND, 250);
    assert.deepEqual(await history(t.db, S), []);
    assertPaced(await history(t.db, OTHER), other, PACE_MS, "the other number is not held up");
    await drive(t, 30 * SECOND, 250);
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS);
    assert.ok((sent[0]?.sent_at ?? 0) - t0 >= (4 + 8) * SECOND, "two backoffs before the third attempt");
    assert.deepEqual(t.device.calls.filter(([k]) => k === "a0").map(([, s]) => s), ["refuse", "refuse", "ok"]);
    assert.equal((await row(t.db, ids[0] as string)).attempts, 3);
    assert.deepEqual(await events(t.db, "message.failed"), []);
  });

  it("a permanent failure does not hold the lane: the next message follows at the pace", async () => {
    const ids = [await post(S, SIM.fails, "x"), await post(S, A, "a1"), await post(S, A, "a2")];
    await drive(t, 3 * SECOND);
    const failed = await row(t.db, ids[0] as string);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error_code, "undeliverable");
    assert.deepEqual((await history(t.db, S)).map((r) => r.message_id), ids.slice(1));
    assert.deepEqual((await events(t.db, "message.failed")).map((e) => e.message_id), [ids[0]]);
  });

  it("ambiguous send that did reach the device: reconciled as sent, never sent twice, order kept, channel recorded", async () => {
    t.device.script("a0", "ack-lost");
    const ids = [await post(S, A, "a0"), await post(S, A, "a1")];
    await drive(t, 5 * SECOND);
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS);
    assert.deepEqual(t.device.reconciles, ["a0"]);
    const m = await row(t.db, ids[0] as string);
    assert.equal(m.status, "read");
    assert.equal(m.device_message_id, `sim-${ids[0]}`);
    assert.equal(m.channel, "imessage", "a reconciled send records the channel it went out on");
    assert.equal(m.lease_token, null);
    const sentEvents = (await events(t.db, "message.sent")).filter((e) => e.message_id === ids[0]);
    assert.equal(sentEvents.length, 1);
    assert.equal(JSON.parse(sentEvents[0]?.data ?? "{}").channel, "imessage");
    const chat = await t.db.kysely.selectFrom("chats").select("channel").where("id", "=", m.chat_id).executeTakeFirstOrThrow();
    assert.equal(chat.channel, "imessage", "the chat learns its channel from its first send");
  });

  it("ambiguous send that did not reach the device: reconciled as absent, resent once, still first", async () => {
    t.device.script("a0", "lost");
    const ids = [await post(S, A, "a0"), await post(S, A, "a1"), await post(S, A, "a2")];
    await drive(t, 5 * SECOND);
    assertPaced(await history(t.db, S), ids, PACE_MS);
    assert.deepEqual(t.device.calls.filter(([k]) => k === "a0").map(([, s]) => s), ["lost", "ok"]);
    assert.equal((await row(t.db, ids[0] as string)).attempts, 2);
  });

  it("device unreachable while reconciling: the message stays unresolved and no later message of its number overtakes it", async () => {
    t.device.script("a0", "lost");
    t.device.unknownReconciles.set("a0", 2);
    const ids = [await post(S, A, "a0"), await post(S, A, "a1"), await post(S, B, "b2")];
    await drive(t, 0);
    assert.equal((await row(t.db, ids[0] as string)).status, "sending");
    // Two reconciliations fail a lease apart (60 s each); meanwhile a1 and b2 must wait.
    await drive(t, 90 * SECOND, 5 * SECOND);
    assert.deepEqual(await history(t.db, S), [], "nothing overtook the unresolved message");
    assert.equal((await row(t.db, ids[1] as string)).status, "queued");
    await drive(t, 60 * SECOND, 5 * SECOND);
    assert.deepEqual(t.device.reconciles, ["a0", "a0", "a0"]);
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS);
  });
});

describe("status only moves forward (INV-3)", () => {
  let t: ScriptedApp;
  let key: string;

  beforeEach(async () => {
    t = await buildScriptedApp();
    const acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
    await t.addNumber(acct.id, S);
  });
  afterEach(() => t.close());

  const apply = (evs: Parameters<typeof applyDeviceEvents>[2]) => t.db.transaction((trx) => applyDeviceEvents(trx, t.clock, evs));
  const typesOf = async (id: string) => (await events(t.db)).filter((e) => e.message_id === id).map((e) => e.type);

  it("a late `delivered` after `read`, a repeated `read`, and a device `failed` after delivery change nothing", async () => {
    const id = await accept(t, key, { to: A, from_handle: S });
    await drive(t, 2 * SECOND, 100);
    const read = await row(t.db, id);
    assert.equal(read.status, "read");
    const dev = `sim-${id}`;
    const later = t.clock.now() + SECOND;
    await apply([
      { kind: "delivered", deviceId: dev, at: later },
      { kind: "read", deviceId: dev, at: later },
      { kind: "failed", deviceId: dev, code: "undeliverable", message: "late failure" },
    ]);
    const after = await row(t.db, id);
    assert.equal(after.status, "read");
    assert.equal(after.delivered_at, read.delivered_at);
    assert.equal(after.read_at, read.read_at);
    assert.equal(after.error_code, null);
    assert.deepEqual(await typesOf(id), ["message.created", "message.sent", "message.delivered", "message.read"]);
  });

  it("acks out of order: `read` first fills in delivered_at; the `delivered` that arrives after it is ignored", async () => {
    const id = await accept(t, key, { to: SIM.neverDelivered, from_handle: S }); // the simulator never acks it
    await drive(t, 5 * SECOND);
    assert.equal((await row(t.db, id)).status, "sent");
    const at = t.clock.now();
    await apply([{ kind: "read", deviceId: `sim-${id}`, at }]);
    await apply([{ kind: "delivered", deviceId: `sim-${id}`, at: at - 500 }]);
    const m = await row(t.db, id);
    assert.equal(m.status, "read");
    assert.equal(m.read_at, iso(at));
    assert.equal(m.delivered_at, iso(at));
    assert.deepEqual(await typesOf(id), ["message.created", "message.sent", "message.read"]);
  });

  it("acks never revive a failed or canceled message, nor skip `sent` for one not sent yet", async () => {
    const failed = await accept(t, key, { to: SIM.fails, from_handle: S });
    const canceled = await accept(t, key, { to: A, from_handle: S });
    assert.equal((await t.call(key, "DELETE", `/v1/messages/${canceled}`)).statusCode, 200);
    await drive(t, 2 * SECOND);
    const queued = await accept(t, key, { to: A, from_handle: S });
    // None of them has a device id; give each one, as if an ack arrived for it anyway, to prove
    // that the status rank alone keeps them where they are.
    for (const id of [failed, canceled, queued]) {
      await t.db.kysely.updateTable("messages").set({ device_message_id: `sim-${id}` }).where("id", "=", id).execute();
    }
    const at = t.clock.now();
    await apply([failed, canceled, queued].flatMap((id) => [
      { kind: "delivered" as const, deviceId: `sim-${id}`, at },
      { kind: "read" as const, deviceId: `sim-${id}`, at },
    ]));
    assert.equal((await row(t.db, failed)).status, "failed");
    assert.equal((await row(t.db, canceled)).status, "canceled");
    assert.equal((await row(t.db, queued)).status, "queued");
    assert.deepEqual(await typesOf(canceled), ["message.created"]);
    assert.deepEqual(await typesOf(queued), ["message.created"]);
    assert.deepEqual(await typesOf(failed), ["message.created", "message.failed"]);
  });
});
