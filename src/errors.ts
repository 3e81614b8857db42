/**
 * Every error code the API can answer with, in one table: code → HTTP status and default message.
 * Callers throw `new ApiError(code, message?)`; the status always comes from this table, and the
 * one error handler (http/error-handler.ts) writes the body. docs/errors.md lists the same codes,
 * and errors-doc.test.ts fails when the two differ.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: "The request failed validation." },
  invalid_handle: { status: 400, message: "The handle is not a valid E.164 phone number or email address." },
  invalid_from_handle: { status: 400, message: "from_handle is not a number assigned to your account." },
  invalid_attachments: { status: 400, message: "An attachment_id is unknown or already used by another message." },
  attachment_too_large: { status: 400, message: "An attachment is larger than the channel allows and cannot be transcoded to fit." },
  invalid_url: { status: 400, message: "The url is not a public http(s) endpoint." },
  unauthorized: { status: 401, message: "Missing or invalid API key." },
  forbidden: { status: 403, message: "This API key may not perform this request." },
  invalid_signature: { status: 403, message: "The signed URL is invalid or has expired." },
  not_found: { status: 404, message: "The resource does not exist." },
  method_not_allowed: { status: 405, message: "This method is not allowed on this path." },
  request_timeout: { status: 408, message: "The request was not received in full in time." },
  conflict: { status: 409, message: "The action does not apply to the resource in its current state." },
  not_a_group: { status: 409, message: "This operation applies to group chats only." },
  idempotency_key_in_use: {
    status: 409,
    message: "A request with this Idempotency-Key is still being processed. Retry shortly.",
  },
  payload_too_large: { status: 413, message: "The request body is larger than the limit." },
  unsupported_media_type: { status: 415, message: "The Content-Type of the request is not supported here." },
  idempotency_key_reused: {
    status: 422,
    message: "This Idempotency-Key was already used with a different request.",
  },
  rate_limited: { status: 429, message: "Rate limit exceeded. Retry after the time in Retry-After." },
  sender_queue_full: {
    status: 429,
    message: "The sending number's backlog already exceeds its validity window. Retry later.",
  },
  daily_limit_exceeded: { status: 429, message: "The account's daily sending limit is reached. Retry after the time in Retry-After." },
  headers_too_large: { status: 431, message: "The request headers are larger than the limit." },
  internal_error: { status: 500, message: "An internal error occurred." },
  reaction_failed: { status: 502, message: "The device could not send the reaction." },
  edit_failed: { status: 502, message: "The device could not edit the message." },
  unsend_failed: { status: 502, message: "The device could not unsend the message." },
  chat_create_failed: { status: 502, message: "The device could not create the group chat." },
  rename_failed: { status: 502, message: "The device could not rename the group chat." },
  participant_add_failed: { status: 502, message: "The device could not add the participant." },
  participant_remove_failed: { status: 502, message: "The device could not remove the participant." },
  read_failed: { status: 502, message: "The device could not mark the chat read." },
  typing_failed: { status: 502, message: "The device could not send the typing indicator." },
  lookup_failed: { status: 502, message: "The device could not look up the handle." },
  device_offline: { status: 503, message: "The sending number's device is temporarily offline. Safe to retry." },
  unavailable: { status: 503, message: "The service is temporarily unavailable. Safe to retry." },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function statusOf(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** The one exception type that becomes an HTTP error response. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. Retry-After on 409 idempotency_key_in_use and 429. */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, headers: Record<string, string> = {}) {
    super(message ?? ERRORS[code].message);
    this.name = "ApiError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = headers;
  }
}
