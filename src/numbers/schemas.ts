import { Type, type Static } from "typebox";

/** A number as the public API shows it (api.md §5 Numbers). */
export const PhoneNumber = Type.Object(
  {
    handle: Type.String({ description: "E.164", examples: ["+15555550123"] }),
    channels: Type.Array(Type.Union([Type.Literal("imessage"), Type.Literal("sms"), Type.Literal("whatsapp")])),
    label: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal("online"), Type.Literal("offline")]),
  },
  { additionalProperties: false, $id: "Number" },
);
export type PhoneNumber = Static<typeof PhoneNumber>;

export const NumbersQuery = Type.Object({}, { additionalProperties: false });
