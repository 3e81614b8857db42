/**
 * Registration-time check of a webhook URL (reliability.md WH-R7, table §2.7).
 *
 * This check is advice to the customer, not the defence: DNS can change between now and a
 * delivery, so agent.ts repeats the address check on every connection. What this adds is an early,
 * clear 400 for URLs that could never be delivered.
 *
 * Messages never contain an address: a resolved internal IP is exactly what an attacker probing
 * the network would want to read back (WH-R7).
 */
import { isIP } from "node:net";
import { ApiError } from "../errors.js";
import { type AddressPolicy, isDeniedAddress, type Resolver } from "./address-policy.js";

export const MAX_WEBHOOK_URL_LENGTH = 2048;

const MESSAGES = {
  notUrl: "url is not a valid absolute http(s) URL.",
  tooLong: `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters.`,
  spaces: "url must not contain spaces or control characters.",
  scheme: "url must use http or https.",
  credentials: "url must not contain a username or password.",
  localName: "url host is a local or internal name, not a public endpoint.",
  notPublic: "url host is not a public address.",
  resolvesPrivate: "url host resolves to a non-public address.",
  noAnswer: "url host does not resolve.",
} as const;

function invalid(message: string): ApiError {
  return new ApiError("invalid_url", message);
}

/** Format checks (WHATWG parse, scheme, userinfo, length, characters); no network. */
function parseWebhookUrl(raw: string): URL {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) throw invalid(MESSAGES.tooLong);
  // WHATWG parsing silently drops tabs and newlines and trims spaces, so "exa\nmple.com" would
  // become another host than the one the customer sees; refuse such input instead of guessing.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw)) throw invalid(MESSAGES.spaces);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(MESSAGES.notUrl);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalid(MESSAGES.scheme);
  if (url.username !== "" || url.password !== "") throw invalid(MESSAGES.credentials);
  // Percent-encoding of non-ASCII paths can make the stored form longer than the input.
  if (url.href.length > MAX_WEBHOOK_URL_LENGTH) throw invalid(MESSAGES.tooLong);
  return url;
}

/** Cloud metadata services by name: denied whatever the operator allows. */
const METADATA_NAMES = new Set(["metadata.google.internal", "metadata.amazonaws.com"]);

/**
 * Names that can only mean this machine (RFC 6761 localhost) or a private network (.internal,
 * ICANN's private-use TLD), denied before any DNS query. Once the operator has opened private
 * targets (allowPrivate or allowCidrs), the addresses they resolve to decide instead, so that
 * `http://localhost:3000` works in local development and `hooks.corp.internal` on an allowed LAN.
 */
function isDeniedName(host: string, policy: AddressPolicy): boolean {
  if (METADATA_NAMES.has(host)) return true;
  if (policy.allowPrivate || policy.allowCidrs.length > 0) return false;
  return (
    host === "localhost" || host.endsWith(".localhost") || host === "internal" || host.endsWith(".internal")
  );
}

/** getaddrinfo's "temporary failure": the name may well exist, our DNS is what failed. */
function isTemporaryDnsFailure(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "EAI_AGAIN";
}

/**
 * Returns the parsed URL when a webhook may be registered at `raw`; throws ApiError
 * `invalid_url` otherwise. A name that does not exist (NXDOMAIN) is a typo: refused. When DNS
 * itself is failing the name is accepted (reliability.md §9 decision 6): refusing would make our
 * outage the customer's error, and every delivery checks the address again before it connects.
 */
export async function checkWebhookUrl(raw: string, policy: AddressPolicy, resolve: Resolver): Promise<URL> {
  const url = parseWebhookUrl(raw);
  // WHATWG has already lower-cased the name and turned every IPv4 spelling (0x7f.1, 2130706433,
  // ①②⑦.⓪.⓪.①, %31%32%37…) into a dotted quad; IPv6 literals keep their brackets.
  const hostname = url.hostname;
  const literal = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  if (isIP(literal) !== 0) {
    if (isDeniedAddress(literal, policy)) throw invalid(MESSAGES.notPublic);
    return url;
  }
  if (isDeniedName(hostname.replace(/\.+$/, ""), policy)) throw invalid(MESSAGES.localName);

  let answers: Awaited<ReturnType<Resolver>>;
  try {
    answers = await resolve(hostname);
  } catch (err) {
    if (isTemporaryDnsFailure(err)) return url;
    throw invalid(MESSAGES.noAnswer);
  }
  if (answers.length === 0) throw invalid(MESSAGES.noAnswer);
  // One denied answer is enough: the connection may go to any of them (happy eyeballs, retries).
  if (answers.some((answer) => isDeniedAddress(answer.address, policy))) throw invalid(MESSAGES.resolvesPrivate);
  return url;
}
