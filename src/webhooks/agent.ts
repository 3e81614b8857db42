/**
 * The undici Agent used for customer webhooks, and only for them (reliability.md §2.5, WH-R8).
 * Device back-ends legitimately live on 127.0.0.1 or the LAN and keep their own Agent; never make
 * this one the global dispatcher.
 *
 * The address check happens where the connection is made, with the same DNS answer that is then
 * connected to, so a name that resolved to a public address at registration and to 127.0.0.1 now
 * (DNS rebinding) is refused:
 *   1. IP-literal hosts are checked here, because Node's net.connect never calls `lookup` for them.
 *   2. Names go through `lookup`, built on the injected Resolver: if ANY answer is denied the whole
 *      connection is refused, and only checked answers are handed to net.connect.
 *   3. After connecting, the socket's peer address is checked once more (defence in depth; for
 *      https it runs after the TLS handshake, so it guards the HTTP request, not the ClientHello).
 * `lookup` is passed to undici's own connector, which spreads it into net.connect/tls.connect, so
 * the URL keeps its hostname: SNI and certificate checks still see the real name.
 *
 * Redirects: undici's request() does not follow them unless a redirect interceptor is composed,
 * and none is; a 3xx comes back as a response (a failed attempt, WH-R3).
 * Proxies: an Agent ignores HTTP_PROXY/HTTPS_PROXY (only EnvHttpProxyAgent reads them), which is
 * what we want; an egress proxy, if any, would have to be the enforcement point itself.
 */
import type { LookupAddress, LookupOptions } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { Agent, buildConnector } from "undici";
import { type AddressPolicy, isDeniedAddress, type Resolver } from "./address-policy.js";

export const SSRF_BLOCKED = "ERR_SSRF_BLOCKED";

/**
 * A connection refused because its target is not public. Its message names no address, so it can
 * be logged and stored as the attempt's error as is (WH-R8: "no internal IP" in logs).
 */
export class SsrfBlockedError extends Error {
  readonly code = SSRF_BLOCKED;
  constructor(message: string) {
    super(message);
    this.name = "SsrfBlockedError";
  }
}

/** True when `err`, or any error it wraps (cause chain, AggregateError), is an SSRF refusal. */
export function isSsrfBlocked(err: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [err];
  while (pending.length > 0) {
    const current = pending.pop();
    if (current === null || typeof current !== "object" || seen.has(current)) continue;
    seen.add(current);
    const { code, cause, errors } = current as { code?: unknown; cause?: unknown; errors?: unknown };
    if (code === SSRF_BLOCKED) return true;
    pending.push(cause);
    if (Array.isArray(errors)) pending.push(...errors);
  }
  return false;
}

function notFound(hostname: string): Error {
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND", hostname });
}

function wantedFamily(options: LookupOptions): 4 | 6 | undefined {
  const { family } = options;
  if (family === 4 || family === "IPv4") return 4;
  if (family === 6 || family === "IPv6") return 6;
  return undefined;
}

/**
 * A net.connect `lookup` that refuses the connection when any answer is denied. Node 20 turns on
 * autoSelectFamily by default and then asks with `all: true`, expecting an array; without it Node
 * expects (address, family).
 */
function checkedLookup(policy: AddressPolicy, resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (answers) => {
        if (answers.some((answer) => isDeniedAddress(answer.address, policy))) {
          callback(new SsrfBlockedError("webhook host resolves to a non-public address"), "", 0);
          return;
        }
        const family = wantedFamily(options);
        const usable: LookupAddress[] = answers.filter((answer) => family === undefined || answer.family === family);
        const first = usable[0];
        if (!first) callback(notFound(hostname), "", 0);
        else if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, "", 0),
    );
  };
}

export function makeWebhookAgent(opts: { policy: AddressPolicy; resolve: Resolver; timeoutMs: number }): Agent {
  const { policy, resolve, timeoutMs } = opts;
  const connectChecked = buildConnector({ lookup: checkedLookup(policy, resolve), timeout: timeoutMs });

  const connect: buildConnector.connector = (options, callback) => {
    // undici already strips the brackets of an IPv6 literal; strip again rather than rely on it.
    const host = options.hostname.replace(/^\[(.*)\]$/, "$1");
    if (isIP(host) !== 0 && isDeniedAddress(host, policy)) {
      callback(new SsrfBlockedError("webhook host is a non-public address"), null);
      return;
    }
    connectChecked(options, (err, socket) => {
      if (err) {
        callback(err, null);
        return;
      }
      const peer = socket.remoteAddress;
      if (peer === undefined) {
        // Closed before we could look: nothing was sent, and this is a network failure to retry,
        // not a refusal that would drop the delivery.
        socket.destroy();
        callback(Object.assign(new Error("socket closed before it could be checked"), { code: "ECONNRESET" }), null);
        return;
      }
      if (isDeniedAddress(peer, policy)) {
        socket.destroy();
        callback(new SsrfBlockedError("webhook connection reached a non-public address"), null);
        return;
      }
      callback(null, socket);
    });
  };

  // headersTimeout and bodyTimeout each bound one phase (no response head / a stalled body); the
  // delivery worker still needs an overall deadline (an AbortSignal) for "2xx within N s".
  return new Agent({ connect, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}
