// Scheduled sends (`send_at`, api.md §5): `scheduled` until due, then queued in the number's lane
// and sent at its pace; DELETE before then cancels for good.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { HOUR, MINUTE, PACE_MS, SECOND, accept, assertPaced, bulkKey, drive, events, history, row, send, setDevice } from "./dispatch-support.js";
import { type SeededAccount, type TestApp, buildTestApp } from "./helpers.js";

const S = "+15555550100";
const TO = "+15555551001";

describe("scheduled sends", () => {
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

  const at = (ms: number) => new Date(t.clock.now() + ms).toISOString();
  const get = async (id: string) => (await t.call(key, "GET", `/v1/messages/${id}`)).json().data;

  it("stays `scheduled` until send_at, then is queued and sent at that instant; sent → delivered → read follow", async () => {
    const due = at(HOUR);
    const res = await send(t, key, { to: TO, from_handle: S, text: "later", send_at: due });
    assert.equal(res.statusCode, 202, res.body);
    const m = res.json().data;
    assert.equal(m.status, "scheduled");
    assert.equal(m.send_at, due);
    await drive(t, HOUR - SECOND, 5 * MINUTE);
    assert.equal((await get(m.id)).status, "scheduled");
    assert.equal((await history(t.db)).length, 0);
    assert.deepEqual(await events(t.db, "message.sent"), []);

    t.clock.advance(SECOND);
    await t.app.services.dispatcher.runUntilIdle();
    const sent = await get(m.id);
    assert.equal(sent.status, "sent");
    assert.equal(sent.sent_at, due);
    assert.deepEqual((await history(t.db)).map((r) => [r.message_id, r.sent_at, r.text]), [[m.id, Date.parse(due), "later"]]);
    await drive(t, 2 * SECOND, 100);
    const read = await get(m.id);
    assert.equal(read.status, "read");
    assert.deepEqual((await events(t.db)).filter((e) => e.message_id === m.id).map((e) => e.type), ["message.created", "message.sent", "message.delivered", "message.read"]);
  });

  it("a due scheduled message joins the end of its lane's queue and keeps the pace", async () => {
    const scheduled = await accept(t, key, { to: TO, from_handle: S, send_at: at(2 * SECOND) });
    const now: string[] = [];
    for (let i = 0; i < 4; i++) now.push(await accept(t, key, { to: TO, from_handle: S }));
    await drive(t, 10 * SECOND, 500);
    // It became due at 2 s, behind the two immediate messages still queued then.
    assertPaced(await history(t.db, S), [...now, scheduled], PACE_MS);
  });

  it("DELETE before send_at cancels it: never sent, no sent event, and a DELETE after that is a 409", async () => {
    const id = await accept(t, key, { to: TO, from_handle: S, send_at: at(10 * MINUTE) });
    await drive(t, 5 * MINUTE, MINUTE);
    const del = await t.call(key, "DELETE", `/v1/messages/${id}`);
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(del.json().data.status, "canceled");
    await drive(t, HOUR, MINUTE);
    assert.equal((await get(id)).status, "canceled");
    assert.equal((await history(t.db)).length, 0);
    assert.deepEqual(await events(t.db, "message.sent"), []);
    assert.equal((await t.call(key, "DELETE", `/v1/messages/${id}`)).statusCode, 409);
    // The lane's count was never touched by the scheduled message.
    const lanes = await t.db.kysely.selectFrom("sender_lanes").select("pending").execute();
    for (const l of lanes) assert.equal(l.pending, 0);
  });

  it("DELETE of a queued message removes it from the lane; the others keep their order and pace", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await accept(t, key, { to: TO, from_handle: S }));
    await drive(t, 0);
    assert.equal((await t.call(key, "DELETE", `/v1/messages/${ids[2]}`)).json().data.status, "canceled");
    await drive(t, 5 * SECOND);
    const sent = await history(t.db, S);
    assertPaced(sent, [ids[0], ids[1], ids[3]] as string[], PACE_MS);
    assert.deepEqual(sent.map((r) => r.sent_at - (sent[0]?.sent_at ?? 0)), [0, SECOND, 2 * SECOND]);
    assert.equal((await t.db.kysely.selectFrom("sender_lanes").select("pending").executeTakeFirstOrThrow()).pending, 0);
  });

  it("a send for later is accepted while the device is offline (202 scheduled); a send for now is 503", async () => {
    await setDevice(t, key, S, "offline");
    const later = await send(t, key, { to: TO, from_handle: S, send_at: at(HOUR) });
    assert.equal(later.statusCode, 202, later.body);
    assert.equal(later.json().data.status, "scheduled");
    const now = await send(t, key, { to: TO, from_handle: S, text: "now" });
    assert.equal(now.statusCode, 503);
    assert.equal(now.json().error, "device_offline");
  });

  it("send_at in the past means now: queued at once", async () => {
    const res = await send(t, key, { to: TO, from_handle: S, send_at: at(-MINUTE) });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().data.status, "queued");
    await t.app.services.dispatcher.runUntilIdle();
    assert.equal((await row(t.db, res.json().data.id)).status, "sent");
  });

  it("the validity window of a scheduled message starts at send_at; offline past it at that time → expired", async () => {
    const due = 2 * HOUR;
    const ids = [await accept(t, key, { to: TO, from_handle: S, send_at: at(due) }), await accept(t, key, { to: TO, from_handle: S, send_at: at(due) })];
    await setDevice(t, key, S, "offline");
    // Due while the device is offline: queued, waiting.
    await drive(t, due, 30 * MINUTE);
    for (const id of ids) assert.equal((await row(t.db, id)).status, "queued");
    // The window ends 10 h after send_at (not after acceptance): one second before its end the
    // device returns; the first goes, the second would be due exactly at the end and expires.
    await drive(t, 10 * HOUR - SECOND, 30 * MINUTE);
    await setDevice(t, key, S, "online");
    await drive(t, 3 * SECOND);
    assert.deepEqual((await history(t.db, S)).map((r) => r.message_id), [ids[0]]);
    const late = await get(ids[1] as string);
    assert.equal(late.status, "failed");
    assert.equal(late.error.code, "expired");
  });
});
