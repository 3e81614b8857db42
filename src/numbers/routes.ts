import type { FastifyInstance } from "fastify";
import { commonErrors, ListEnvelope, list } from "../http/envelope.js";
import type { Db } from "../db/client.js";
import { NumbersQuery, PhoneNumber } from "./schemas.js";
import { accountNumbers, type NumberRecord, statusFor } from "./store.js";
import { VersionedCache } from "../db/versioned-cache.js";

export function register(app: FastifyInstance, deps: { db: Db }): void {
  const byAccount = new VersionedCache<NumberRecord[]>(deps.db);
  app.get(
    "/numbers",
    {
      schema: {
        tags: ["numbers"],
        summary: "List the account's sending numbers",
        querystring: NumbersQuery,
        response: { 200: ListEnvelope(PhoneNumber), ...commonErrors },
      },
    },
    async (req) => {
      const numbers = await byAccount.get(req.auth.accountId, () => accountNumbers(deps.db.kysely, req.auth.accountId));
      const data = numbers.map((n) => ({ handle: n.handle, channels: n.channels, label: n.label, status: statusFor(n, req.auth.mode) }));
      return list(req, data, false);
    },
  );
}
