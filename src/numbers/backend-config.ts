import { randomBytes } from "node:crypto";
import type { ChannelName } from "../db/schema.js";
import { ApiError } from "../errors.js";

/** Back-ends a number can be served by, and the channels each one serves. */
export const BACKENDS = ["simulator", "bluebubbles", "waha"] as const;
export type BackendName = (typeof BACKENDS)[number];

export const SERVES: Record<BackendName, readonly ChannelName[]> = {
  simulator: ["imessage", "sms", "whatsapp"],
  bluebubbles: ["imessage", "sms"],
  waha: ["whatsapp"],
};

/** What the operator passes on the CLI for a real back-end. */
export interface BackendSettings {
  url?: string | undefined;
  password?: string | undefined;
  apiKey?: string | undefined;
  session?: string | undefined;
}

/** Stored per back-end in `numbers.backend_config` (never shown by the public API). */
export interface BlueBubblesConfig {
  url: string;
  password: string;
  /** Authenticates the device's webhooks: BlueBubbles does not sign them, so it is in the URL. */
  ingestSecret: string;
}

export interface WahaConfig {
  url: string;
  apiKey: string;
  session: string;
  /** In the ingest URL, and the key of WAHA's HMAC signature when the server signs. */
  ingestSecret: string;
}

export type StoredBackends = { bluebubbles?: BlueBubblesConfig; waha?: WahaConfig };

export function checkBackend(backend: string): BackendName {
  if (!(BACKENDS as readonly string[]).includes(backend)) {
    throw new ApiError("invalid_request", `backend must be one of: ${BACKENDS.join(", ")}.`);
  }
  return backend as BackendName;
}

function baseUrl(raw: string | undefined, flag: string): string {
  if (!raw) throw new ApiError("invalid_request", `${flag} is required for this back-end.`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ApiError("invalid_request", `${flag} must be an http(s) URL.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new ApiError("invalid_request", `${flag} must be an http(s) URL.`);
  return url.href.replace(/\/+$/, "");
}

function required(value: string | undefined, flag: string): string {
  if (!value) throw new ApiError("invalid_request", `${flag} is required for this back-end.`);
  return value;
}

const secret = () => randomBytes(24).toString("base64url");

function settingsFor(name: BackendName, s: BackendSettings, previous: StoredBackends): StoredBackends {
  switch (name) {
    case "simulator":
      return {};
    case "bluebubbles":
      return {
        bluebubbles: {
          url: baseUrl(s.url, "--url"),
          password: required(s.password, "--password"),
          ingestSecret: previous.bluebubbles?.ingestSecret ?? secret(),
        },
      };
    case "waha":
      return {
        waha: {
          url: baseUrl(s.url, "--url"),
          apiKey: required(s.apiKey, "--api-key"),
          session: s.session || "default",
          ingestSecret: previous.waha?.ingestSecret ?? secret(),
        },
      };
  }
}

/**
 * A number's back-ends after `name` is set: it replaces every back-end serving any of the same
 * channels (the simulator serves them all), and keeps the others — so a number can have its
 * iMessage/SMS on BlueBubbles and its WhatsApp on WAHA. Every channel the number sends must be
 * served by one of them.
 */
export function withBackend(current: { backend: string; backend_config: string } | null, name: BackendName, settings: BackendSettings, channels: readonly ChannelName[]) {
  const previous = current ? (JSON.parse(current.backend_config) as StoredBackends) : {};
  const kept = (current?.backend.split(",") ?? []).filter((b) => b !== name && b !== "simulator" && name !== "simulator" && !SERVES[b as BackendName].some((c) => SERVES[name].includes(c)));
  const names = [...kept, name].sort((a, b) => BACKENDS.indexOf(a as BackendName) - BACKENDS.indexOf(b as BackendName));
  const config: StoredBackends = { ...settingsFor(name, settings, previous) };
  for (const k of kept) Object.assign(config, { [k]: previous[k as keyof StoredBackends] });
  checkServed(names, channels);
  return { backend: names.join(","), backend_config: JSON.stringify(config) };
}

export function checkServed(backends: readonly string[], channels: readonly ChannelName[]): void {
  const unserved = channels.filter((c) => !backends.some((b) => SERVES[b as BackendName]?.includes(c)));
  if (unserved.length > 0) {
    const hint = unserved.includes("whatsapp") ? " (WhatsApp: --backend waha)" : " (iMessage/SMS: --backend bluebubbles)";
    throw new ApiError("invalid_request", `No back-end of this number serves ${unserved.join(", ")}${hint}.`);
  }
}

/** The back-end serving `channel` for a number whose back-ends are `backend` (comma-separated). */
export function backendForChannel(backend: string, channel: ChannelName): string | undefined {
  return backend.split(",").find((b) => SERVES[b as BackendName]?.includes(channel));
}
