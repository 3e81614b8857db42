import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { Agent, errors, request } from "undici";

/**
 * HTTP to device back-ends (a Mac running BlueBubbles, a WAHA server): operator-configured
 * addresses, usually on the LAN, so they keep their own Agent and are not subject to the
 * customer-webhook address policy.
 *
 * Every call ends in one of three answers, because a send's safety depends on which:
 * - `answered`: the device replied (any status), with its parsed JSON body when it had one;
 * - `unreachable`: no connection was made, so the request never reached the device (safe to retry);
 * - `lost`: the request may have reached the device and we never saw the answer (a send is
 *   ambiguous and must be reconciled before any resend).
 */
export type DeviceReply =
  | { kind: "answered"; status: number; body: unknown }
  | { kind: "unreachable"; error: string }
  | { kind: "lost"; error: string };

export interface DeviceCall {
  method: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  json?: unknown;
  /** A multipart body built by `multipart`. */
  form?: MultipartBody;
  timeoutMs: number;
}

/** Larger device answers are refused (BlueBubbles' biggest, a 1000-message query, is a few MB). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

const agent = new Agent({ connect: { timeout: 5_000 }, keepAliveTimeout: 10_000 });

/** Errors raised before a connection existed: the device never saw the request. */
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"]);

function codeOf(err: unknown): string {
  const e = err as { name?: string; code?: unknown; cause?: { code?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return "timeout";
  return e.cause?.code ?? (typeof e.code === "string" ? e.code : "");
}

export async function deviceCall(call: DeviceCall): Promise<DeviceReply> {
  const headers: Record<string, string> = { accept: "application/json", ...call.headers };
  let body: string | Readable | undefined;
  if (call.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(call.json);
  } else if (call.form) {
    headers["content-type"] = `multipart/form-data; boundary=${call.form.boundary}`;
    body = call.form.stream;
  }
  try {
    const res = await request(call.url, {
      method: call.method,
      headers,
      body: body ?? null,
      dispatcher: agent,
      headersTimeout: call.timeoutMs,
      bodyTimeout: call.timeoutMs,
      signal: AbortSignal.timeout(call.timeoutMs),
    });
    // A device's answers are small JSON: one that keeps streaming is cut off, not buffered whole.
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy();
        return { kind: "lost", error: "answer too large" };
      }
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text (error pages, "pong")
    }
    return { kind: "answered", status: res.statusCode, body: parsed };
  } catch (err) {
    const code = codeOf(err);
    if (NOT_CONNECTED.has(code) || err instanceof errors.ConnectTimeoutError) return { kind: "unreachable", error: code || String(err) };
    return { kind: "lost", error: code || (err as Error).name || "error" };
  }
}

/** Opens a device-served file (inbound media) as a stream; null when the device does not give it. */
export async function deviceDownload(url: string, headers: Record<string, string>, timeoutMs: number): Promise<{ stream: Readable; mimeType: string | undefined } | null> {
  try {
    const res = await request(url, { method: "GET", headers, dispatcher: agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    const type = res.headers["content-type"];
    return { stream: res.body, mimeType: typeof type === "string" ? type : undefined };
  } catch {
    return null;
  }
}

export interface MultipartBody {
  boundary: string;
  stream: Readable;
}

/**
 * A multipart/form-data body streamed from its parts, so an attachment goes to the device without
 * ever being held whole in memory (BlueBubbles takes files as multipart `attachment`).
 */
export function multipart(fields: Record<string, string | undefined>, file: { field: string; filename: string; mimeType: string; open(): Promise<Readable> }): MultipartBody {
  const boundary = `----msgbubbles${randomBytes(12).toString("hex")}`;
  const quote = (s: string) => s.replace(/["\r\n]/g, "_");
  async function* parts() {
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`);
    }
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.filename)}"\r\nContent-Type: ${file.mimeType}\r\n\r\n`);
    for await (const chunk of await file.open()) yield chunk as Buffer;
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  return { boundary, stream: Readable.from(parts()) };
}

/** E.164 handle ↔ the device's digits-only forms (WAHA `15551234567@c.us`). */
export const digitsOf = (handle: string) => handle.replace(/\D/g, "");
