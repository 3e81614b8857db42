import type { FastifyInstance } from "fastify";
import { Type, type Static } from "typebox";
import type { Services } from "../app.js";
import { deviceNumber } from "../backends/registry.js";
import { ApiError } from "../errors.js";
import { Envelope, commonErrors, ok } from "../http/envelope.js";
import { normaliseHandle } from "../handles.js";
import { cachedLookup, lookupFromCache, recommendedChannel } from "../dispatch/routing.js";
import { requireOnline, senderNumber } from "../messages/service.js";

const LookupQuery = Type.Object(
  { handle: Type.String({ minLength: 1, maxLength: 320 }), from_handle: Type.String({ minLength: 1, maxLength: 320 }) },
  { additionalProperties: false },
);

const Lookup = Type.Object(
  {
    handle: Type.String(),
    imessage: Type.Union([Type.Boolean(), Type.Null()]),
    whatsapp: Type.Union([Type.Boolean(), Type.Null()]),
    recommended_channel: Type.Union([Type.Literal("imessage"), Type.Literal("sms"), Type.Literal("whatsapp"), Type.Null()]),
  },
  { additionalProperties: false },
);

/** GET /v1/lookup: how a handle can be reached from one of your numbers (cached). */
export function register(app: FastifyInstance, s: Services): void {
  app.get<{ Querystring: Static<typeof LookupQuery> }>(
    "/lookup",
    {
      schema: {
        tags: ["lookup"],
        summary: "Which channels reach a handle from one of your numbers",
        querystring: LookupQuery,
        response: { 200: Envelope(Lookup), ...commonErrors, 502: Type.Ref("Error") },
      },
    },
    async (req) => {
      const scope = { accountId: req.auth.accountId, mode: req.auth.mode };
      const target = normaliseHandle(req.query.handle);
      if (!target) throw new ApiError("invalid_handle", "handle is not a valid E.164 phone number or email address.");
      const number = await senderNumber(s.db.kysely, scope, req.query.from_handle);
      const dn = deviceNumber(number, scope.mode);
      // A cached answer needs no device, so it is given even while the device is offline.
      let caps = await lookupFromCache(s.db.kysely, s.clock, s.config.LOOKUP_CACHE_HOURS, dn, target.handle);
      if (!caps) {
        requireOnline(number, scope);
        try {
          caps = await cachedLookup(s.db.kysely, s.clock, s.config.LOOKUP_CACHE_HOURS, s.backends.for(number, scope.mode), dn, target.handle);
        } catch (err) {
          req.log.warn({ err }, "lookup failed");
          throw new ApiError("lookup_failed");
        }
      }
      const serves = dn.channels.filter((c) => c === "imessage" || target.kind === "phone");
      return ok(req, { handle: target.handle, imessage: caps.imessage, whatsapp: caps.whatsapp, recommended_channel: recommendedChannel(serves, caps) });
    },
  );
}
