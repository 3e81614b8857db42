/**
 * A fuzz request: its parts, the HTTP request built from them, sending it to the app, and the
 * one-line description failure messages give of it.
 */
import assert from "node:assert/strict";
import type { LightMyRequestResponse } from "fastify";
import type { Operation } from "./fuzz-openapi.js";
import type { TestApp } from "./helpers.js";

// ───────────────────────────── requests ─────────────────────────────

/** A request as parts; `body` undefined = no body. */
export interface RequestParts {
  path: Record<string, string>;
  query: Record<string, unknown>;
  body?: unknown;
  /** Raw body text replacing the JSON of `body` (malformed JSON, 1e400, duplicate keys, deep nesting). */
  raw?: string;
  /** A multipart body (POST /v1/attachments). */
  multipart?: { payload: Buffer; headers: Record<string, string> };
  /** Overrides the content type (null: send none). */
  contentType?: string | null;
  /** Path segments written into the URL as they are, not encoded (`%zz`, an empty segment). */
  rawPath?: Record<string, string>;
  /** Query text appended as it is. */
  rawQuery?: string;
  headers?: Record<string, string>;
}

export interface FuzzRequest {
  op: Operation;
  parts: RequestParts;
  /** "valid", or the mutation that made it ("body.to: wrong type"). */
  mutation: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** Builds the HTTP request (URL, headers, payload) from its parts. */
export function toRequest(op: Operation, parts: RequestParts, mutation: string, auth: Record<string, string>): FuzzRequest {
  let url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => parts.rawPath?.[name] ?? encode(parts.path[name] ?? ""));
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(parts.query)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) qs.append(k, typeof one === "string" ? one : JSON.stringify(one));
  }
  const query = [qs.toString(), parts.rawQuery ?? ""].filter(Boolean).join("&");
  if (query) url += `?${query}`;
  const headers: Record<string, string> = { ...auth, ...parts.headers };
  let payload: string | Buffer | undefined;
  if (parts.multipart) {
    payload = parts.multipart.payload;
    Object.assign(headers, parts.multipart.headers);
  } else if (parts.raw !== undefined) payload = parts.raw;
  else if (parts.body !== undefined) payload = JSON.stringify(parts.body);
  if (payload !== undefined && !parts.multipart) headers["content-type"] = "application/json";
  if (parts.contentType === null) delete headers["content-type"];
  else if (parts.contentType !== undefined) headers["content-type"] = parts.contentType;
  return { op, parts, mutation, method: op.method, url, headers, ...(payload === undefined ? {} : { payload }) };
}

/** encodeURIComponent, with lone surrogates (which no URL can carry) as U+FFFD. */
export const wellFormed = (s: string): string => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
export const encode = (s: string): string => encodeURIComponent(wellFormed(s));

/** A request that gets no answer within this long (of real time) fails: the server hangs on it. */
const ANSWER_WITHIN_MS = 10_000;

export async function send(t: TestApp, req: FuzzRequest): Promise<LightMyRequestResponse> {
  const m = req.method as "GET";
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `no answer within ${ANSWER_WITHIN_MS} ms: ${describeRequest(req)}` })), ANSWER_WITHIN_MS);
  });
  try {
    return await Promise.race([t.app.inject({ method: m, url: req.url, headers: req.headers, ...(req.payload === undefined ? {} : { payload: req.payload }) }), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A one-line description of a request, for failure messages. */
export function describeRequest(req: FuzzRequest): string {
  const body = req.payload === undefined ? "" : ` body=${Buffer.isBuffer(req.payload) ? `<${req.payload.length} bytes multipart>` : clip(req.payload, 300)}`;
  const ct = req.headers["content-type"] === undefined ? "" : ` content-type=${JSON.stringify(req.headers["content-type"])}`;
  return `${req.method} ${clip(req.url, 300)} [${req.mutation}]${ct}${body}`;
}

export const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
