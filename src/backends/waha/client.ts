import type { Readable } from "node:stream";
import type { Config } from "../../config.js";
import type { WahaConfig } from "../../numbers/backend-config.js";
import type { DeviceNumber } from "../backend.js";
import { type DeviceReply, deviceCall, deviceDownload } from "../device-http.js";

/**
 * Why a WAHA call did not succeed, in the terms the back-end decides on:
 * - `unreachable`: no connection, the request never reached WAHA;
 * - `lost`: sent, no answer in time (a send is ambiguous);
 * - `not_working`: the session is not WORKING (422 `{error, session, status, expected}`, §0.7),
 *   or does not exist on this server;
 * - `plus_only`: the feature needs WAHA Plus (Core's AvailableInPlusVersion, also a 422);
 * - `auth`: WAHA refused our API key;
 * - `refused`: any other 4xx;
 * - `engine`: a 5xx — an engine error, or a send that timed out inside WAHA.
 */
export type WahaFailure = "unreachable" | "lost" | "not_working" | "plus_only" | "auth" | "refused" | "engine";

export type WahaReply = { ok: true; status: number; data: unknown } | { ok: false; failure: WahaFailure; status: number; message: string };

export function wahaConfig(number: DeviceNumber): WahaConfig {
  const cfg = number.config.waha as WahaConfig | undefined;
  if (!cfg) throw new Error(`number ${number.handle} has no WAHA settings`);
  return cfg;
}

/** WAHA's error sentence, from whichever of its error bodies this is (NestJS, AllExceptionsFilter, 422 session). */
function messageOf(status: number, body: unknown): string {
  if (typeof body === "string" && body) return body.slice(0, 300);
  const b = (body ?? {}) as { message?: unknown; error?: unknown; exception?: { message?: unknown } };
  const parts = [b.exception?.message, Array.isArray(b.message) ? b.message.join("; ") : b.message, typeof b.error === "string" ? b.error : undefined];
  const found = parts.find((p): p is string => typeof p === "string" && p.length > 0);
  return found ?? `HTTP ${status}`;
}

const NOT_WORKING = /session status is not as expected/i;
const PLUS_ONLY = /plus version|available only in plus|AvailableInPlusVersion/i;

export function classify(reply: DeviceReply): WahaReply {
  if (reply.kind === "unreachable") return { ok: false, failure: "unreachable", status: 0, message: `WAHA is unreachable (${reply.error}).` };
  if (reply.kind === "lost") return { ok: false, failure: "lost", status: 0, message: `WAHA did not answer in time (${reply.error}).` };
  const { status, body } = reply;
  if (status >= 200 && status < 300) return { ok: true, status, data: body };
  const message = messageOf(status, body);
  const expected = Array.isArray((body as { expected?: unknown } | null)?.expected);
  let failure: WahaFailure = status >= 500 ? "engine" : "refused";
  // Both are 422: the session's body has `expected`, Core's Plus refusal names Plus (the fake and
  // WAHA's source agree; the sentence is the only difference between them).
  if (status === 422 && (expected || NOT_WORKING.test(message))) failure = "not_working";
  else if (status === 422 && PLUS_ONLY.test(message)) failure = "plus_only";
  else if (status === 404 && /didn't find a session|session .*not found/i.test(message)) failure = "not_working";
  else if (status === 401 || status === 403) failure = "auth";
  return { ok: false, failure, status, message };
}

/** The WAHA HTTP API (backends.md §2.1): `/api/…`, authenticated by the `X-Api-Key` header. */
export class WahaClient {
  constructor(private readonly config: Config) {}

  async call(
    number: DeviceNumber,
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    opts: { json?: unknown; query?: Record<string, string>; send?: boolean } = {},
  ): Promise<WahaReply> {
    const cfg = wahaConfig(number);
    const q = opts.query ? `?${new URLSearchParams(opts.query)}` : "";
    const reply = await deviceCall({
      method,
      url: `${cfg.url}${path}${q}`,
      headers: { "x-api-key": cfg.apiKey },
      json: opts.json,
      timeoutMs: opts.send ? this.config.DEVICE_SEND_TIMEOUT_MS : this.config.DEVICE_TIMEOUT_MS,
    });
    return classify(reply);
  }

  /**
   * An inbound file by the `media.url` of its message. WAHA builds that URL from its own
   * WAHA_BASE_URL, which need not be the address we reach it at (a container's localhost): a
   * `/api/files/…` URL elsewhere is fetched from the configured WAHA address instead. Only WAHA
   * itself is asked (with our API key); media WAHA stores elsewhere (Plus S3 storage) is not
   * fetched, and such a message arrives without its file (docs/backends.md).
   */
  async download(number: DeviceNumber, mediaUrl: string): Promise<{ stream: Readable; mimeType: string | undefined } | null> {
    const cfg = wahaConfig(number);
    let url: URL;
    try {
      url = new URL(mediaUrl, cfg.url);
    } catch {
      return null;
    }
    const key = { "x-api-key": cfg.apiKey };
    if (url.origin === new URL(cfg.url).origin) return deviceDownload(url.href, key, this.config.DEVICE_TIMEOUT_MS);
    const files = url.pathname.indexOf("/api/files/");
    if (files >= 0) return deviceDownload(`${cfg.url}${url.pathname.slice(files)}${url.search}`, key, this.config.DEVICE_TIMEOUT_MS);
    // Anything else (WAHA Plus' S3 storage, or any URL an event names) is not fetched: device
    // calls go through a LAN-trusting agent, so following event-supplied URLs would be SSRF.
    return null;
  }
}

/** Path segments (session, chat and message ids carry `@`): always encoded. */
export const seg = encodeURIComponent;
