// The validity window (api.md §3, reliability.md PACE-R2 / PACE-T03) and a device that goes
// offline: queued messages wait for it, and fail with `expired` (+ message.failed) once the
// window has passed — never to be sent later.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { HOUR, MINUTE, PACE_MS, SECOND, accept, assertPaced, bulkKey, drive, events, history, row, send, setDevice } from "./dispatch-support.js";
import { type SeededAccount, type TestApp, buildTestApp } from "./helpers.js";

const S = "+15555550100";
const TO = "+15555551001";

describe("validity window and an offline device", () => {
  let t: TestApp;
  let acct: SeededAccount;
  let key: string;

  beforeEach(async () => {
    t = await buildTestApp();
    acct = await t.seedAccount();
    key = await bulkKey(t, acct.id);
    await t.addNumber(acct.id, S);
  });
  afterEach(() => t.close());

  const get = async (id: string) => (await t.call(key, "GET", `/v1/messages/${id}`)).json().data;

  it("device offline longer than the window: queued messages fail `expired` with message.failed, and are never sent when it returns (PACE-T03)", async () => {
    const t0 = t.clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await accept(t, key, { to: TO, from_handle: S, text: `m${i}` }));
    await t.app.services.dispatcher.runUntilIdle(); // m0 goes out at once
    await setDevice(t, key, S, "offline");
    // A send while offline is refused outright, so nothing new joins the dead queue.
    const refused = await send(t, key, { to: TO, from_handle: S });
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.json().error, "device_offline");

    // Nine hours offline: everything still waits.
    await drive(t, 9 * HOUR, 10 * MINUTE);
    for (const id of ids.slice(1)) assert.equal((await get(id)).status, "queued");
    // The window (10 h from acceptance) ends: the four left fail, each with one message.failed.
    await drive(t, HOUR, 10 * MINUTE);
    assert.equal(t.clock.now(), t0 + 10 * HOUR);
    for (const id of ids.slice(1)) {
      const m = await get(id);
      assert.equal(m.status, "failed");
      assert.equal(m.error.code, "expired");
      assert.equal(typeof m.error.message, "string");
      assert.equal(m.sent_at, null);
      assert.equal(m.channel, null);
    }
    const failed = await events(t.db, "message.failed");
    assert.deepEqual(failed.map((e) => e.message_id).sort(), ids.slice(1).sort());
    for (const e of failed) {
      const data = JSON.parse(e.data);
      assert.equal(data.status, "failed");
      assert.deepEqual(data.error.code, "expired");
    }
    const lane = await t.db.kysely.selectFrom("sender_lanes").selectAll().executeTakeFirstOrThrow();
    assert.equal(lane.pending, 0);

    // The device returns: nothing expired goes out, ever; the lane works for new messages.
    await setDevice(t, key, S, "online");
    await drive(t, 10 * MINUTE, 10 * SECOND);
    assert.deepEqual((await history(t.db, S)).map((r) => r.message_id), [ids[0]]);
    const fresh = await accept(t, key, { to: TO, from_handle: S });
    await drive(t, 5 * SECOND);
    assert.deepEqual((await history(t.db, S)).map((r) => r.message_id), [ids[0], fresh]);
    for (const id of ids.slice(1)) assert.equal((await get(id)).status, "failed");
    assert.equal((await events(t.db, "message.failed")).length, 4, "no second failure event");
    // The expired messages may be retried through the API: a new attempt, with a new window.
    const retried = await t.call(key, "POST", `/v1/messages/${ids[1]}/retry`);
    assert.equal(retried.statusCode, 202, retried.body);
    await drive(t, 2 * SECOND);
    assert.equal((await get(ids[1] as string)).status, "read");
    assert.equal((await history(t.db, S)).filter((r) => r.message_id === ids[1]).length, 1);
  });

  it("messages queued when the device goes offline wait for it, then go out in order at the pace", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await accept(t, key, { to: TO, from_handle: S }));
    await setDevice(t, key, S, "offline");
    await drive(t, 2 * HOUR, 5 * MINUTE);
    assert.equal((await history(t.db, S)).length, 0);
    for (const id of ids) assert.equal((await row(t.db, id)).status, "queued");
    await setDevice(t, key, S, "online");
    const back = t.clock.now();
    await drive(t, 10 * SECOND);
    const sent = await history(t.db, S);
    assertPaced(sent, ids, PACE_MS);
    assert.deepEqual(sent.map((r) => r.sent_at - back), [0, 1, 2, 3].map((s) => s * SECOND));
    for (const id of ids) assert.equal((await row(t.db, id)).status, "read");
    assert.deepEqual(await events(t.db, "message.failed"), []);
  });

  it("a device that drops offline between claim and send: the message is requeued in its place and sent once it is back", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await accept(t, key, { to: TO, from_handle: S }));
    await drive(t, 0); // ids[0] sent
    // Offline for the device only (the number's status, as the simulator reads it), not the lane:
    // the next claim reaches the device and is refused as definitely-not-sent.
    await t.db.kysely.updateTable("numbers").set({ test_status: "offline" }).execute();
    await drive(t, SECOND, SECOND);
    const m1 = await row(t.db, ids[1] as string);
    assert.equal(m1.status, "queued");
    assert.equal(m1.attempts, 1);
    assert.equal(m1.error_code, null);
    await setDevice(t, key, S, "offline");
    await setDevice(t, key, S, "online");
    await drive(t, 30 * SECOND);
    assertPaced(await history(t.db, S), ids, PACE_MS);
    assert.equal((await row(t.db, ids[1] as string)).attempts, 2);
  });

  it("the window ends exactly 10 h after acceptance: what the lane can send before then goes out, the rest fails", async () => {
    const slow = "+15555550101";
    await t.addNumber(acct.id, slow);
    await t.db.kysely.updateTable("numbers").set({ pace_per_minute: 1 }).where("handle", "=", slow).execute();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await accept(t, key, { to: TO, from_handle: slow }));
    await setDevice(t, key, slow, "offline");
    await drive(t, 10 * HOUR - MINUTE, 30 * MINUTE);
    await setDevice(t, key, slow, "online");
    await drive(t, MINUTE, 10 * SECOND);
    // One went out in the last minute of the window; the other two expired at its end.
    const sent = await history(t.db, slow);
    assert.deepEqual(sent.map((r) => r.message_id), [ids[0]]);
    assert.deepEqual(await Promise.all(ids.map(async (id) => (await row(t.db, id)).status)), ["read", "failed", "failed"]);
  });
});
