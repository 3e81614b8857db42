import type { FastifyInstance } from "fastify";
import { type Static, Type } from "typebox";
import type { Services } from "../app.js";
import { Envelope, commonErrors, ok } from "../http/envelope.js";
import type { Scope } from "../messages/store.js";
import { underKey } from "./device-idempotency.js";
import { createGroupChat } from "./group-create.js";
import { addGroupParticipant, removeGroupParticipant, renameGroupChat } from "./group-members.js";
import { ChatIn, ChatPatch, ParticipantIn, ParticipantParams } from "./group-schemas.js";
import { ChatParams } from "./schemas.js";
import { getChatRow, toChat } from "./store.js";

const One = Envelope(Type.Ref("Chat"));
const errors = { ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 422: Type.Ref("Error"), 502: Type.Ref("Error") };

/** Group chats (api.md §5 Conversations): create, rename, add and remove participants. */
export function registerGroups(app: FastifyInstance, s: Services): void {
  const scope = (req: { auth: Scope }): Scope => ({ accountId: req.auth.accountId, mode: req.auth.mode });
  const load = async (id: string, sc: Scope) => toChat(await getChatRow(s.db.kysely, sc, id));

  app.post<{ Body: Static<typeof ChatIn> }>(
    "/chats",
    { schema: { tags: ["chats"], summary: "Create a group chat with its first message (runs on the device)", body: ChatIn, response: { 200: One, 201: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await underKey(s.idempotency, req, reply, {
        resourceType: "chat",
        status: 201,
        run: async (commit) => toChat(await createGroupChat(s, sc, req.body, commit)),
        load: (id) => load(id, sc),
      });
      // The first message's delivery comes from the device: let the engine pick it up now.
      s.dispatcher.wake();
      return ok(req, data);
    },
  );

  app.patch<{ Params: Static<typeof ChatParams>; Body: Static<typeof ChatPatch> }>(
    "/chats/:id",
    { schema: { tags: ["chats"], summary: "Rename a group chat (runs on the device)", params: ChatParams, body: ChatPatch, response: { 200: One, ...errors } } },
    async (req) => ok(req, toChat(await renameGroupChat(s, scope(req), req.params.id, req.body.title))),
  );

  app.post<{ Params: Static<typeof ChatParams>; Body: Static<typeof ParticipantIn> }>(
    "/chats/:id/participants",
    { schema: { tags: ["chats"], summary: "Add a participant to a group chat (runs on the device)", params: ChatParams, body: ParticipantIn, response: { 200: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await underKey(s.idempotency, req, reply, {
        resourceType: "chat",
        status: 200,
        run: async (commit) => toChat(await addGroupParticipant(s, sc, req.params.id, req.body.handle, commit)),
        load: (id) => load(id, sc),
      });
      return ok(req, data);
    },
  );

  app.delete<{ Params: Static<typeof ParticipantParams> }>(
    "/chats/:id/participants/:handle",
    { schema: { tags: ["chats"], summary: "Remove a participant from a group chat (runs on the device)", params: ParticipantParams, response: { 200: One, ...errors } } },
    async (req) => ok(req, toChat(await removeGroupParticipant(s, scope(req), req.params.id, req.params.handle))),
  );
}
