import { Type, type Static } from "typebox";

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Timestamp = Type.String({ format: "date-time" });

/** The chat (conversation) object: the documented fields, then ours (api.md §5). */
export const Chat = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    from_handle: Type.String(),
    remote_handle: Nullable(Type.String()),
    is_group: Type.Boolean(),
    title: Nullable(Type.String()),
    last_message_at: Nullable(Timestamp),
    created_at: Timestamp,
    updated_at: Timestamp,
    participants: Type.Array(Type.String()),
    channel: Nullable(Type.Unsafe<"imessage" | "sms" | "whatsapp">({ type: "string", enum: ["imessage", "sms", "whatsapp"] })),
  },
  { additionalProperties: false, $id: "Chat" },
);
export type Chat = Static<typeof Chat>;

export const ChatParams = Type.Object({ id: Type.String({ format: "uuid" }) }, { additionalProperties: false });

export const ChatListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    before: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "ISO timestamp, or a chat id for an exact cursor." })),
  },
  { additionalProperties: false },
);

export const TypingIn = Type.Object(
  { state: Type.Unsafe<"start" | "stop">({ type: "string", enum: ["start", "stop"] }) },
  { additionalProperties: false },
);
