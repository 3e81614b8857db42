import { Ajv } from "ajv";
import { Type, type Static } from "typebox";

/**
 * Every operator setting, read once from the environment at boot. An invalid value aborts start-up
 * with a message naming the variable. Each key's documentation sits next to its schema; the
 * operator guide (docs/operator.md) lists the same keys.
 */
const ConfigSchema = Type.Object({
  /** Interface the HTTP server binds to. */
  HOST: Type.String({ default: "127.0.0.1", minLength: 1 }),
  /** TCP port of the HTTP server. */
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  /** Folder for the embedded SQLite database (and, unless ATTACHMENTS_DIR says otherwise, stored attachments). */
  DATA_DIR: Type.String({ default: "./data", minLength: 1 }),
  /** postgres://… to run on PostgreSQL instead of the embedded SQLite database. */
  DATABASE_URL: Type.Optional(Type.String({ pattern: "^postgres(ql)?://" })),
  /** pino log level. */
  LOG_LEVEL: Type.Unsafe<"fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent">({
    type: "string",
    enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    default: "info",
  }),
  /** Largest JSON request body in bytes; larger bodies get 413 payload_too_large. */
  BODY_LIMIT_BYTES: Type.Integer({ default: 1_048_576, minimum: 1024 }),
  /** Slow-loris: a connection that has not sent its request headers within this many ms is closed. */
  HEADERS_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
  /** A request (headers and body, uploads included) not received in full within this many ms is closed. */
  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100, maximum: 3_600_000 }),
  /** Default per-API-key request limit per minute (a key may carry its own, set by the CLI). */
  RATE_LIMIT_PER_MINUTE: Type.Integer({ default: 120, minimum: 1 }),
  /** Failed authentication attempts allowed per client IP per minute before 429. */
  AUTH_FAILURE_LIMIT_PER_MINUTE: Type.Integer({ default: 30, minimum: 1 }),
  /** How long an Idempotency-Key is remembered, in hours (24 at least). */
  IDEMPOTENCY_TTL_HOURS: Type.Number({ default: 24, minimum: 24 }),
  /** Require an Idempotency-Key header on every POST (400 invalid_request when missing). */
  IDEMPOTENCY_REQUIRED: Type.Boolean({ default: false }),
  /** How long a duplicate request waits for the in-flight original before 409 idempotency_key_in_use. */
  IDEMPOTENCY_WAIT_MS: Type.Integer({ default: 2000, minimum: 0, maximum: 30_000 }),
  /** Trust X-Forwarded-For from a reverse proxy when computing the client IP. */
  TRUST_PROXY: Type.Boolean({ default: false }),
  /** Default outbound pace per sending number, messages per minute (a number's --pace overrides). */
  DEFAULT_PACE_PER_MINUTE: Type.Integer({ default: 60, minimum: 1, maximum: 60_000 }),
  /** Messages an account may send per UTC day and mode (0: no cap); `accounts update --daily-limit` overrides per account. */
  DAILY_SEND_LIMIT: Type.Integer({ default: 0, minimum: 0 }),
  /** How long an accepted message may wait to be sent before it fails with `expired`. */
  MESSAGE_VALIDITY_HOURS: Type.Number({ default: 10, exclusiveMinimum: 0, maximum: 36 }),
  /** How long a claimed send may run before another worker reconciles it. */
  DISPATCH_LEASE_MS: Type.Integer({ default: 60_000, minimum: 1000 }),
  /** How often the dispatcher looks for work when idle, in ms. */
  DISPATCH_INTERVAL_MS: Type.Integer({ default: 50, minimum: 1, maximum: 10_000 }),
  /** How long a dispatcher tick waits for its sends before leaving slow ones to record themselves, in ms. */
  DISPATCH_SEND_WAIT_MS: Type.Integer({ default: 1000, minimum: 1, maximum: 60_000 }),
  /** Most sending numbers served per dispatcher tick. */
  DISPATCH_BATCH: Type.Integer({ default: 500, minimum: 1, maximum: 10_000 }),
  /** How long a channel lookup (iMessage/WhatsApp reachability) is cached, in hours. */
  LOOKUP_CACHE_HOURS: Type.Number({ default: 24, minimum: 0 }),
  /** Simulator: delay between sent and delivered, in ms. */
  SIMULATOR_DELIVERY_MS: Type.Integer({ default: 300, minimum: 0 }),
  /** Simulator: delay between delivered and read, in ms. */
  SIMULATOR_READ_MS: Type.Integer({ default: 700, minimum: 0 }),
  /** Webhooks: allow endpoints on private, loopback and LAN addresses (local development only). */
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false }),
  /**
   * Webhooks: comma-separated CIDRs re-allowed although private (e.g. "10.0.0.0/8"); link-local
   * 169.254.0.0/16 and fd00:ec2::/32 (cloud metadata) stay denied whatever this says.
   */
  WEBHOOK_ALLOW_PRIVATE_CIDRS: Type.String({ default: "" }),
  /** Webhooks: an attempt that has no 2xx answer within this many ms is a failure. */
  WEBHOOK_TIMEOUT_MS: Type.Integer({ default: 15_000, minimum: 100, maximum: 60_000 }),
  /** Webhooks: most deliveries in flight to one endpoint at a time. */
  WEBHOOK_CONCURRENCY_PER_ENDPOINT: Type.Integer({ default: 32, minimum: 1, maximum: 100 }),
  /** Webhooks: most deliveries in flight in this process. */
  WEBHOOK_CONCURRENCY: Type.Integer({ default: 128, minimum: 1, maximum: 1000 }),
  /** Webhooks: how often the delivery worker looks for due deliveries when idle, in ms. */
  WEBHOOK_INTERVAL_MS: Type.Integer({ default: 50, minimum: 1, maximum: 10_000 }),
  /** On first start with an empty database, create a demo account, simulator number and test key. */
  CREATE_DEMO_ACCOUNT: Type.Boolean({ default: true }),
  /** The address at which clients (and device back-ends) reach this server; shown in the demo curl line. */
  PUBLIC_URL: Type.Optional(Type.String({ pattern: "^https?://" })),
  /** Real device back-ends: how often each number's device is health-checked and polled for missed events, in ms. */
  DEVICE_POLL_INTERVAL_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 600_000 }),
  /** Real device back-ends: a device call without an answer after this many ms is unreachable (a send: ambiguous). */
  DEVICE_TIMEOUT_MS: Type.Integer({ default: 15_000, minimum: 100, maximum: 120_000 }),
  /**
   * Real device back-ends: a send waits this long for its answer (BlueBubbles holds a send open
   * until it sees the message in chat.db, up to 2 minutes); then it is ambiguous and reconciled.
   * Kept below DISPATCH_LEASE_MS so no other worker reconciles a send still in flight (unset, it
   * becomes 3/4 of a shorter lease).
   */
  DEVICE_SEND_TIMEOUT_MS: Type.Integer({ default: 45_000, minimum: 100, maximum: 600_000 }),
  /** Largest webhook body a device may post to its ingest URL, bytes. */
  INGEST_BODY_LIMIT_BYTES: Type.Integer({ default: 1_048_576, minimum: 1024 }),
  /** Attachments: folder of the stored bytes; default `<DATA_DIR>/attachments`. */
  ATTACHMENTS_DIR: Type.Optional(Type.String({ minLength: 1 })),
  /** Attachments: largest single file of an upload (multipart part or presigned PUT), bytes; larger → 413. */
  ATTACHMENT_MAX_FILE_BYTES: Type.Integer({ default: 104_857_600, minimum: 1 }),
  /** Attachments: largest multipart upload request (all its files together), bytes; larger → 413. */
  ATTACHMENT_MAX_REQUEST_BYTES: Type.Integer({ default: 262_144_000, minimum: 1 }),
  /** Attachments: an upload that no message claimed is removed (row and bytes) after this many hours. */
  ATTACHMENT_EXPIRY_HOURS: Type.Number({ default: 24, exclusiveMinimum: 0 }),
  /** Attachments: lifetime of the signed URLs in API responses and of presigned upload URLs, seconds. */
  ATTACHMENT_URL_TTL_SECONDS: Type.Integer({ default: 3600, minimum: 1, maximum: 7 * 86_400 }),
  /** Attachments: lifetime of the signed URLs inside webhook payloads, hours (the retry schedule spans about 76 h). */
  ATTACHMENT_EVENT_URL_TTL_HOURS: Type.Number({ default: 76, exclusiveMinimum: 0, maximum: 30 * 24 }),
  /** Attachments: key that signs attachment URLs (≥ 32 characters); default a random key generated once and kept in the database. */
  ATTACHMENT_URL_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** Media limit of iMessage, bytes: larger images are transcoded down to it, other larger files refused. */
  MEDIA_LIMIT_IMESSAGE_BYTES: Type.Integer({ default: 104_857_600, minimum: 1024 }),
  /** Media limit of SMS/MMS, bytes (carriers cap MMS around 1 MB including encoding overhead). */
  MEDIA_LIMIT_SMS_BYTES: Type.Integer({ default: 614_400, minimum: 1024 }),
  /** Media limit of WhatsApp, bytes (its cap for video and audio). */
  MEDIA_LIMIT_WHATSAPP_BYTES: Type.Integer({ default: 16_777_216, minimum: 1024 }),
  /** Image limit of WhatsApp, bytes (its cap for images, below its general one). */
  MEDIA_LIMIT_WHATSAPP_IMAGE_BYTES: Type.Integer({ default: 5_242_880, minimum: 1024 }),
});

export type Config = Static<typeof ConfigSchema>;

const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true, removeAdditional: true });
const validate = ajv.compile(ConfigSchema);

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(ConfigSchema.properties);
  const input: Record<string, string> = {};
  for (const key of known) {
    const v = env[key];
    if (v !== undefined && v !== "") input[key] = v;
  }
  if (!validate(input)) {
    const problems = (validate.errors ?? []).map((e) => {
      const name = e.instancePath.replace(/^\//, "") || String(e.params.missingProperty ?? "");
      return `${name} ${e.message ?? "is invalid"}`;
    });
    throw new Error(`Invalid configuration: ${problems.join("; ")}`);
  }
  const config = input as unknown as Config;
  // A send still in flight when its lease ends would be reconciled, and perhaps resent, by
  // another worker: the send timeout stays below the lease (an explicit setting must say so).
  if (config.DEVICE_SEND_TIMEOUT_MS >= config.DISPATCH_LEASE_MS) {
    if (env.DEVICE_SEND_TIMEOUT_MS) throw new Error("Invalid configuration: DEVICE_SEND_TIMEOUT_MS must be less than DISPATCH_LEASE_MS");
    config.DEVICE_SEND_TIMEOUT_MS = Math.floor(config.DISPATCH_LEASE_MS * 0.75);
  }
  return config;
}

/** A configuration with every default, for tests and tools; `overrides` win. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), ...overrides };
}
