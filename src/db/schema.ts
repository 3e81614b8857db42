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
  /** Sends accepted per UTC day and mode; null = the server's DAILY_SEND_LIMIT, 0 = no cap. */
  daily_send_limit: number | null;
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
  /** Comma-separated channels whose back-end is down (live mode); "" when all are up. */
  offline_channels: string;
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
  /** A group's id on its device (BlueBubbles chat GUID, WAHA `…@g.us`); null for 1:1 chats. Never public. */
  device_chat_id: string | null;
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
  /** How many attachments the message carries; null or 0 = none (optional: rows written before attachments existed). */
  attachment_count?: number | null;
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

export type WebhookDisabledReason = "manual" | "gone" | "failing";

/** A registered webhook endpoint (one account, one mode). */
export interface WebhookEndpointsTable {
  id: string;
  account_id: string;
  mode: Mode;
  url: string;
  /** null = every event type; else ",type,type," (matched by substring in the fan-out). */
  events: string | null;
  enabled: number;
  disabled_reason: WebhookDisabledReason | null;
  /** whsec_…; stored as is, since signing needs the key itself. */
  secret: string;
  /** The secret replaced by the last rotation; it keeps signing until previous_secret_until (ms). */
  previous_secret: string | null;
  previous_secret_until: number | null;
  /** Start of the current run of failed attempts (ms); null after any success. */
  failing_since: number | null;
  created_at: string;
  updated_at: string;
}

export type WebhookDeliveryStatus = "pending" | "delivering" | "delivered" | "failed" | "blocked";

/** One event for one endpoint: the webhook queue's job row and its delivery log entry. */
export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  /** Due time (ms): next attempt while pending, lease end while delivering, null when none is planned. */
  next_attempt_at: number | null;
  lease_token: string | null;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: string | null;
  created_at: string;
  updated_at: string;
}

/** An uploaded file: the bytes are in attachment storage under storage_key. */
export interface AttachmentsTable {
  id: string;
  account_id: string;
  mode: Mode;
  /** The request that created it (a multipart upload makes several rows). */
  upload_id: string;
  /** pending: presigned, bytes not arrived yet; uploaded: usable. */
  state: "pending" | "uploaded";
  filename: string;
  declared_type: string | null;
  /** Sniffed from the bytes once they arrived (the declared type until then). */
  mime_type: string;
  size_bytes: number;
  storage_key: string | null;
  /** The message that claimed it (single use); null while unclaimed. */
  message_id: string | null;
  /** Order within the message. */
  position: number | null;
  /** ms; an unclaimed attachment is removed (row and bytes) after this. */
  expires_at: number;
  created_at: string;
}

/** Secrets the server generates once and every process shares (e.g. the attachment URL key). */
export interface ServerSecretsTable {
  name: string;
  secret: string;
  created_at: string;
}

/** What the simulator's device received with a message (its media history). */
export interface SimulatorAttachmentsTable {
  message_id: string;
  position: number;
  filename: string;
  mime_type: string;
  size_bytes: number;
  voice_note: number;
}

export interface DailySendCountsTable {
  account_id: string;
  mode: Mode;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  count: number;
}

/** A number's link to one of its real device back-ends (migration 0008). */
export interface DeviceLinksTable {
  number_id: string;
  backend: string;
  status: "online" | "offline";
  /** The reconciliation poller's last-seen device time, epoch ms. */
  cursor: number;
  subscribed_url: string | null;
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
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  attachments: AttachmentsTable;
  server_secrets: ServerSecretsTable;
  simulator_attachments: SimulatorAttachmentsTable;
  device_links: DeviceLinksTable;
  daily_send_counts: DailySendCountsTable;
}
