import { Type, type Static } from "typebox";

export const EFFECTS = [
  "slam", "loud", "gentle", "invisible_ink", "echo", "spotlight", "balloons",
  "confetti", "love", "lasers", "fireworks", "shooting_star", "celebration",
] as const;
export const TAPBACKS = ["love", "like", "dislike", "laugh", "emphasize", "question"] as const;
export const STATUSES = ["scheduled", "queued", "sending", "sent", "delivered", "read", "failed", "canceled", "received"] as const;

const Uuid = Type.String({ format: "uuid" });
const Timestamp = Type.String({ format: "date-time" });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Channel = Type.Unsafe<"imessage" | "sms" | "whatsapp">({ type: "string", enum: ["imessage", "sms", "whatsapp"] });

// Type.Record turns its key schema into a `patternProperties` pattern and drops the key's length
// limits, so they are stated again as `propertyNames`.
export const Metadata = Type.Record(Type.String({ minLength: 1, maxLength: 40 }), Type.String({ maxLength: 500 }), {
  maxProperties: 20,
  propertyNames: { minLength: 1, maxLength: 40 },
  description: "Up to 20 string keys with string values of at most 500 characters; echoed in the message and its webhooks.",
});

export const Attachment = Type.Object(
  {
    id: Uuid,
    filename: Type.String(),
    mime_type: Type.String(),
    size_bytes: Type.Integer(),
    url: Type.String(),
    message_id: Nullable(Uuid),
    created_at: Timestamp,
  },
  { additionalProperties: false, $id: "Attachment" },
);

export const Reaction = Type.Object(
  { reaction: Type.String(), handle: Type.String(), created_at: Timestamp },
  { additionalProperties: false },
);

/** The message object, fields in the documented order (api.md §5). */
export const Message = Type.Object(
  {
    id: Uuid,
    conversation_id: Uuid,
    direction: Type.Unsafe<"outbound" | "inbound">({ type: "string", enum: ["outbound", "inbound"] }),
    status: Type.Unsafe<(typeof STATUSES)[number]>({ type: "string", enum: [...STATUSES] }),
    channel: Nullable(Channel),
    text: Nullable(Type.String()),
    effect: Nullable(Type.String()),
    reply_to: Nullable(Uuid),
    error: Nullable(Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false })),
    metadata: Nullable(Metadata),
    attachments: Type.Array(Type.Ref("Attachment")),
    sent_at: Nullable(Timestamp),
    delivered_at: Nullable(Timestamp),
    read_at: Nullable(Timestamp),
    from_handle: Type.String(),
    to: Type.String(),
    voice_memo: Type.Boolean(),
    send_at: Nullable(Timestamp),
    edited_at: Nullable(Timestamp),
    unsent_at: Nullable(Timestamp),
    reactions: Type.Array(Reaction),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false, $id: "Message" },
);
export type Message = Static<typeof Message>;

export const MessageIn = Type.Object(
  {
    to: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
    from_handle: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
    conversation_id: Type.Optional(Uuid),
    text: Type.Optional(Type.String({ minLength: 1, maxLength: 10_000 })),
    attachment_ids: Type.Optional(Type.Array(Uuid, { minItems: 1, maxItems: 10, uniqueItems: true })),
    reply_to: Type.Optional(Uuid),
    effect: Type.Optional(Type.Unsafe<(typeof EFFECTS)[number]>({ type: "string", enum: [...EFFECTS] })),
    channel: Type.Optional(Channel),
    voice_memo: Type.Optional(Type.Boolean()),
    metadata: Type.Optional(Metadata),
    send_at: Type.Optional(Timestamp),
  },
  { additionalProperties: false },
);
export type MessageIn = Static<typeof MessageIn>;

export const MessagePatch = Type.Object({ text: Type.String({ minLength: 1, maxLength: 10_000 }) }, { additionalProperties: false });

export const ReactionIn = Type.Object(
  {
    reaction: Type.String({ minLength: 1, maxLength: 32, description: "A tapback (love like dislike laugh emphasize question) or, on WhatsApp, one emoji." }),
    remove: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const MessageParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const MessageListQuery = Type.Object(
  {
    conversation_id: Type.Optional(Uuid),
    direction: Type.Optional(Type.Unsafe<"outbound" | "inbound">({ type: "string", enum: ["outbound", "inbound"] })),
    status: Type.Optional(Type.Unsafe<(typeof STATUSES)[number]>({ type: "string", enum: [...STATUSES] })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    before: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "ISO timestamp, or an item id for an exact cursor." })),
  },
  { additionalProperties: false },
);
