import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type Static, Type } from "typebox";
import type { Services } from "../app.js";
import type { Tx } from "../db/client.js";
import type { WebhookDeliveriesTable, WebhookEndpointsTable } from "../db/schema.js";
import { Envelope, ListEnvelope, commonErrors, list, ok } from "../http/envelope.js";
import { resolveCursor } from "../http/pagination.js";
import type { Scope } from "../messages/store.js";
import { DeliveryListQuery, DeliveryParams, type Webhook, WebhookIn, WebhookListQuery, WebhookParams, WebhookPatch } from "./schemas.js";
import { createEndpoint, deleteEndpoint, queueTestEvent, retryDelivery, rotateSecret, updateEndpoint } from "./service.js";
import { getDeliveryRow, getEndpointRow, listDeliveries, listEndpoints, toDelivery, toWebhook } from "./store.js";

const WebhookRef = Type.Ref("Webhook");
const DeliveryRef = Type.Ref("WebhookDelivery");
const One = Envelope(WebhookRef);
const OneDelivery = Envelope(DeliveryRef);
const errors = { ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 422: Type.Ref("Error") };
const NoBody = { type: ["object", "null"], properties: {}, additionalProperties: false } as const;
const tags = ["webhooks"];

/** The answers that show the signing secret: create, rotate-secret, and their idempotent replays. */
const withSecret = (row: WebhookEndpointsTable): Webhook => ({ ...toWebhook(row), secret: row.secret });

export function register(app: FastifyInstance, s: Services): void {
  const scope = (req: { auth: Scope }): Scope => ({ accountId: req.auth.accountId, mode: req.auth.mode });
  /** The URL as checked at registration, normalised (WHATWG); DNS runs before any transaction. */
  const checkUrl = async (raw: string) => (await s.checkWebhookUrl(raw)).href;
  /** Queues one delivery of endpoint :id (a test event, a retry), idempotently; 202 with it. */
  const queueDelivery = async (
    req: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
    queue: (trx: Tx, sc: Scope) => Promise<WebhookDeliveriesTable>,
  ) => {
    const sc = scope(req);
    const data = await s.idempotency.create(req, reply, {
      resourceType: "webhook_delivery",
      status: 202,
      create: async (trx) => {
        const row = await queue(trx, sc);
        return { id: row.id, body: toDelivery(row) };
      },
      load: async (db, id) => toDelivery(await getDeliveryRow(db, (await getEndpointRow(db, sc, req.params.id)).id, id)),
    });
    s.webhooks.wake();
    return ok(req, data);
  };

  app.post<{ Body: Static<typeof WebhookIn> }>(
    "/webhooks",
    { schema: { tags, summary: "Register a webhook endpoint", body: WebhookIn, response: { 200: One, 201: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const url = await checkUrl(req.body.url);
      const data = await s.idempotency.create(req, reply, {
        resourceType: "webhook",
        status: 201,
        create: async (trx) => {
          const row = await createEndpoint(trx, s.clock, sc, url, req.body.events);
          return { id: row.id, body: withSecret(row) };
        },
        load: async (db, id) => withSecret(await getEndpointRow(db, sc, id)),
      });
      return ok(req, data);
    },
  );

  app.get<{ Querystring: Static<typeof WebhookListQuery> }>(
    "/webhooks",
    { schema: { tags, summary: "List webhook endpoints, newest first", querystring: WebhookListQuery, response: { 200: ListEnvelope(WebhookRef), ...errors } } },
    async (req) => {
      const sc = scope(req);
      const cursor = await resolveCursor(req.query.before, async (id) =>
        (await s.db.kysely.selectFrom("webhook_endpoints").select("created_at").where("id", "=", id).where("account_id", "=", sc.accountId).where("mode", "=", sc.mode).executeTakeFirst())?.created_at,
      );
      const { items, hasMore } = await listEndpoints(s.db.kysely, sc, cursor, req.query.limit ?? 50);
      return list(req, items, hasMore);
    },
  );

  app.get<{ Params: Static<typeof WebhookParams> }>(
    "/webhooks/:id",
    { schema: { tags, summary: "Get a webhook endpoint", params: WebhookParams, response: { 200: One, ...errors } } },
    async (req) => ok(req, toWebhook(await getEndpointRow(s.db.kysely, scope(req), req.params.id))),
  );

  app.patch<{ Params: Static<typeof WebhookParams>; Body: Static<typeof WebhookPatch> }>(
    "/webhooks/:id",
    { schema: { tags, summary: "Change a webhook endpoint's url, events or enabled", params: WebhookParams, body: WebhookPatch, response: { 200: One, ...errors } } },
    async (req) => {
      const url = req.body.url === undefined ? undefined : await checkUrl(req.body.url);
      const row = await s.db.transaction((trx) => updateEndpoint(trx, s.clock, scope(req), req.params.id, { ...req.body, url }));
      s.webhooks.wake();
      return ok(req, toWebhook(row));
    },
  );

  app.delete<{ Params: Static<typeof WebhookParams> }>(
    "/webhooks/:id",
    { schema: { tags, summary: "Delete a webhook endpoint and its delivery log", params: WebhookParams, response: { 200: One, ...errors } } },
    async (req) => ok(req, toWebhook(await s.db.transaction((trx) => deleteEndpoint(trx, scope(req), req.params.id)))),
  );

  app.post<{ Params: Static<typeof WebhookParams> }>(
    "/webhooks/:id/rotate-secret",
    { schema: { tags, summary: "Rotate the signing secret (the old one keeps signing for 24 hours)", params: WebhookParams, body: NoBody, response: { 200: One, ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await s.idempotency.create(req, reply, {
        resourceType: "webhook",
        status: 200,
        create: async (trx) => {
          const row = await rotateSecret(trx, s.clock, sc, req.params.id);
          return { id: row.id, body: withSecret(row) };
        },
        load: async (db, id) => withSecret(await getEndpointRow(db, sc, id)),
      });
      return ok(req, data);
    },
  );

  app.post<{ Params: Static<typeof WebhookParams> }>(
    "/webhooks/:id/test",
    { schema: { tags, summary: "Send a signed webhook.test event to this endpoint", params: WebhookParams, body: NoBody, response: { 200: OneDelivery, 202: OneDelivery, ...errors } } },
    async (req, reply) => queueDelivery(req, reply, (trx, sc) => queueTestEvent(trx, s.clock, sc, req.params.id)),
  );

  app.get<{ Params: Static<typeof WebhookParams>; Querystring: Static<typeof DeliveryListQuery> }>(
    "/webhooks/:id/deliveries",
    { schema: { tags, summary: "The endpoint's deliveries, newest first", params: WebhookParams, querystring: DeliveryListQuery, response: { 200: ListEnvelope(DeliveryRef), ...errors } } },
    async (req) => {
      const endpoint = await getEndpointRow(s.db.kysely, scope(req), req.params.id);
      const { limit = 50, before, status } = req.query;
      const cursor = await resolveCursor(before, async (id) =>
        (await s.db.kysely.selectFrom("webhook_deliveries").select("created_at").where("id", "=", id).where("endpoint_id", "=", endpoint.id).executeTakeFirst())?.created_at,
      );
      const { items, hasMore } = await listDeliveries(s.db.kysely, endpoint.id, status, cursor, limit);
      return list(req, items, hasMore);
    },
  );

  app.post<{ Params: Static<typeof DeliveryParams> }>(
    "/webhooks/:id/deliveries/:delivery_id/retry",
    { schema: { tags, summary: "Redeliver now", params: DeliveryParams, body: NoBody, response: { 200: OneDelivery, 202: OneDelivery, ...errors } } },
    async (req, reply) => queueDelivery(req, reply, (trx, sc) => retryDelivery(trx, s.clock, sc, req.params.id, req.params.delivery_id)),
  );
}
