/** Errors a handler throws to answer with WAHA's HTTP error bodies. */

export const NOT_WORKING = "Session status is not as expected. Try again later or restart the session";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}
/** NestJS's own error body, `{message, error, statusCode}`: 400 validation, 401 auth guard, 404, 422. */
export const nest = (status: number, error: string, message: unknown) => new HttpError(status, { message, error, statusCode: status });
