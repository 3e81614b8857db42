import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { AccountsTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { uuidv7 } from "../ids.js";

/** Accounts are managed by the operator (CLI); the public API only reads them through auth. */
export interface Account {
  id: string;
  name: string;
  active: boolean;
  /** Sends per UTC day and mode; null = the server's DAILY_SEND_LIMIT, 0 = no cap. */
  daily_send_limit: number | null;
  created_at: string;
  updated_at: string;
}

const toAccount = (r: AccountsTable): Account => ({ ...r, active: r.active === 1 });

export async function createAccount(db: Tx, clock: Clock, name: string): Promise<Account> {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 200) {
    throw new ApiError("invalid_request", "name must be 1–200 characters.");
  }
  const now = iso(clock.now());
  const row: AccountsTable = { id: uuidv7(clock.now()), name: trimmed, active: 1, daily_send_limit: null, created_at: now, updated_at: now };
  await db.insertInto("accounts").values(row).execute();
  return toAccount(row);
}

export async function listAccounts(db: Tx): Promise<Account[]> {
  const rows = await db.selectFrom("accounts").selectAll().orderBy("created_at").orderBy("id").execute();
  return rows.map(toAccount);
}

export async function getAccount(db: Tx, id: string): Promise<Account> {
  const row = await db.selectFrom("accounts").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) throw new ApiError("not_found", `No account ${id}.`);
  return toAccount(row);
}

export async function setAccountActive(db: Tx, clock: Clock, id: string, active: boolean): Promise<Account> {
  const res = await db
    .updateTable("accounts")
    .set({ active: active ? 1 : 0, updated_at: iso(clock.now()) })
    .where("id", "=", id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw new ApiError("not_found", `No account ${id}.`);
  return getAccount(db, id);
}

/** Sets an account's daily send cap: a number (0 = no cap) or null for the server's DAILY_SEND_LIMIT. */
export async function setDailySendLimit(db: Tx, clock: Clock, id: string, limit: number | null): Promise<Account> {
  if (limit !== null && (!Number.isInteger(limit) || limit < 0)) throw new ApiError("invalid_request", "--daily-limit must be a whole number ≥ 0, or 'default'.");
  const res = await db.updateTable("accounts").set({ daily_send_limit: limit, updated_at: iso(clock.now()) }).where("id", "=", id).executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw new ApiError("not_found", `No account ${id}.`);
  return getAccount(db, id);
}
