import { type Dispatcher, request } from "undici";
import { isSsrfBlocked } from "./agent.js";
import type { ClaimedDelivery } from "./claim.js";
import { eventBody } from "./payload.js";
import { parseRetryAfter, RESPONSE_SNIPPET_BYTES } from "./schedule.js";
import { signatureHeader } from "./signature.js";

export type AttemptOutcome =
  | { kind: "delivered"; status: number }
  /** `gone`: the endpoint answered 410 and asks not to be called again. */
  | { kind: "failed"; status: number | null; error: string; retryAfterMs: number | null; gone: boolean; snippet: string | null }
  /** The connection was refused by the address policy (DNS now points somewhere private). */
  | { kind: "blocked"; error: string };

export interface AttemptOptions {
  agent: Dispatcher;
  timeoutMs: number;
  /** The attempt's time (ms), from the injected clock: it becomes webhook-timestamp. */
  nowMs: number;
  userAgent: string;
}

/**
 * One HTTP attempt of a delivery (WH-R2, WH-R3, WH-R8). POSTs the event's bytes with the Standard
 * Webhooks headers through the pinned agent; redirects are not followed (undici's request() never
 * does). Success is a 2xx within `timeoutMs`; anything else is a failure. At most a few KB of the
 * answer are read, for the log; the rest is never read (the connection is dropped instead), so a
 * receiver that streams 100 MB costs nothing.
 *
 * Error texts name no address (WH-R8): they are stored for the customer and logged.
 */
export async function attemptDelivery(d: ClaimedDelivery, opts: AttemptOptions): Promise<AttemptOutcome> {
  if (!d.event) return { kind: "failed", status: null, error: "The event no longer exists.", retryAfterMs: null, gone: false, snippet: null };
  const body = eventBody(d.event);
  const timestamp = Math.floor(opts.nowMs / 1000);
  const headers = {
    "content-type": "application/json",
    "user-agent": opts.userAgent,
    "webhook-id": d.event.id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatureHeader(d.secrets, d.event.id, timestamp, body),
  };
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(d.url, { method: "POST", headers, body, dispatcher: opts.agent, signal });
  } catch (err) {
    if (isSsrfBlocked(err)) return { kind: "blocked", error: "blocked: the host resolves to a non-public address" };
    return { kind: "failed", status: null, error: describeError(err, opts.timeoutMs), retryAfterMs: null, gone: false, snippet: null };
  }
  const snippet = await readSnippet(res.body);
  if (res.statusCode >= 200 && res.statusCode < 300) return { kind: "delivered", status: res.statusCode };
  const retryAfterMs = res.statusCode === 429 || res.statusCode === 503 ? parseRetryAfter(res.headers["retry-after"], opts.nowMs) : null;
  return {
    kind: "failed",
    status: res.statusCode,
    error: `HTTP ${res.statusCode}${res.statusCode >= 300 && res.statusCode < 400 ? " (redirects are not followed)" : ""}`,
    retryAfterMs,
    gone: res.statusCode === 410,
    snippet,
  };
}

/** The first RESPONSE_SNIPPET_BYTES of a body; stops there and drops the connection. */
async function readSnippet(body: Dispatcher.ResponseData["body"]): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      chunks.push(buf);
      size += buf.length;
      if (size >= RESPONSE_SNIPPET_BYTES) break; // leaving the loop destroys the stream
    }
  } catch {
    // A body cut short (timeout, reset) changes nothing: the status already decided.
  } finally {
    if (!body.destroyed) body.destroy();
  }
  if (size === 0) return null;
  return Buffer.concat(chunks).subarray(0, RESPONSE_SNIPPET_BYTES).toString("utf8");
}

/** A network failure in words, from its code only: messages can carry the peer's address. */
function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string } | null;
  if (e?.name === "TimeoutError" || e?.name === "AbortError" || e?.code === "UND_ERR_HEADERS_TIMEOUT" || e?.code === "UND_ERR_CONNECT_TIMEOUT" || e?.code === "UND_ERR_BODY_TIMEOUT") {
    return `timeout: no answer within ${timeoutMs} ms`;
  }
  if (e?.code === "ENOTFOUND" || e?.code === "EAI_AGAIN") return `the host does not resolve (${e.code})`;
  const code = typeof e?.code === "string" && /^[A-Z0-9_]{1,40}$/.test(e.code) ? e.code : "unknown";
  return `connection failed (${code})`;
}
