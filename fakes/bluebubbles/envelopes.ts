// ---- envelopes (responses/success.ts, responses/errors.ts; §1.1) -----------------------------------
import type { Json, Reply } from "./types.js";

/** An HTTP error answered with BlueBubbles' error envelope `{status, message, error:{type, message}, data?}`. */
export class BBError extends Error {
  constructor(readonly status: number, readonly body: Json) { super(String(body.message)); }
}
function errorBody(status: number, message: string, type: string, error: string, data?: unknown): Json {
  return { status, message, error: { type, message: error }, ...(data === undefined ? {} : { data }) };
}
export const badRequest = (e: string) => new BBError(400, errorBody(400, "You've made a bad request! Please check your request params & body", "Validation Error", e));
export const notFound = (e: string) => new BBError(404, errorBody(404, "The requested resource was not found", "Database Error", e));
export const unauthorized = (e: string) => new BBError(401, errorBody(401, "You are not authorized to access this resource", "Authentication Error", e));
export const imessageError = (message: string, e: string, data?: unknown) => new BBError(500, errorBody(500, message, "iMessage Error", e, data));
/** A plain `throw new Error()` inside an interface, wrapped by `errorMiddleware.ts`. */
export const serverError = (e: string) => new BBError(500, errorBody(500, "An unhandled error has occurred!", "Server Error", e));

export function ok(message: string, data?: unknown, metadata?: Json): Reply {
  return { json: { status: 200, message, ...(data === undefined ? {} : { data }), ...(metadata ? { metadata } : {}) } };
}
