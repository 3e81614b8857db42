import type { Db, Tx } from "../db/client.js";
import { sql } from "kysely";
import { prepared, preparedQuery } from "../db/prepared.js";
import type { Mode, SenderLanesTable } from "../db/schema.js";

/**
 * A sender lane is one sending number in one mode: its FIFO of queued messages and its pacing
 * state. Pacing is GCRA with a burst of one — a number never sends more than its pace over any
 * window — and `tat` is persisted, so a restart causes no burst. `ready_at` is the next moment
 * the lane may send, or NULL when it has nothing queued; the dispatcher scans only that index,
 * so its cost does not grow with the queue's length.
 */
export const OFFLINE = Number.MAX_SAFE_INTEGER;

export const laneIdOf = (numberId: string, mode: Mode): string => `${numberId}:${mode}`;

/** Milliseconds between two sends at `perMinute`. */
export const paceInterval = (perMinute: number): number => Math.max(1, Math.ceil(60_000 / perMinute));

export function readyAt(lane: Pick<SenderLanesTable, "tat" | "paused_until" | "pending">): number | null {
  if (lane.pending <= 0 || lane.paused_until >= OFFLINE) return null;
  return Math.max(lane.tat, lane.paused_until);
}

const insertLane = preparedQuery(
  (db, id: string, numberId: string, mode: Mode) =>
    db
      .insertInto("sender_lanes")
      .values({ id, number_id: numberId, mode, tat: sql<number>`0`, paused_until: sql<number>`0`, pending: sql<number>`0`, ready_at: sql<null>`null` })
      .onConflict((oc) => oc.column("id").doNothing()),
  [":id", ":number", "test" as Mode],
);
const selectLane = prepared((db, id: string) => db.selectFrom("sender_lanes").selectAll().where("id", "=", id), [":id"]);
const selectLaneForUpdate = prepared((db, id: string) => db.selectFrom("sender_lanes").selectAll().where("id", "=", id).forUpdate(), [":id"]);
const updateLane = preparedQuery(
  (db, tat: number, pausedUntil: number, pending: number, ready: number | null, id: string) =>
    db.updateTable("sender_lanes").set({ tat, paused_until: pausedUntil, pending, ready_at: ready }).where("id", "=", id),
  [1, 2, 3, 4, ":id"],
);

/** The lane row, created on first use and locked (PostgreSQL) for the rest of the transaction. */
export async function lockLane(trx: Tx, db: Pick<Db, "dialect">, laneId: string, numberId: string, mode: Mode): Promise<SenderLanesTable> {
  await insertLane(trx, laneId, numberId, mode);
  const [lane] = await (db.dialect === "postgres" ? selectLaneForUpdate : selectLane)(trx, laneId);
  if (!lane) throw new Error(`sender lane ${laneId} vanished`);
  return lane;
}

export async function saveLane(trx: Tx, lane: SenderLanesTable): Promise<void> {
  await updateLane(trx, lane.tat, lane.paused_until, lane.pending, readyAt(lane), lane.id);
}

/** Adds `delta` (±) queued messages to a lane. */
export async function adjustPending(trx: Tx, db: Pick<Db, "dialect">, laneId: string, numberId: string, mode: Mode, delta: number): Promise<SenderLanesTable> {
  const lane = await lockLane(trx, db, laneId, numberId, mode);
  lane.pending = Math.max(0, lane.pending + delta);
  await saveLane(trx, lane);
  return lane;
}

/** Pauses (device offline: OFFLINE) or resumes (0) every lane of a number in a mode. */
export async function setLanePaused(trx: Tx, db: Pick<Db, "dialect">, numberId: string, mode: Mode, until: number): Promise<void> {
  const lane = await lockLane(trx, db, laneIdOf(numberId, mode), numberId, mode);
  lane.paused_until = until;
  await saveLane(trx, lane);
}

