/**
 * The app every fuzz test runs against.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Resolver } from "../src/webhooks/address-policy.js";
import { buildTestApp, type TestApp, type TestAppOptions } from "./helpers.js";

/**
 * Webhook DNS for the fuzz apps (tests never reach the internet): `*.example.com` resolves to a
 * public address, `*.example.net` to a private one (refused), anything else does not resolve.
 * Nothing is ever delivered: the webhook worker is not run.
 */
export const fuzzResolver: Resolver = async (hostname) => {
  if (hostname === "example.com" || hostname.endsWith(".example.com")) return [{ address: "93.184.215.14", family: 4 }];
  if (hostname.endsWith(".example.net")) return [{ address: "10.1.2.3", family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
};

let tmp: string;

/** The fuzz app: real limits relaxed so thousands of requests are not rate limited; webhook DNS faked. */
export async function fuzzApp(extra: TestAppOptions["config"] = {}): Promise<TestApp> {
  tmp = await mkdtemp(join(tmpdir(), "mb-fuzz-"));
  return buildTestApp({
    config: { RATE_LIMIT_PER_MINUTE: 10_000_000, AUTH_FAILURE_LIMIT_PER_MINUTE: 10_000_000, ATTACHMENTS_DIR: tmp, ...extra },
    webhookResolver: fuzzResolver,
  });
}

export async function closeApp(t: TestApp): Promise<void> {
  await t.close();
  await rm(tmp, { recursive: true, force: true });
}
