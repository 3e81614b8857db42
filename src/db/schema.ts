/**
 * The typed shape of every table, shared by SQLite and PostgreSQL. Timestamps are ISO 8601 UTC
 * strings with milliseconds in both databases (they sort as text and match the wire format);
 * booleans are 0/1 integers, because SQLite has no boolean type.
 */
export type Mode = "live" | "test";

export interface AccountsTable {
  id: string;
  name: string;
  active: number;
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  mode: Mode;
  /** SHA-256 of the whole key, hex. The plaintext is never stored. */
  key_hash: string;
  /** The first characters of the key, so an operator can tell keys apart in a listing. */
  key_prefix: string;
  /** Requests per minute for this key; null = the server default. */
  rate_limit: number | null;
  created_at: string;
  revoked_at: string | null;
}

export interface NumbersTable {
  id: string;
  account_id: string;
  handle: string;
  /** Comma-separated subset of imessage,sms,whatsapp, in that order. */
  channels: string;
  label: string | null;
  backend: string;
  /** JSON object of back-end settings (URL, credentials); never returned by the public API. */
  backend_config: string;
  /** Outbound messages per minute; null = the default pace. */
  pace_per_minute: number | null;
  /** Device status seen by live keys. */
  status: "online" | "offline";
  /** Status seen by test keys: the simulator's, set through the test helpers. */
  test_status: "online" | "offline";
  created_at: string;
  updated_at: string;
}

export interface IdempotencyKeysTable {
  account_id: string;
  mode: Mode;
  key: string;
  method: string;
  path: string;
  fingerprint: string;
  state: "in_progress" | "completed";
  locked_at: string | null;
  resource_type: string | null;
  resource_id: string | null;
  response_status: number | null;
  created_at: string;
}

/** GCRA state for limiters that must hold across processes (PostgreSQL mode). */
export interface RateLimitsTable {
  bucket: string;
  /** Theoretical arrival time, ms since the epoch. */
  tat: number;
}

export interface Database {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  numbers: NumbersTable;
  idempotency_keys: IdempotencyKeysTable;
  rate_limits: RateLimitsTable;
}
