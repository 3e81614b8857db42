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

export type MessageStatus = "scheduled" | "queued" | "sending" | "sent" | "delivered" | "read" | "failed" | "canceled" | "received";
export type ChannelName = "imessage" | "sms" | "whatsapp";

export interface ChatsTable {
  id: string;
  account_id: string;
  mode: Mode;
  number_id: string;
  from_handle: string;
  /** The contact of a 1:1 chat; null for a group. */
  remote_handle: string | null;
  is_group: number;
  title: string | null;
  /** JSON array of handles (groups). */
  participants: string;
  channel: ChannelName | null;
  last_message_at: string | null;
  created_at: string;
  updated_at: string;
}

/** A message, and for outbound ones also its queue job (status, lease, attempts). */
export interface MessagesTable {
  id: string;
  account_id: string;
  mode: Mode;
  chat_id: string;
  number_id: string;
  lane_id: string;
  direction: "outbound" | "inbound";
  status: MessageStatus;
  channel: ChannelName | null;
  forced_channel: ChannelName | null;
  text: string | null;
  effect: string | null;
  reply_to: string | null;
  error_code: string | null;
  error_message: string | null;
  /** JSON object or null. */
  metadata: string | null;
  from_handle: string;
  to_handle: string;
  voice_memo: number;
  send_at: string | null;
  sent_at: string | null;
  delivered_at: string | null;
  read_at: string | null;
  edited_at: string | null;
  unsent_at: string | null;
  edit_count: number;
  queue_key: string | null;
  /** End of the validity window, ms. */
  expires_at: number | null;
  attempts: number;
  lease_token: string | null;
  lease_until: number | null;
  device_message_id: string | null;
  possible_duplicate: number;
  created_at: string;
  updated_at: string;
}

export interface MessageReactionsTable {
  message_id: string;
  handle: string;
  reaction: string;
  created_at: string;
}

/** Pacing and queue state of one sending number in one mode. */
export interface SenderLanesTable {
  id: string;
  number_id: string;
  mode: Mode;
  tat: number;
  paused_until: number;
  pending: number;
  ready_at: number | null;
}

export interface EventsTable {
  id: string;
  account_id: string;
  mode: Mode;
  type: string;
  /** JSON of the event's `data`. */
  data: string;
  created_at: string;
}

/** What the simulator "sent": its device history, read by its reconcile. */
export interface SimulatorHistoryTable {
  message_id: string;
  from_handle: string;
  to_handle: string;
  channel: string;
  text: string | null;
  sent_at: number;
  /** How many times the device was asked to send this message (must stay 1). */
  sends: number;
}

/** The simulator's future actions (deliver, read, reply, react, type), durable across restarts. */
export interface SimulatorTimersTable {
  id: string;
  due_at: number;
  kind: string;
  payload: string;
}

export interface LookupCacheTable {
  number_id: string;
  mode: Mode;
  handle: string;
  imessage: number | null;
  whatsapp: number | null;
  checked_at: number;
}

export interface Database {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  numbers: NumbersTable;
  idempotency_keys: IdempotencyKeysTable;
  rate_limits: RateLimitsTable;
  chats: ChatsTable;
  messages: MessagesTable;
  message_reactions: MessageReactionsTable;
  sender_lanes: SenderLanesTable;
  events: EventsTable;
  simulator_history: SimulatorHistoryTable;
  simulator_timers: SimulatorTimersTable;
  lookup_cache: LookupCacheTable;
}
