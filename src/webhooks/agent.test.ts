/**
 * The webhook Agent against real sockets on loopback. A "canary" server counts TCP connections:
 * a refused request must not even open one. Every hostname goes through a fake Resolver, so
 * nothing here touches real DNS or the internet.
 */
import assert from "node:assert/strict";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { type Agent, request } from "undici";
import type { AddressPolicy, Resolver } from "./address-policy.js";
import { isSsrfBlocked, makeWebhookAgent, SsrfBlockedError } from "./agent.js";
import { checkWebhookUrl } from "./url-check.js";

type Answer = { address: string; family: 4 | 6 };

const PUBLIC_ONLY: AddressPolicy = { allowPrivate: false, allowCidrs: [] };
const ALLOW_PRIVATE: AddressPolicy = { allowPrivate: true, allowCidrs: [] };

interface TestServer {
  port: number;
  connections: () => number;
  requests: () => number;
}

const servers: Server[] = [];
const agents: Agent[] = [];

after(async () => {
  for (const agent of agents) await agent.destroy();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
});

async function startServer(host: string, handler: RequestListener = (_req, res) => res.end("ok")): Promise<TestServer> {
  let connections = 0;
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  server.on("connection", () => connections++);
  await new Promise<void>((listening, failed) => server.once("error", failed).listen(0, host, listening));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, connections: () => connections, requests: () => requests };
}

/** Loopback IPv6 may be missing (some containers); the tests that need a ::1 listener skip then. */
async function startServerOnIpv6Loopback(): Promise<TestServer | null> {
  try {
    return await startServer("::1");
  } catch {
    return null;
  }
}

/** Answers from a list, one call after another (the last repeats); unknown names are NXDOMAIN. */
function scriptedResolver(script: Record<string, Answer[][]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    const turns = script[hostname];
    if (!turns) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    const turn = asked.filter((name) => name === hostname).length;
    asked.push(hostname);
    return turns[Math.min(turn, turns.length - 1)] ?? [];
  };
  return Object.assign(resolve, { asked });
}

function agentFor(policy: AddressPolicy, resolve: Resolver = scriptedResolver({}), timeoutMs = 5_000): Agent {
  const agent = makeWebhookAgent({ policy, resolve, timeoutMs });
  agents.push(agent);
  return agent;
}

async function post(url: string, dispatcher: Agent) {
  return request(url, { method: "POST", dispatcher, body: "{}", headers: { "content-type": "application/json" } });
}

async function assertBlocked(url: string, dispatcher: Agent): Promise<void> {
  const err = await post(url, dispatcher).then(
    () => assert.fail(`request to ${url} was not refused`),
    (e: unknown) => e,
  );
  assert.ok(isSsrfBlocked(err), `${url}: expected ERR_SSRF_BLOCKED, got ${String(err)}`);
  assert.doesNotMatch((err as Error).message, /\d+\.\d+\.\d+\.\d+|::/, "the error names no address");
}

describe("webhook agent: it does deliver when the target is allowed", () => {
  it("200: allowPrivate reaches a loopback server, by literal and by (fake-resolved) name", async () => {
    const target = await startServer("127.0.0.1");
    const resolve = scriptedResolver({ "hooks.test": [[{ address: "127.0.0.1", family: 4 }]] });
    const agent = agentFor(ALLOW_PRIVATE, resolve);
    for (const url of [`http://127.0.0.1:${target.port}/`, `http://hooks.test:${target.port}/`]) {
      const res = await post(url, agent);
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), "ok");
    }
    assert.deepEqual(resolve.asked, ["hooks.test"]);
    assert.equal(target.requests(), 2);
  });

  it("200: happy eyeballs over ::1 and 127.0.0.1 connects only to answers it checked", async () => {
    const target = await startServer("127.0.0.1");
    const resolve = scriptedResolver({
      "dual.test": [
        [
          { address: "::1", family: 6 },
          { address: "127.0.0.1", family: 4 },
        ],
      ],
    });
    const res = await post(`http://dual.test:${target.port}/`, agentFor(ALLOW_PRIVATE, resolve));
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });
});

describe("webhook agent: refusals open no connection", () => {
  it("WH-T15 DNS rebinding: public at registration, 127.0.0.1 at delivery → blocked, canary 0", async () => {
    const canary = await startServer("127.0.0.1");
    const resolve = scriptedResolver({
      "rebind.test": [[{ address: "93.184.216.34", family: 4 }], [{ address: "127.0.0.1", family: 4 }]],
    });
    const url = `http://rebind.test:${canary.port}/`;
    await checkWebhookUrl(url, PUBLIC_ONLY, resolve); // registration passes on the first answer
    await assertBlocked(url, agentFor(PUBLIC_ONLY, resolve));
    assert.deepEqual(resolve.asked, ["rebind.test", "rebind.test"]);
    assert.equal(canary.connections(), 0);
  });

  it("WH-T17 literal IPs (Node skips lookup for them) → blocked without asking DNS, canary 0", async () => {
    const canary = await startServer("127.0.0.1");
    const resolve = scriptedResolver({});
    const agent = agentFor(PUBLIC_ONLY, resolve);
    for (const host of ["127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "0", "[::1]"]) {
      await assertBlocked(`http://${host}:${canary.port}/`, agent);
    }
    assert.deepEqual(resolve.asked, []);
    assert.equal(canary.connections(), 0);
  });

  it("WH-T17 [::1] with a real listener on ::1 → blocked, that canary 0 too", async (t) => {
    const canary6 = await startServerOnIpv6Loopback();
    if (!canary6) return t.skip("no IPv6 loopback here");
    await assertBlocked(`http://[::1]:${canary6.port}/`, agentFor(PUBLIC_ONLY));
    assert.equal(canary6.connections(), 0);
  });

  it("mixed answer (an allowed A plus ::1 AAAA) → blocked in either order, canary 0", async () => {
    // 127.0.0.0/8 stands in for "public" through allowCidrs, so that a faulty agent would connect
    // to the local canary instead of to the internet.
    const canary = await startServer("127.0.0.1");
    const policy: AddressPolicy = { allowPrivate: false, allowCidrs: ["127.0.0.0/8"] };
    const allowed = { address: "127.0.0.1", family: 4 } as const;
    const denied = { address: "::1", family: 6 } as const;
    const resolve = scriptedResolver({ "mixed.test": [[allowed, denied]], "mixed6.test": [[denied, allowed]] });
    const agent = agentFor(policy, resolve);
    await assertBlocked(`http://mixed.test:${canary.port}/`, agent);
    await assertBlocked(`http://mixed6.test:${canary.port}/`, agent);
    assert.equal(canary.connections(), 0);
    // …and the same policy does reach the canary when every answer is allowed:
    const ok = await post(`http://127.0.0.1:${canary.port}/`, agent);
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  });
});

describe("webhook agent: redirects, proxies, timeouts, DNS failures", () => {
  it("WH-T16: a 302 to a private canary comes back as a 302; the canary gets 0 connections", async () => {
    const canary = await startServer("127.0.0.1");
    const redirector = await startServer("127.0.0.1", (_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${canary.port}/` }).end();
    });
    // allowPrivate makes the canary reachable too: only "not following redirects" keeps it at 0.
    const res = await post(`http://127.0.0.1:${redirector.port}/`, agentFor(ALLOW_PRIVATE));
    assert.equal(res.statusCode, 302);
    await res.body.dump();
    assert.equal(redirector.requests(), 1);
    assert.equal(canary.connections(), 0);
  });

  it("ignores HTTP_PROXY/http_proxy: the request goes direct, the would-be proxy sees nothing", async () => {
    const proxy = await startServer("127.0.0.1");
    const target = await startServer("127.0.0.1");
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy };
    process.env.HTTP_PROXY = `http://127.0.0.1:${proxy.port}`;
    process.env.http_proxy = `http://127.0.0.1:${proxy.port}`;
    try {
      const res = await post(`http://127.0.0.1:${target.port}/`, agentFor(ALLOW_PRIVATE));
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    assert.equal(proxy.connections(), 0);
    assert.equal(target.requests(), 1);
  });

  it("a server that never answers fails with a headers timeout (not an SSRF refusal)", async () => {
    const silent = await startServer("127.0.0.1", () => {
      // hold the request open; the agent's headersTimeout must end it
    });
    const err = await post(`http://127.0.0.1:${silent.port}/`, agentFor(ALLOW_PRIVATE, undefined, 150)).then(
      () => assert.fail("a silent server produced a response"),
      (e: unknown) => e,
    );
    assert.equal((err as { code?: string }).code, "UND_ERR_HEADERS_TIMEOUT");
    assert.equal(isSsrfBlocked(err), false);
  });

  it("a body that stalls after the head fails with a body timeout", async () => {
    const stalling = await startServer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("partial"); // …and never end
    });
    const res = await post(`http://127.0.0.1:${stalling.port}/`, agentFor(ALLOW_PRIVATE, undefined, 150));
    assert.equal(res.statusCode, 200);
    await assert.rejects(res.body.text(), { code: "UND_ERR_BODY_TIMEOUT" });
  });

  it("NXDOMAIN is an ordinary failure (retry later), not an SSRF refusal (drop)", async () => {
    const err = await post("http://gone.test/", agentFor(PUBLIC_ONLY)).then(
      () => assert.fail("resolved a name the fake resolver does not know"),
      (e: unknown) => e,
    );
    assert.equal((err as { code?: string }).code, "ENOTFOUND");
    assert.equal(isSsrfBlocked(err), false);
  });
});

describe("isSsrfBlocked", () => {
  it("finds the code on the error, through causes and inside AggregateErrors", () => {
    const blocked = new SsrfBlockedError("webhook host is a non-public address");
    assert.equal(isSsrfBlocked(blocked), true);
    assert.equal(isSsrfBlocked(new Error("fetch failed", { cause: new Error("connect", { cause: blocked }) })), true);
    assert.equal(isSsrfBlocked(new AggregateError([new Error("ECONNREFUSED"), blocked])), true);
    assert.equal(isSsrfBlocked(Object.assign(new Error("x"), { code: "ERR_SSRF_BLOCKED" })), true);
  });

  it("is false for anything else, including odd values and cycles", () => {
    const cyclic: Error & { cause?: unknown } = new Error("loop");
    cyclic.cause = cyclic;
    for (const value of [undefined, null, "ERR_SSRF_BLOCKED", 42, new Error("ECONNRESET"), { code: "ENOTFOUND" }, cyclic]) {
      assert.equal(isSsrfBlocked(value), false);
    }
  });
});
