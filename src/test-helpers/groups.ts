import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import type { Services } from "../app.js";
import type { GroupChange } from "../chats/group-change.js";
import { participantsOf } from "../chats/group-change.js";
import type { DeviceGroup } from "../chats/group-ingest.js";
import { getChatRow, toChat } from "../chats/store.js";
import type { Tx } from "../db/client.js";
import type { ChannelName, ChatsTable, NumbersTable } from "../db/schema.js";
import { ApiError } from "../errors.js";
import { Envelope, commonErrors, ok } from "../http/envelope.js";
import { normaliseHandle } from "../handles.js";
import { applyDeviceEvents } from "../messages/ingest.js";
import type { Scope } from "../messages/store.js";

/**
 * Test helpers for groups: what the network does to a group without us. An inbound group message
 * (POST /v1/test_helpers/inbound with `conversation_id`) and a member's change to the group
 * (POST /v1/test_helpers/group_changes), both as the simulator device would report them — the
 * same device events a real back-end produces, applied by the same ingest code.
 */

async function groupChat(db: Tx, scope: Scope, id: string): Promise<ChatsTable> {
  const chat = await getChatRow(db, scope, id);
  if (chat.is_group !== 1 || !chat.device_chat_id) throw new ApiError("not_a_group", "conversation_id must be a group chat.");
  return chat;
}

/** Where an injected inbound message goes when it names a group: the device group and channel. */
export async function inboundGroup(trx: Tx, scope: Scope, conversationId: string, number: NumbersTable, from: string): Promise<{ group: DeviceGroup; channel: ChannelName }> {
  const chat = await groupChat(trx, scope, conversationId);
  if (chat.number_id !== number.id) throw new ApiError("invalid_request", "from_handle is not the number of this group chat.");
  const participants = participantsOf(chat);
  if (!participants.includes(from)) throw new ApiError("invalid_request", "remote_handle is not a participant of this group chat.");
  return { group: { chatDeviceId: chat.device_chat_id ?? "", participants, title: chat.title }, channel: chat.channel ?? "imessage" };
}

const Handle = (description: string) => Type.String({ minLength: 1, maxLength: 320, description });
const GroupChangeIn = Type.Object(
  {
    conversation_id: Type.String({ format: "uuid" }),
    type: Type.Unsafe<GroupChange["type"]>({ type: "string", enum: ["renamed", "participant_added", "participant_removed"] }),
    title: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()], { description: "renamed: the new title (null removes it)." })),
    handle: Type.Optional(Handle("participant_added / participant_removed: who.")),
    by: Type.Optional(Handle("The member who made the change (a participant); omitted = the network does not say.")),
  },
  { additionalProperties: false },
);

function handleOf(raw: string, field: string): string {
  const h = normaliseHandle(raw);
  if (!h) throw new ApiError("invalid_handle", `${field} is not a valid E.164 phone number or email address.`);
  return h.handle;
}

function changeOf(body: Static<typeof GroupChangeIn>): GroupChange {
  if (body.type === "renamed") {
    if (body.title === undefined || body.handle !== undefined) throw new ApiError("invalid_request", "A rename takes title (a string or null) and no handle.");
    return { type: "renamed", title: body.title };
  }
  if (body.handle === undefined || body.title !== undefined) throw new ApiError("invalid_request", `${body.type} takes handle and no title.`);
  return { type: body.type, handle: handleOf(body.handle, "handle") };
}

export function registerGroupHelpers(app: FastifyInstance, s: Services, testOnly: (req: FastifyRequest) => Promise<void>): void {
  app.post<{ Body: Static<typeof GroupChangeIn> }>(
    "/test_helpers/group_changes",
    {
      onRequest: testOnly,
      schema: {
        tags: ["test helpers"],
        summary: "A member changes a group on the network: rename, add or remove someone (simulator)",
        body: GroupChangeIn,
        response: { 200: Envelope(Type.Ref("Chat")), ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 422: Type.Ref("Error") },
      },
    },
    async (req, reply) => {
      const scope = { accountId: req.auth.accountId, mode: req.auth.mode };
      const change = changeOf(req.body);
      const by = req.body.by === undefined ? null : handleOf(req.body.by, "by");
      const data = await s.idempotency.create(req, reply, {
        resourceType: "chat",
        status: 200,
        create: async (trx) => {
          const chat = await groupChat(trx, scope, req.body.conversation_id);
          // Only a member can change a group; someone who leaves is still one when they do.
          if (by !== null && !participantsOf(chat).includes(by)) throw new ApiError("invalid_request", "by is not a participant of this group chat.");
          const number = await trx.selectFrom("numbers").select("handle").where("id", "=", chat.number_id).executeTakeFirstOrThrow();
          const at = s.clock.now();
          await applyDeviceEvents(trx, s.clock, [{ kind: "group_changed", numberHandle: number.handle, mode: scope.mode, chatDeviceId: chat.device_chat_id ?? "", change, by, at }]);
          return { id: chat.id, body: toChat(await getChatRow(trx, scope, chat.id)) };
        },
        load: async (db, id) => toChat(await getChatRow(db, scope, id)),
      });
      return ok(req, data);
    },
  );
}
