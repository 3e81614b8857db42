import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type Static, Type } from "typebox";
import type { Services } from "../app.js";
import { type Backends, deviceNumber } from "../backends/registry.js";
import { iso } from "../clock.js";
import { ApiError } from "../errors.js";
import { Envelope, ListEnvelope, commonErrors, list, ok } from "../http/envelope.js";
import { resolveCursor } from "../http/pagination.js";
import { requireOnline } from "../messages/service.js";
import type { Scope } from "../messages/store.js";
import { ChatListQuery, ChatParams, TypingIn } from "./schemas.js";
import { getChatRow, listChats, toChat } from "./store.js";
import { registerGroups } from "./group-routes.js";

const ChatRef = Type.Ref("Chat");
const One = Envelope(ChatRef);
const errors = { ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 422: Type.Ref("Error"), 502: Type.Ref("Error") };
const NoBody = { type: ["object", "null"], properties: {}, additionalProperties: false } as const;

export function register(app: FastifyInstance, s: Services): void {
  const scope = (req: { auth: Scope }): Scope => ({ accountId: req.auth.accountId, mode: req.auth.mode });
  const load = async (id: string, sc: Scope) => toChat(await getChatRow(s.db.kysely, sc, id));

  /** A synchronous device action on a chat, idempotent under its key; answers the chat. */
  const chatAction = (req: FastifyRequest<{ Params: Static<typeof ChatParams> }>, reply: FastifyReply, failed: "read_failed" | "typing_failed", call: DeviceCall) => {
    const sc = scope(req);
    return s.idempotency.action(req, reply, {
      resourceType: "chat",
      status: 200,
      run: async () => {
        const chat = await onChatDevice(s, sc, req.params.id, failed, call);
        return { id: chat.id, body: chat };
      },
      load: (_db, id) => load(id, sc),
    });
  };

  app.get<{ Querystring: Static<typeof ChatListQuery> }>(
    "/chats",
    { schema: { tags: ["chats"], summary: "List chats, most recent activity first", querystring: ChatListQuery, response: { 200: ListEnvelope(ChatRef), ...errors } } },
    async (req) => {
      const sc = scope(req);
      const cursor = await resolveCursor(req.query.before, async (id) =>
        (await s.db.kysely.selectFrom("chats").select("last_message_at").where("id", "=", id).where("account_id", "=", sc.accountId).where("mode", "=", sc.mode).executeTakeFirst())?.last_message_at,
      );
      const { items, hasMore } = await listChats(s.db.kysely, sc, cursor, req.query.limit ?? 50);
      return list(req, items, hasMore);
    },
  );

  app.get<{ Params: Static<typeof ChatParams> }>(
    "/chats/:id",
    { schema: { tags: ["chats"], summary: "Get a chat", params: ChatParams, response: { 200: One, ...errors } } },
    async (req) => ok(req, await load(req.params.id, scope(req))),
  );

  app.post<{ Params: Static<typeof ChatParams> }>(
    "/chats/:id/read",
    { schema: { tags: ["chats"], summary: "Mark the chat read (sends read receipts where the channel has them)", params: ChatParams, body: NoBody, response: { 200: One, ...errors } } },
    async (req, reply) => ok(req, await chatAction(req, reply, "read_failed", (b, n, c) => b.markRead(n, c))),
  );

  app.post<{ Params: Static<typeof ChatParams>; Body: Static<typeof TypingIn> }>(
    "/chats/:id/typing",
    { schema: { tags: ["chats"], summary: "Show or hide the typing indicator", params: ChatParams, body: TypingIn, response: { 200: One, ...errors } } },
    async (req, reply) => ok(req, await chatAction(req, reply, "typing_failed", (b, n, c) => b.typing(n, c, req.body.state))),
  );

  registerGroups(app, s);
}

type DeviceCall = (
  b: ReturnType<Backends["for"]>,
  n: ReturnType<typeof deviceNumber>,
  c: { remoteHandle: string; channel: "imessage" | "sms" | "whatsapp"; chatDeviceId?: string },
) => Promise<{ ok: true } | { ok: false; offline: boolean; message: string }>;

/** A synchronous action on a chat's device: 503 when unreachable, 502 `failed` when refused. */
async function onChatDevice(
  s: Services,
  sc: Scope,
  id: string,
  failed: "read_failed" | "typing_failed",
  call: DeviceCall,
) {
  const chat = await getChatRow(s.db.kysely, sc, id);
  const number = await s.db.kysely.selectFrom("numbers").selectAll().where("id", "=", chat.number_id).executeTakeFirst();
  if (!number) throw new ApiError("conflict", "The chat's number is no longer assigned to your account.");
  requireOnline(number, sc);
  // A group has no contact handle: the device addresses it by its own id.
  const target = { remoteHandle: chat.remote_handle ?? "", channel: chat.channel ?? "imessage", ...(chat.device_chat_id ? { chatDeviceId: chat.device_chat_id } : {}) };
  const outcome = await call(s.backends.for(number, sc.mode), deviceNumber(number, sc.mode), target);
  if (!outcome.ok) throw new ApiError(outcome.offline ? "device_offline" : failed, outcome.message);
  if (failed === "read_failed") {
    const set = { updated_at: iso(s.clock.now()) };
    await s.db.transaction(async (trx) => {
      await trx.updateTable("chats").set(set).where("id", "=", chat.id).execute();
    });
    // Answer the chat as it now is, not as it was read before the update.
    return toChat({ ...chat, ...set });
  }
  return toChat(chat);
}
