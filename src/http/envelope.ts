import type { FastifyRequest } from "fastify";
import { type TSchema, Type } from "typebox";
import { ERROR_CODES, type ErrorCode } from "../errors.js";

/**
 * The only places that write the documented envelopes: `{ data, request_id }` for one object and
 * `{ data, has_more, request_id }` for lists. Their schemas make the response serialiser drop any
 * field that is not in the contract.
 */
export function ok<T>(req: FastifyRequest, data: T): { data: T; request_id: string } {
  return { data, request_id: req.id };
}

export function list<T>(req: FastifyRequest, data: T[], hasMore: boolean): { data: T[]; has_more: boolean; request_id: string } {
  return { data, has_more: hasMore, request_id: req.id };
}

const RequestId = Type.String({ pattern: "^req_[0-9a-f]{32}$", description: "Also sent as the X-Request-Id header." });

export const Envelope = <T extends TSchema>(data: T) =>
  Type.Object({ data, request_id: RequestId }, { additionalProperties: false });

export const ListEnvelope = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), has_more: Type.Boolean(), request_id: RequestId }, { additionalProperties: false });

export const ErrorBody = Type.Object(
  {
    error: Type.Unsafe<ErrorCode>({ type: "string", enum: ERROR_CODES, description: "Stable machine-readable code." }),
    message: Type.String({ description: "Human-readable; may change." }),
    request_id: RequestId,
  },
  { additionalProperties: false, $id: "Error" },
);

/** Error responses every authenticated route can give, for the OpenAPI document. */
export const commonErrors = {
  400: Type.Ref("Error"),
  401: Type.Ref("Error"),
  403: Type.Ref("Error"),
  429: Type.Ref("Error"),
  500: Type.Ref("Error"),
  503: Type.Ref("Error"),
};
