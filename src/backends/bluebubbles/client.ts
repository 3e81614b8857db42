import type { Readable } from "node:stream";
import type { Config } from "../../config.js";
import type { BlueBubblesConfig } from "../../numbers/backend-config.js";
import type { DeviceNumber } from "../backend.js";
import { type DeviceReply, deviceCall, deviceDownload, type MultipartBody } from "../device-http.js";

/** BlueBubbles' error sentence when a Private API route runs without the helper (privateApiMiddleware.ts). */
const HELPER_DOWN = /private api|helper is connected/i;

export const PRIVATE_API_DOWN =
  "The BlueBubbles Private API helper is not connected on the Mac: reactions, edits, unsends, typing, read receipts, effects, replies and groups need it (see docs/backends.md).";

/** A BlueBubbles answer, unwrapped from its `{status, message, data}` / `{…, error}` envelope. */
export type BbReply =
  | { ok: true; data: unknown; metadata?: unknown }
  | { ok: false; reached: boolean; status: number; message: string; data?: unknown; helperDown: boolean };

export function bbConfig(number: DeviceNumber): BlueBubblesConfig {
  const cfg = number.config.bluebubbles as BlueBubblesConfig | undefined;
  if (!cfg) throw new Error(`number ${number.handle} has no BlueBubbles settings`);
  return cfg;
}

function unwrap(reply: DeviceReply): BbReply {
  if (reply.kind !== "answered") return { ok: false, reached: reply.kind === "lost", status: 0, message: `The Mac did not answer (${reply.error}).`, helperDown: false };
  const body = (reply.body ?? {}) as { message?: string; data?: unknown; metadata?: unknown; error?: { type?: string; message?: string } };
  if (reply.status >= 200 && reply.status < 300) return { ok: true, data: body.data, metadata: body.metadata };
  const message = [body.message, body.error?.message].filter(Boolean).join(": ") || `HTTP ${reply.status}`;
  return { ok: false, reached: true, status: reply.status, message, data: body.data, helperDown: HELPER_DOWN.test(message) };
}

/**
 * The BlueBubbles Server REST API (backends.md §1): `/api/v1/…`, authenticated by the server
 * password in the query string — it has no header auth.
 */
export class BlueBubblesClient {
  constructor(private readonly config: Config) {}

  private url(cfg: BlueBubblesConfig, path: string, query: Record<string, string> = {}): string {
    const q = new URLSearchParams({ ...query, password: cfg.password });
    return `${cfg.url}/api/v1${path}?${q}`;
  }

  async call(number: DeviceNumber, method: "GET" | "POST" | "PUT" | "DELETE", path: string, opts: { json?: unknown; query?: Record<string, string>; form?: MultipartBody; send?: boolean } = {}): Promise<BbReply> {
    const cfg = bbConfig(number);
    const reply = await deviceCall({
      method,
      url: this.url(cfg, path, opts.query),
      json: opts.json,
      ...(opts.form ? { form: opts.form } : {}),
      timeoutMs: opts.send ? this.config.DEVICE_SEND_TIMEOUT_MS : this.config.DEVICE_TIMEOUT_MS,
    });
    return unwrap(reply);
  }

  async download(number: DeviceNumber, attachmentGuid: string): Promise<{ stream: Readable; mimeType: string | undefined } | null> {
    const cfg = bbConfig(number);
    return deviceDownload(this.url(cfg, `/attachment/${encodeURIComponent(attachmentGuid)}/download`), {}, this.config.DEVICE_TIMEOUT_MS);
  }
}

/** `chat/:guid` paths carry GUIDs with `;` and `+`: always encoded. */
export const chatPath = (chatGuid: string, rest = "") => `/chat/${encodeURIComponent(chatGuid)}${rest}`;
