import { Type, type Static } from "typebox";
import { EFFECTS, Metadata } from "../messages/schemas.js";

const Handle = Type.String({ minLength: 1, maxLength: 320, description: "E.164 phone number or iMessage email." });
const Title = Type.String({ minLength: 1, maxLength: 100 });

/**
 * A group's first message: the rules of a send's text, effect and metadata. No attachments and
 * no scheduling: the message creates the group on the device, now, and BlueBubbles' `chat/new`
 * takes text only (attachments go in the next message).
 */
export const GroupMessageIn = Type.Object(
  {
    text: Type.String({ minLength: 1, maxLength: 10_000 }),
    effect: Type.Optional(Type.Unsafe<(typeof EFFECTS)[number]>({ type: "string", enum: [...EFFECTS] })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);

/** POST /v1/chats: create a group. */
export const ChatIn = Type.Object(
  {
    from_handle: Handle,
    addresses: Type.Array(Handle, {
      minItems: 2,
      maxItems: 31,
      description: "The other members: 2–31 handles, not your own number; duplicates count once.",
    }),
    message: GroupMessageIn,
    title: Type.Optional(Title),
  },
  { additionalProperties: false },
);
export type ChatIn = Static<typeof ChatIn>;

/** PATCH /v1/chats/:id: rename a group; null removes its name. */
export const ChatPatch = Type.Object({ title: Type.Union([Title, Type.Null()]) }, { additionalProperties: false });

/** POST /v1/chats/:id/participants */
export const ParticipantIn = Type.Object({ handle: Handle }, { additionalProperties: false });

export const ParticipantParams = Type.Object(
  { id: Type.String({ format: "uuid" }), handle: Type.String({ minLength: 1, maxLength: 320, description: "URL-encoded: %2B for the +." }) },
  { additionalProperties: false },
);
