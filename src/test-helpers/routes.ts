import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type, type Static } from "typebox";
import type { Services } from "../app.js";
import { iso } from "../clock.js";
import { ApiError } from "../errors.js";
import { emitEvents, type EventRow } from "../events/catalog.js";
import { Envelope, commonErrors, ok } from "../http/envelope.js";
import { normaliseHandle } from "../handles.js";
import { uuidv7 } from "../ids.js";
import { laneIdOf, lockLane, OFFLINE, saveLane } from "../dispatch/lanes.js";
import { chooseChannel } from "../dispatch/routing.js";
import { deviceNumber } from "../backends/registry.js";
import type { ChannelName, NumbersTable } from "../db/schema.js";
import { applyReceived } from "../messages/ingest.js";
import { senderNumber } from "../messages/service.js";
import { loadMessage } from "../messages/store.js";
import { PhoneNumber } from "../numbers/schemas.js";
import { inboundGroup, registerGroupHelpers } from "./groups.js";

const InboundIn = Type.Object(
  {
    from_handle: Type.String({ minLength: 1, maxLength: 320, description: "Your number that receives the message." }),
    remote_handle: Type.String({ minLength: 1, maxLength: 320, description: "The contact who sends it." }),
    text: Type.Optional(Type.String({ minLength: 1, maxLength: 10_000 })),
    attachment_ids: Type.Optional(Type.Array(Type.String({ format: "uuid" }), { minItems: 1, maxItems: 10, uniqueItems: true, description: "Files this account uploaded, sent by the contact (inbound media)." })),
    conversation_id: Type.Optional(Type.String({ format: "uuid", description: "A group chat: the message arrives in the group, from remote_handle (a participant)." })),
  },
  { additionalProperties: false },
);
const StatusIn = Type.Object({ status: Type.Union([Type.Literal("online"), Type.Literal("offline")]) }, { additionalProperties: false });
const HandleParams = Type.Object({ handle: Type.String({ minLength: 1, maxLength: 32 }) }, { additionalProperties: false });
// 409/422: not_a_group, and the Idempotency-Key answers (in use, reused) every POST can give.
const errors = { ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 422: Type.Ref("Error") };

/** Test-mode helpers (api.md §5): make the simulator do what a contact or a device would. */
export function register(app: FastifyInstance, s: Services): void {
  // A route-level onRequest hook runs right after authentication, before the body is parsed or
  // validated: a live key gets 403 whatever it sends, not a 400 about its body.
  const testOnly = async (req: FastifyRequest) => {
    if (req.auth.mode !== "test") throw new ApiError("forbidden", "Test helpers take test-mode keys only.");
  };

  app.post<{ Body: Static<typeof InboundIn> }>(
    "/test_helpers/inbound",
    { onRequest: testOnly, schema: { tags: ["test helpers"], summary: "Deliver an inbound message from a contact (simulator)", body: InboundIn, response: { 200: Envelope(Type.Ref("Message")), 201: Envelope(Type.Ref("Message")), ...errors } } },
    async (req, reply) => {
      const scope = { accountId: req.auth.accountId, mode: req.auth.mode };
      const { text, attachment_ids } = req.body;
      if (text === undefined && attachment_ids === undefined) throw new ApiError("invalid_request", "Send text, attachment_ids, or both.");
      const contact = normaliseHandle(req.body.remote_handle);
      if (!contact) throw new ApiError("invalid_handle", "remote_handle is not a valid E.164 phone number or email address.");
      const data = await s.idempotency.create(req, reply, {
        resourceType: "message",
        status: 201,
        create: async (trx) => {
          const number = await senderNumber(trx, scope, req.body.from_handle);
          const now = s.clock.now();
          const events: EventRow[] = [];
          // The channel the contact can write on, as a send to them would choose it: the SMS-only
          // recipient's messages arrive as SMS, not as iMessage.
          const dn = deviceNumber(number, "test");
          const caps = await s.backends.simulator.lookup(dn, contact.handle);
          // In a group, the group's channel; the device reports the group with the message.
          const inGroup = req.body.conversation_id ? await inboundGroup(trx, scope, req.body.conversation_id, number, contact.handle) : null;
          const channel = inGroup?.channel ?? chooseChannel(dn.channels, caps, null) ?? (dn.channels[0] as ChannelName);
          const row = await applyReceived(
            trx,
            s.clock,
            {
              kind: "received", numberHandle: number.handle, mode: "test", from: contact.handle, text: text ?? null, channel, deviceId: `sim-in-${uuidv7(now)}`, at: now,
              ...(inGroup ? { group: inGroup.group } : {}),
              ...(attachment_ids ? { attachmentIds: attachment_ids } : {}),
            },
            events,
          );
          // The contact "sends" files this account uploaded: each must be claimable, as for a send.
          if (attachment_ids && row?.attachment_count !== attachment_ids.length) {
            throw new ApiError("invalid_attachments", "An attachment_id is unknown, not uploaded yet, expired, or already used by another message.");
          }
          await emitEvents(trx, s.clock, events);
          if (!row) throw new Error("inbound message not stored");
          return { id: row.id, body: await loadMessage(trx, scope, row.id) };
        },
        load: (db, id) => loadMessage(db, scope, id),
      });
      return ok(req, data);
    },
  );

  app.post<{ Params: Static<typeof HandleParams>; Body: Static<typeof StatusIn> }>(
    "/test_helpers/numbers/:handle/status",
    { onRequest: testOnly, schema: { tags: ["test helpers"], summary: "Set a number's simulated device online or offline", params: HandleParams, body: StatusIn, response: { 200: Envelope(PhoneNumber), ...errors } } },
    async (req, reply) => {
      const scope = { accountId: req.auth.accountId, mode: req.auth.mode };
      const view = (n: NumbersTable) => ({ handle: n.handle, channels: n.channels.split(",") as ChannelName[], label: n.label, status: n.test_status });
      // Under the Idempotency-Key rules like every POST (a malformed key is 400, a retry a replay).
      const data = await s.idempotency.create(req, reply, {
        resourceType: "number",
        status: 200,
        load: async (db, id) => view(await db.selectFrom("numbers").selectAll().where("id", "=", id).executeTakeFirstOrThrow()),
        create: async (trx) => {
          const n = await senderNumber(trx, scope, req.params.handle).catch((err: unknown) => {
            if (err instanceof ApiError) throw new ApiError("not_found", "No such number.");
            throw err;
          });
          const status = req.body.status;
          if (n.test_status !== status) {
            await trx.updateTable("numbers").set({ test_status: status, updated_at: iso(s.clock.now()) }).where("id", "=", n.id).execute();
            const lane = await lockLane(trx, s.db, laneIdOf(n.id, "test"), n.id, "test");
            lane.paused_until = status === "offline" ? OFFLINE : 0;
            await saveLane(trx, lane);
            await emitEvents(trx, s.clock, [{ accountId: n.account_id, mode: "test", type: "number.status", data: { handle: n.handle, status } }]);
          }
          return { id: n.id, body: view({ ...n, test_status: status }) };
        },
      });
      s.dispatcher.wake();
      return ok(req, data);
    },
  );

  registerGroupHelpers(app, s, testOnly);
}
