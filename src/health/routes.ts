import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { Type } from "typebox";
import type { Db } from "../db/client.js";
import { ApiError } from "../errors.js";
import { Envelope, ok } from "../http/envelope.js";

const Status = Envelope(Type.Object({ status: Type.String() }, { additionalProperties: false }));
const NoQuery = Type.Object({}, { additionalProperties: false });

/** Liveness, readiness and metrics: unauthenticated, for load balancers and Prometheus. */
export function register(app: FastifyInstance, deps: { db: Db; metrics: Registry }): void {
  app.get("/healthz", { schema: { tags: ["operations"], security: [], querystring: NoQuery, response: { 200: Status } } }, async (req) =>
    ok(req, { status: "ok" }),
  );

  app.get(
    "/readyz",
    { schema: { tags: ["operations"], security: [], querystring: NoQuery, response: { 200: Status, 503: Type.Ref("Error") } } },
    async (req) => {
      if (!(await deps.db.ping())) throw new ApiError("unavailable", "The database is not reachable.");
      return ok(req, { status: "ready" });
    },
  );

  app.get("/metrics", { schema: { tags: ["operations"], querystring: NoQuery, hide: true } }, async (_req, reply) => {
    reply.type(deps.metrics.contentType);
    return deps.metrics.metrics();
  });
}
