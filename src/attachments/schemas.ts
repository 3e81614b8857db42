import { type Static, Type } from "typebox";
import type { Attachment as AttachmentSchema } from "../messages/schemas.js";

// The attachment object's schema lives with the message's (messages/schemas.ts): both are shared
// schemas registered once on the root instance, and the message object embeds it by $ref.
export type Attachment = Static<typeof AttachmentSchema>;

export const AttachmentParams = Type.Object({ id: Type.String({ format: "uuid" }) }, { additionalProperties: false });

export const PresignIn = Type.Object(
  {
    filename: Type.String({ minLength: 1, maxLength: 255 }),
    content_type: Type.String({
      minLength: 3,
      maxLength: 255,
      pattern: "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*( *;.*)?$",
      description: "The type the client expects; the bytes decide the stored mime_type once they arrive.",
    }),
  },
  { additionalProperties: false },
);
export type PresignIn = Static<typeof PresignIn>;

export const Presigned = Type.Object(
  {
    id: Type.String({ format: "uuid" }),
    upload_url: Type.String({ description: "PUT the bytes here (no API key: the URL is signed and expires)." }),
    method: Type.Literal("PUT"),
    headers: Type.Record(Type.String(), Type.String(), { description: "Headers to send with the PUT." }),
  },
  { additionalProperties: false },
);
export type Presigned = Static<typeof Presigned>;

export const SignedQuery = Type.Object(
  {
    expires: Type.String({ pattern: "^[0-9]{1,12}$", description: "Unix time (seconds) after which the URL no longer works." }),
    signature: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9_-]+$" }),
  },
  { additionalProperties: false },
);
export type SignedQuery = Static<typeof SignedQuery>;
