import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import { ApiError } from "../errors.js";
import { requestId } from "../ids.js";
import { describeValidation } from "./validation.js";

/**
 * The one place that writes error responses. Known ApiErrors keep their code; schema failures,
 * malformed JSON and framework 4xx become documented codes; a lost database becomes
 * `503 unavailable`; everything else is logged with its stack and answered with the generic
 * `500 internal_error` — never the error's own message (api.md §1: a 5xx carries no internals).
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => sendError(req, reply, toApiError(err, req)));

  // Unknown route or unknown method on a known path: 405 with Allow when the path exists.
  const paths = FindMyWay();
  const methodsByRoute = new Map<string, Set<string>>();
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    let set = methodsByRoute.get(route.url);
    if (!set) {
      set = new Set();
      methodsByRoute.set(route.url, set);
      paths.on("GET", route.url, () => {}, { url: route.url });
    }
    for (const m of methods) set.add(m.toUpperCase());
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0] ?? "/";
    const found = paths.find("GET", path);
    const allowed = found ? methodsByRoute.get((found.store as { url: string }).url) : undefined;
    if (allowed && !allowed.has(req.method)) {
      reply.header("allow", [...allowed].sort().join(", "));
      return sendError(req, reply, new ApiError("method_not_allowed", `${req.method} is not allowed on ${path}.`));
    }
    return sendError(req, reply, new ApiError("not_found", "There is no such route."));
  });
}

/**
 * For Fastify's `frameworkErrors` option (set in app.ts): errors the router raises before any hook
 * runs — a URL that does not decode (FST_ERR_BAD_URL), a path parameter over maxParamLength.
 * Without it Fastify writes its own body, with neither request_id nor X-Request-Id.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  sendError(req, reply, toApiError(err, req));
}

/**
 * For Fastify's `clientErrorHandler` option (set in app.ts): what Node reports on a connection
 * outside any route — a request not received in full within its timeout (slow loris), headers
 * over Node's size limit, bytes that are not HTTP. Fastify's default answers in its own shape
 * ({error: "Request Timeout", statusCode}); this answers in ours, then closes the connection.
 */
export function clientErrors(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const e =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? new ApiError("request_timeout")
      : err.code === "HPE_HEADER_OVERFLOW"
        ? new ApiError("headers_too_large")
        : new ApiError("invalid_request", "The request is not valid HTTP.");
  const id = requestId();
  const body = JSON.stringify({ error: e.code, message: e.message, request_id: id });
  const head = `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${id}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n`;
  // As Node and Fastify do: small enough to be written at once, before the socket goes.
  if (socket.writable) socket.write(head + body);
  socket.destroy();
}

export function sendError(req: FastifyRequest, reply: FastifyReply, err: ApiError): FastifyReply {
  // Set here too, not only in the onRequest hook: framework errors reach this without any hook.
  reply.header("x-request-id", req.id);
  reply.header("x-content-type-options", "nosniff");
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.status).type("application/json; charset=utf-8").send({ error: err.code, message: err.message, request_id: req.id });
}

function toApiError(err: FastifyError, req: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  if (err.validation) return new ApiError("invalid_request", describeValidation(err.validation, err.validationContext));
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError("payload_too_large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError("unsupported_media_type", "Send the body as application/json.");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new ApiError("invalid_request", "The JSON body is empty.");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new ApiError("invalid_request", "The body is not valid JSON.");
    case "FST_ERR_BAD_URL":
      return new ApiError("invalid_request", "The URL is not valid.");
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new ApiError("invalid_request", "A path parameter is too long.");
  }
  if (err instanceof SyntaxError || err.statusCode === 400) return new ApiError("invalid_request", "The body is not valid JSON.");
  if (err.statusCode === 413) return new ApiError("payload_too_large");
  if (err.statusCode === 415) return new ApiError("unsupported_media_type");
  if (isUnavailable(err)) {
    req.log.warn({ err }, "database unavailable");
    return new ApiError("unavailable");
  }
  req.log.error({ err }, "unhandled error");
  return new ApiError("internal_error");
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN",
  "57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
  "08000", "08001", "08003", "08004", "08006", // connection exceptions
  "55P03", "40001", "40P01", "53300", "57014", // lock timeout, serialization, deadlock, too many connections, statement timeout
  "SQLITE_BUSY", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN",
]);

/** Errors that mean "the database is not reachable now", which the client may retry. */
export function isUnavailable(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e.code === "string" && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith("SQLITE_IOERR"))) return true;
  // "driver has already been destroyed": Kysely after Db.close() (shutdown) — retryable elsewhere.
  return (
    typeof e.message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|driver has already been destroyed/.test(e.message)
  );
}
