import { Type, type Static } from "typebox";
import { EVENT_TYPES, type EventType } from "../events/catalog.js";

const Uuid = Type.String({ format: "uuid" });
const Timestamp = Type.String({ format: "date-time" });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

/** An event type of the catalogue; anything else is 400 invalid_request. */
const EventTypeName = Type.Unsafe<EventType>({ type: "string", enum: [...EVENT_TYPES] });
const EventFilter = Type.Array(EventTypeName, {
  minItems: 1,
  maxItems: 100,
  description: "Event types to receive; duplicates are ignored. Leave out (or null on PATCH) for every type, including types added later.",
});
export const WebhookUrl = Type.String({ minLength: 1, maxLength: 8192, description: "A public http(s) URL; private, loopback, link-local and similar addresses are refused (400 invalid_url)." });

export const DISABLED_REASONS = ["manual", "gone", "failing"] as const;
export const DELIVERY_STATUSES = ["pending", "delivering", "delivered", "failed", "blocked"] as const;

/** The webhook endpoint object. `secret` only in the answers to create, rotate-secret and their replays. */
export const Webhook = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    events: Nullable(Type.Array(Type.String())),
    enabled: Type.Boolean(),
    disabled_reason: Nullable(Type.Unsafe<(typeof DISABLED_REASONS)[number]>({ type: "string", enum: [...DISABLED_REASONS] })),
    livemode: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
    secret: Type.Optional(Type.String({ pattern: "^whsec_", description: "The signing secret: shown at creation and rotation only." })),
  },
  { additionalProperties: false, $id: "Webhook" },
);
export type Webhook = Static<typeof Webhook>;

export const WebhookIn = Type.Object({ url: WebhookUrl, events: Type.Optional(EventFilter) }, { additionalProperties: false });
export type WebhookIn = Static<typeof WebhookIn>;

export const WebhookPatch = Type.Object(
  {
    url: Type.Optional(WebhookUrl),
    events: Type.Optional(Nullable(EventFilter)),
    enabled: Type.Optional(Type.Boolean({ description: "false pauses deliveries; true resumes them and clears the failure clock." })),
  },
  { additionalProperties: false },
);
export type WebhookPatch = Static<typeof WebhookPatch>;

/** One event for one endpoint: where its delivery stands. */
export const WebhookDelivery = Type.Object(
  {
    id: Uuid,
    webhook_id: Uuid,
    event_id: Uuid,
    event_type: Type.String(),
    status: Type.Unsafe<(typeof DELIVERY_STATUSES)[number]>({ type: "string", enum: [...DELIVERY_STATUSES] }),
    attempts: Type.Integer(),
    last_status_code: Nullable(Type.Integer()),
    last_error: Nullable(Type.String()),
    last_attempt_at: Nullable(Timestamp),
    next_attempt_at: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false, $id: "WebhookDelivery" },
);
export type WebhookDelivery = Static<typeof WebhookDelivery>;

export const WebhookParams = Type.Object({ id: Uuid }, { additionalProperties: false });
export const DeliveryParams = Type.Object({ id: Uuid, delivery_id: Uuid }, { additionalProperties: false });

const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 }));
const Before = Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "ISO timestamp, or an item id for an exact cursor." }));

export const WebhookListQuery = Type.Object({ limit: Limit, before: Before }, { additionalProperties: false });

export const DeliveryListQuery = Type.Object(
  {
    status: Type.Optional(Type.Unsafe<(typeof DELIVERY_STATUSES)[number]>({ type: "string", enum: [...DELIVERY_STATUSES] })),
    limit: Limit,
    before: Before,
  },
  { additionalProperties: false },
);
