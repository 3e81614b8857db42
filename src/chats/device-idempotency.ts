import type { FastifyReply, FastifyRequest } from "fastify";
import type { Idempotency } from "../http/idempotency.js";
import type { Commit } from "./group-create.js";

/**
 * A POST that acts on the device, under its Idempotency-Key (two-phase, http/idempotency.ts): the
 * key is claimed before the device call, and completed inside the very transaction that stores
 * the outcome — not in one of its own afterwards (as `Idempotency.action` does), so no crash can
 * leave a group created on the device and stored here with its key still open for a second
 * create. A refusal releases the key: errors never burn one. A replay answers 200 with the
 * resource as it is now, and calls no device.
 */
export async function underKey<T>(
  idempotency: Idempotency,
  req: FastifyRequest,
  reply: FastifyReply,
  op: { resourceType: string; status: 200 | 201; load(id: string): Promise<T>; run(commit: Commit): Promise<T> },
): Promise<T> {
  const claim = await idempotency.begin(req, op.resourceType);
  if (claim?.kind === "replay") return idempotency.replay(reply, { load: (_db, id) => op.load(id) }, claim.resourceId);
  let body: T;
  try {
    body = await op.run(async (trx, id) => {
      if (claim) await claim.complete(trx, id, op.status);
    });
  } catch (err) {
    await claim?.release();
    throw err;
  }
  reply.code(op.status);
  return body;
}
