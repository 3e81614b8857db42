// Shared pieces of the outbound-engine tests (test/dispatch-*.test.ts): a database that survives
// an app restart, the simulator's device history, and driving the dispatcher on the ManualClock.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { type Db, dropPostgresSchema, openDb } from "../src/db/client.js";
import type { EventsTable, MessagesTable, SimulatorHistoryTable } from "../src/db/schema.js";
import { updateNumber } from "../src/numbers/store.js";
import { DATABASE_URL, type TestApp } from "./helpers.js";

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
/** The default pace (60/min) as an interval. */
export const PACE_MS = SECOND;

/**
 * Storage that outlives one connection: a SQLite file in a temp folder, or a PostgreSQL schema.
 * `open()` may be called again after the previous Db is closed: that is a restart.
 */
export function persistentStorage(): { open(): Promise<Db>; cleanup(): Promise<void>; env: Record<string, string> } {
  if (DATABASE_URL) {
    const url = DATABASE_URL;
    const schema = `d_${randomBytes(6).toString("hex")}`;
    const sep = url.includes("?") ? "&" : "?";
    return {
      open: () => openDb({ databaseUrl: url, schema }),
      cleanup: () => dropPostgresSchema(url, schema),
      env: { DATABASE_URL: `${url}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}` },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), "mb-dispatch-"));
  return {
    open: () => openDb({ dataDir: dir }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    env: { DATA_DIR: dir },
  };
}

/** A test key that the per-key rate limit never stops (these tests send hundreds of messages). */
export const bulkKey = (t: TestApp, accountId: string) => t.newKey(accountId, "test", 1_000_000);

export function send(t: TestApp, key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.call(key, "POST", "/v1/messages", { text: "hi", ...body }, headers);
}

/** POST /v1/messages expecting 202; returns the message id. */
export async function accept(t: TestApp, key: string, body: Record<string, unknown>): Promise<string> {
  const res = await send(t, key, body);
  assert.equal(res.statusCode, 202, res.body);
  return res.json().data.id as string;
}

export async function setPace(t: TestApp, handle: string, pace: number | null): Promise<void> {
  await updateNumber(t.db.kysely, t.clock, handle, { pace });
}

export async function setDevice(t: TestApp, key: string, handle: string, status: "online" | "offline"): Promise<void> {
  const res = await t.call(key, "POST", `/v1/test_helpers/numbers/${encodeURIComponent(handle)}/status`, { status });
  assert.equal(res.statusCode, 200, res.body);
}

/** The simulator's device history: what actually reached "the network", in send order. */
export async function history(db: Db, fromHandle?: string): Promise<SimulatorHistoryTable[]> {
  let q = db.kysely.selectFrom("simulator_history").selectAll();
  if (fromHandle) q = q.where("from_handle", "=", fromHandle);
  return q.orderBy("sent_at").orderBy("message_id").execute();
}

export async function row(db: Db, id: string): Promise<MessagesTable> {
  return db.kysely.selectFrom("messages").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
}

export async function events(db: Db, type?: string): Promise<(EventsTable & { message_id: string })[]> {
  let q = db.kysely.selectFrom("events").selectAll();
  if (type) q = q.where("type", "=", type);
  const rows = await q.orderBy("id").execute();
  return rows.map((e) => ({ ...e, message_id: (JSON.parse(e.data) as { id?: string }).id ?? "" }));
}

/** Runs the dispatcher at the current instant, then steps the clock by `step` until `ms` have passed. */
export async function drive(t: TestApp, ms: number, step = PACE_MS): Promise<void> {
  const end = t.clock.now() + ms;
  const d = t.app.services.dispatcher;
  await d.runUntilIdle();
  while (t.clock.now() < end) {
    t.clock.advance(Math.min(step, end - t.clock.now()));
    await d.runUntilIdle();
  }
}

/** Asserts one lane's history: exactly `ids`, in that order, each send ≥ `interval` after the previous. */
export function assertPaced(rows: SimulatorHistoryTable[], ids: string[], interval: number, label = ""): void {
  assert.deepEqual(rows.map((r) => r.message_id), ids, `${label} FIFO order`);
  for (let i = 1; i < rows.length; i++) {
    const gap = (rows[i]?.sent_at ?? 0) - (rows[i - 1]?.sent_at ?? 0);
    assert.ok(gap >= interval, `${label} send ${i} came ${gap} ms after the previous one (pace ${interval} ms)`);
  }
  for (const r of rows) assert.equal(r.sends, 1, `${label} ${r.message_id} was sent ${r.sends} times`);
}
