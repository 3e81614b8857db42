import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { Services } from "../app.js";
import { storeInboundMedia } from "../attachments/inbound.js";
import { ApiError } from "../errors.js";
import { safeEqual } from "../keys/secret.js";
import { Envelope, ok } from "../http/envelope.js";
import { applyDeviceEvents } from "../messages/ingest.js";
import { deviceNumber } from "./registry.js";
import { IngestRefused, type IngestTools } from "./live.js";
import type { NumbersTable } from "../db/schema.js";
import { groupByDeviceId } from "../chats/group-store.js";
import { participantsOf } from "../chats/group-change.js";

/** Equal secrets, compared in constant time (the ingest URL's secret authenticates the device). */
export function secretMatches(given: string | undefined, expected: string): boolean {
  return given !== undefined && safeEqual(given, expected);
}

/** The tools a back-end uses while normalising one number's device events. */
export function ingestTools(s: Services, number: NumbersTable): IngestTools {
  return {
    storeMedia: (media) => storeInboundMedia(s.db, s.attachments, { accountId: number.account_id, mode: "live" }, media),
    async messageByDeviceId(deviceId) {
      const row = await s.db.kysely
        .selectFrom("messages")
        .innerJoin("chats", "chats.id", "messages.chat_id")
        .select(["messages.id", "messages.direction", "chats.device_chat_id", "chats.remote_handle"])
        .where("messages.device_message_id", "=", deviceId)
        .where("messages.number_id", "=", number.id)
        .executeTakeFirst();
      return row ? { id: row.id, direction: row.direction, chatDeviceId: row.device_chat_id, remoteHandle: row.remote_handle } : null;
    },
    async groupParticipants(chatDeviceId) {
      const chat = await groupByDeviceId(s.db.kysely, number.id, "live", chatDeviceId);
      return chat ? participantsOf(chat) : null;
    },
  };
}

const Params = Type.Object({ backend: Type.String({ maxLength: 32 }), number_id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const Query = Type.Object({ secret: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });
const Accepted = Envelope(Type.Object({ events: Type.Integer() }, { additionalProperties: false }));

/**
 * Where real devices post their events (BlueBubbles webhooks, WAHA webhooks): outside /v1, since
 * the device has no API key — the per-number secret in the URL (and WAHA's HMAC, when it signs)
 * authenticates it. The body is kept raw for signatures, then normalised by the back-end and
 * applied in one transaction. A device that posts something we cannot use still gets a 2xx when
 * it authenticated: BlueBubbles never retries, and the poller recovers what was missed.
 */
export function register(app: FastifyInstance, s: Services): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: s.config.INGEST_BODY_LIMIT_BYTES }, (_req, body, done) => done(null, body));
    scope.post<{ Params: { backend: string; number_id: string }; Querystring: { secret?: string } }>(
      "/ingest/:backend/:number_id",
      { schema: { hide: true, params: Params, querystring: Query, response: { 200: Accepted } } },
      async (req) => {
        const backend = s.backends.named(req.params.backend);
        const number = await s.db.kysely.selectFrom("numbers").selectAll().where("id", "=", req.params.number_id).executeTakeFirst();
        if (!backend || !number?.backend.split(",").includes(backend.name)) throw new ApiError("not_found", "No such ingest URL.");
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        let body: unknown;
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch {
          throw new ApiError("invalid_request", "The body must be JSON.");
        }
        let events: Awaited<ReturnType<typeof backend.ingest>>;
        try {
          events = await backend.ingest(deviceNumber(number, "live"), { query: req.query, headers: req.headers, rawBody: raw, body }, ingestTools(s, number));
        } catch (err) {
          if (err instanceof IngestRefused) throw new ApiError("unauthorized", err.message);
          throw err;
        }
        if (events.length > 0) await s.db.transaction((trx) => applyDeviceEvents(trx, s.clock, events));
        return ok(req, { events: events.length });
      },
    );
  });
}
