import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { Mode, NumbersTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { isPhoneHandle, normaliseHandle } from "../handles.js";
import { uuidv7 } from "../ids.js";
import { getAccount } from "../accounts/store.js";
import { prepared } from "../db/prepared.js";

export const CHANNELS = ["imessage", "sms", "whatsapp"] as const;
export type Channel = (typeof CHANNELS)[number];

import { type BackendSettings, checkBackend, checkServed, withBackend } from "./backend-config.js";

/** The operator's full view of a number (CLI). The public API shows a subset (numbers/schemas.ts). */
export interface NumberRecord {
  id: string;
  account_id: string;
  handle: string;
  channels: Channel[];
  label: string | null;
  backend: string;
  pace_per_minute: number | null;
  status: "online" | "offline";
  test_status: "online" | "offline";
  created_at: string;
  updated_at: string;
}

const toRecord = (r: NumbersTable): NumberRecord => ({
  id: r.id,
  account_id: r.account_id,
  handle: r.handle,
  channels: r.channels.split(",") as Channel[],
  label: r.label,
  backend: r.backend,
  pace_per_minute: r.pace_per_minute,
  status: r.status,
  test_status: r.test_status,
  created_at: r.created_at,
  updated_at: r.updated_at,
});

export function parseChannels(input: string | readonly string[]): Channel[] {
  const parts = (typeof input === "string" ? input.split(",") : [...input]).map((c) => c.trim().toLowerCase()).filter(Boolean);
  const bad = parts.filter((p) => !(CHANNELS as readonly string[]).includes(p));
  if (parts.length === 0 || bad.length > 0) {
    throw new ApiError("invalid_request", `channels must be a comma-separated subset of ${CHANNELS.join(",")}${bad.length ? ` (unknown: ${bad.join(",")})` : ""}.`);
  }
  return CHANNELS.filter((c) => parts.includes(c));
}

function checkPace(pace: number | null | undefined): number | null {
  if (pace === undefined || pace === null) return null;
  if (!Number.isInteger(pace) || pace < 1 || pace > 6000) {
    throw new ApiError("invalid_request", "pace must be a whole number of messages per minute, 1–6000.");
  }
  return pace;
}

function checkLabel(label: string | null | undefined): string | null {
  if (label === undefined || label === null) return null;
  if (label.length > 100) throw new ApiError("invalid_request", "label must be at most 100 characters.");
  return label;
}

function checkHandle(handle: string): string {
  if (!isPhoneHandle(handle)) throw new ApiError("invalid_handle", `${handle} is not a valid E.164 phone number.`);
  return normaliseHandle(handle)?.handle ?? handle;
}

export interface AddNumberInput {
  accountId: string;
  handle: string;
  channels: string | readonly string[];
  backend: string;
  /** The real back-end's settings (--url, --password, --api-key, --session). */
  settings?: BackendSettings | undefined;
  label?: string | null | undefined;
  pace?: number | null | undefined;
}

export async function addNumber(db: Tx, clock: Clock, input: AddNumberInput): Promise<NumberRecord> {
  const handle = checkHandle(input.handle);
  const channels = parseChannels(input.channels);
  const backend = withBackend(null, checkBackend(input.backend), input.settings ?? {}, channels);
  const row: NumbersTable = {
    id: uuidv7(clock.now()),
    account_id: input.accountId,
    handle,
    channels: channels.join(","),
    label: checkLabel(input.label),
    ...backend,
    pace_per_minute: checkPace(input.pace),
    status: "online",
    test_status: "online",
    offline_channels: "",
    created_at: iso(clock.now()),
    updated_at: iso(clock.now()),
  };
  await getAccount(db, input.accountId);
  const taken = await db.selectFrom("numbers").select("id").where("handle", "=", handle).executeTakeFirst();
  if (taken) throw new ApiError("conflict", `${handle} is already assigned.`);
  await db.insertInto("numbers").values(row).execute();
  return toRecord(row);
}

export async function getNumber(db: Tx, handle: string): Promise<NumberRecord> {
  const h = normaliseHandle(handle)?.handle ?? handle;
  const row = await db.selectFrom("numbers").selectAll().where("handle", "=", h).executeTakeFirst();
  if (!row) throw new ApiError("not_found", `No number ${handle}.`);
  return toRecord(row);
}

const accountNumbersQuery = prepared((db, accountId: string) => db.selectFrom("numbers").selectAll().where("account_id", "=", accountId).orderBy("handle"), [""]);

/** One account's numbers (GET /v1/numbers, on every call: compiled once). */
export async function accountNumbers(db: Tx, accountId: string): Promise<NumberRecord[]> {
  return (await accountNumbersQuery(db, accountId)).map(toRecord);
}

export async function listNumbers(db: Tx, accountId?: string): Promise<NumberRecord[]> {
  let q = db.selectFrom("numbers").selectAll();
  if (accountId !== undefined) q = q.where("account_id", "=", accountId);
  const rows = await q.orderBy("handle").execute();
  return rows.map(toRecord);
}

export interface UpdateNumberInput {
  channels?: string | readonly string[] | undefined;
  backend?: string | undefined;
  settings?: BackendSettings | undefined;
  label?: string | null | undefined;
  pace?: number | null | undefined;
}

export async function updateNumber(db: Tx, clock: Clock, handle: string, input: UpdateNumberInput): Promise<NumberRecord> {
  const current = await getNumber(db, handle);
  const row = await db.selectFrom("numbers").select(["backend", "backend_config"]).where("id", "=", current.id).executeTakeFirstOrThrow();
  const set: Partial<NumbersTable> = { updated_at: iso(clock.now()) };
  const channels = input.channels !== undefined ? parseChannels(input.channels) : current.channels;
  set.channels = channels.join(",");
  if (input.backend !== undefined) Object.assign(set, withBackend(row, checkBackend(input.backend), input.settings ?? {}, channels));
  else checkServed(row.backend.split(","), channels);
  if (input.label !== undefined) set.label = checkLabel(input.label);
  if (input.pace !== undefined) set.pace_per_minute = checkPace(input.pace);
  await db.updateTable("numbers").set(set).where("id", "=", current.id).execute();
  return getNumber(db, current.handle);
}

export async function removeNumber(db: Tx, handle: string): Promise<NumberRecord> {
  const current = await getNumber(db, handle);
  await db.deleteFrom("numbers").where("id", "=", current.id).execute();
  return current;
}

/** A number's status as the given mode sees it: test keys see the simulator's status. */
export function statusFor(n: Pick<NumberRecord, "status" | "test_status">, mode: Mode): "online" | "offline" {
  return mode === "test" ? n.test_status : n.status;
}
