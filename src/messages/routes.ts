import type { FastifyInstance } from "fastify";
import { type Static, Type } from "typebox";
import type { Services } from "../app.js";
import { Envelope, ListEnvelope, commonErrors, list, ok } from "../http/envelope.js";
import { resolveCursor } from "../http/pagination.js";
import { deleteMessage, editMessage, reactToMessage } from "./actions.js";
import { MessageIn, MessageListQuery, MessageParams, MessagePatch, ReactionIn } from "./schemas.js";
import { acceptMessage, retryMessage } from "./service.js";
import { countDailySend } from "./daily-limit.js";
import { type Scope, listMessages, loadMessage, toMessage } from "./store.js";

const MessageRef = Type.Ref("Message");
const One = Envelope(MessageRef);
const errors = { ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 422: Type.Ref("Error"), 502: Type.Ref("Error") };

export function register(app: FastifyInstance, s: Services): void {
  const scope = (req: { auth: Scope }): Scope => ({ accountId: req.auth.accountId, mode: req.auth.mode });
  const load = (id: string, sc: Scope) => loadMessage(s.db.kysely, sc, id);

  app.post<{ Body: MessageIn }>(
    "/messages",
    { schema: { tags: ["messages"], summary: "Send a message", body: MessageIn, response: { 200: One, 202: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await s.idempotency.create(req, reply, {
        resourceType: "message",
        status: 202,
        create: async (trx) => {
          const row = await acceptMessage(trx, s, sc, req.body);
          await countDailySend(trx, s.clock, sc, req.auth.dailySendLimit, s.config.DAILY_SEND_LIMIT);
          // The row is the whole answer, except for attachments, which are read back (with
          // freshly signed URLs) only when the message has some.
          return { id: row.id, body: row.attachment_count ? await loadMessage(trx, sc, row.id) : toMessage(row) };
        },
        load: (_db, id) => load(id, sc),
      });
      s.dispatcher.wake();
      return ok(req, data);
    },
  );

  app.get<{ Querystring: Static<typeof MessageListQuery> }>(
    "/messages",
    { schema: { tags: ["messages"], summary: "List messages, newest first", querystring: MessageListQuery, response: { 200: ListEnvelope(MessageRef), ...errors } } },
    async (req) => {
      const sc = scope(req);
      const { limit = 50, before, ...filter } = req.query;
      const cursor = await resolveCursor(before, async (id) =>
        (await s.db.kysely.selectFrom("messages").select("created_at").where("id", "=", id).where("account_id", "=", sc.accountId).where("mode", "=", sc.mode).executeTakeFirst())?.created_at,
      );
      const { items, hasMore } = await listMessages(s.db.kysely, sc, filter, cursor, limit);
      return list(req, items, hasMore);
    },
  );

  app.get<{ Params: Static<typeof MessageParams> }>(
    "/messages/:id",
    { schema: { tags: ["messages"], summary: "Get a message", params: MessageParams, response: { 200: One, ...errors } } },
    async (req) => ok(req, await load(req.params.id, scope(req))),
  );

  app.patch<{ Params: Static<typeof MessageParams>; Body: Static<typeof MessagePatch> }>(
    "/messages/:id",
    { schema: { tags: ["messages"], summary: "Edit a message", params: MessageParams, body: MessagePatch, response: { 200: One, ...errors } } },
    async (req) => {
      const row = await editMessage(s, scope(req), req.params.id, req.body.text);
      return ok(req, await load(row.id, scope(req)));
    },
  );

  app.delete<{ Params: Static<typeof MessageParams> }>(
    "/messages/:id",
    { schema: { tags: ["messages"], summary: "Cancel a queued message or unsend a sent one", params: MessageParams, response: { 200: One, ...errors } } },
    async (req) => {
      const row = await deleteMessage(s, scope(req), req.params.id);
      return ok(req, await load(row.id, scope(req)));
    },
  );

  app.post<{ Params: Static<typeof MessageParams>; Body: Static<typeof ReactionIn> }>(
    "/messages/:id/reactions",
    { schema: { tags: ["messages"], summary: "React to a message", params: MessageParams, body: ReactionIn, response: { 200: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await s.idempotency.action(req, reply, {
        resourceType: "message",
        status: 200,
        run: async () => {
          const row = await reactToMessage(s, sc, req.params.id, req.body.reaction, req.body.remove ?? false);
          return { id: row.id, body: await load(row.id, sc) };
        },
        load: (_db, id) => load(id, sc),
      });
      return ok(req, data);
    },
  );

  app.post<{ Params: Static<typeof MessageParams> }>(
    "/messages/:id/retry",
    { schema: { tags: ["messages"], summary: "Retry a failed message", params: MessageParams, body: RetryBody, response: { 200: One, 202: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await s.idempotency.create(req, reply, {
        resourceType: "message",
        status: 202,
        create: async (trx) => {
          const row = await retryMessage(trx, s, sc, req.params.id);
          return { id: row.id, body: await loadMessage(trx, sc, row.id) };
        },
        load: (_db, id) => load(id, sc),
      });
      s.dispatcher.wake();
      return ok(req, data);
    },
  );
}

/** Retry takes no body; an empty JSON object (or none) is accepted, anything else is refused. */
const RetryBody = { type: ["object", "null"], properties: {}, additionalProperties: false } as const;
