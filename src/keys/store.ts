import { getAccount } from "../accounts/store.js";
import { iso, type Clock } from "../clock.js";
import type { Tx } from "../db/client.js";
import type { ApiKeysTable, Mode } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { uuidv7 } from "../ids.js";
import { prepared } from "../db/prepared.js";
import { generateKey, hashKey, keyPrefix } from "./secret.js";

export interface ApiKey {
  id: string;
  account_id: string;
  mode: Mode;
  prefix: string;
  rate_limit: number | null;
  created_at: string;
  revoked_at: string | null;
}

const toKey = (r: ApiKeysTable): ApiKey => ({
  id: r.id,
  account_id: r.account_id,
  mode: r.mode,
  prefix: r.key_prefix,
  rate_limit: r.rate_limit,
  created_at: r.created_at,
  revoked_at: r.revoked_at,
});

export interface CreateKeyInput {
  accountId: string;
  mode: Mode;
  /** Requests per minute; omitted = the server default. */
  rateLimit?: number | undefined;
}

/** Creates a key and returns its plaintext once; only its hash is stored. */
export async function createKey(db: Tx, clock: Clock, input: CreateKeyInput): Promise<ApiKey & { key: string }> {
  if (input.mode !== "live" && input.mode !== "test") throw new ApiError("invalid_request", "mode must be test or live.");
  if (input.rateLimit !== undefined && (!Number.isInteger(input.rateLimit) || input.rateLimit < 1 || input.rateLimit > 1_000_000)) {
    throw new ApiError("invalid_request", "rate limit must be a whole number of requests per minute, 1–1000000.");
  }
  await getAccount(db, input.accountId);
  const key = generateKey(input.mode);
  const row: ApiKeysTable = {
    id: uuidv7(clock.now()),
    account_id: input.accountId,
    mode: input.mode,
    key_hash: hashKey(key),
    key_prefix: keyPrefix(key),
    rate_limit: input.rateLimit ?? null,
    created_at: iso(clock.now()),
    revoked_at: null,
  };
  await db.insertInto("api_keys").values(row).execute();
  return { ...toKey(row), key };
}

export async function listKeys(db: Tx, accountId: string): Promise<ApiKey[]> {
  await getAccount(db, accountId);
  const rows = await db.selectFrom("api_keys").selectAll().where("account_id", "=", accountId).orderBy("created_at").orderBy("id").execute();
  return rows.map(toKey);
}

export async function revokeKey(db: Tx, clock: Clock, id: string): Promise<ApiKey> {
  const row = await db.selectFrom("api_keys").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) throw new ApiError("not_found", `No API key ${id}.`);
  if (row.revoked_at === null) {
    row.revoked_at = iso(clock.now());
    await db.updateTable("api_keys").set({ revoked_at: row.revoked_at }).where("id", "=", id).execute();
  }
  return toKey(row);
}

export interface KeyOwner {
  keyId: string;
  keyHash: string;
  accountId: string;
  mode: Mode;
  rateLimit: number | null;
  revoked: boolean;
  accountActive: boolean;
  /** The account's own daily send cap (null: the server's default). */
  dailySendLimit: number | null;
}

const keyOwnerQuery = prepared(
  (db, keyHash: string) =>
    db
      .selectFrom("api_keys")
      .innerJoin("accounts", "accounts.id", "api_keys.account_id")
      .select([
        "api_keys.id as keyId",
        "api_keys.key_hash as keyHash",
        "api_keys.account_id as accountId",
        "api_keys.mode as mode",
        "api_keys.rate_limit as rateLimit",
        "api_keys.revoked_at as revokedAt",
        "accounts.active as active",
        "accounts.daily_send_limit as dailySendLimit",
      ])
      .where("api_keys.key_hash", "=", keyHash),
  [""],
);

/** The key and its account for authentication, by hash: one indexed query, compiled once. */
export async function findKeyOwner(db: Tx, keyHash: string): Promise<KeyOwner | null> {
  const [row] = await keyOwnerQuery(db, keyHash);
  if (!row) return null;
  return {
    keyId: row.keyId,
    keyHash: row.keyHash,
    accountId: row.accountId,
    mode: row.mode,
    rateLimit: row.rateLimit,
    revoked: row.revokedAt !== null,
    accountActive: row.active === 1,
    dailySendLimit: row.dailySendLimit,
  };
}
