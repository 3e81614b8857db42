/**
 * OWASP API10 (unsafe consumption of APIs), SEC-T24: device-http.ts against a raw server, since
 * no real device will answer badly on demand.
 * The map of SEC-T01…T25 to the files that hold them is at the top of security-support.ts.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { deviceCall } from "../src/backends/device-http.js";
import { Receiver } from "./webhook-support.js";

describe("API10 unsafe consumption: what devices answer is untrusted (SEC-T24)", () => {
  let server: Server;
  let base: string;
  let canary: Receiver;
  before(async () => {
    canary = await Receiver.start();
    server = createServer((req, res) => {
      if (req.url === "/malformed") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"status":200,"data":');
      } else if (req.url === "/slow") {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"status":');
        // and never more
      } else if (req.url === "/redirect") {
        res.writeHead(302, { location: canary.url });
        res.end();
      } else {
        res.writeHead(500, { "content-type": "text/html" });
        res.end("<html>stack trace</html>");
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await canary.close();
  });

  test("malformed JSON is an answer to classify (kept as text), never a throw", async () => {
    assert.deepEqual(await deviceCall({ method: "GET", url: `${base}/malformed`, timeoutMs: 2_000 }), { kind: "answered", status: 200, body: '{"status":200,"data":' });
    assert.deepEqual(await deviceCall({ method: "GET", url: `${base}/error`, timeoutMs: 2_000 }), { kind: "answered", status: 500, body: "<html>stack trace</html>" });
  });

  test("a body that never ends is cut at the timeout and classified as lost (ambiguous), not left hanging", async () => {
    const started = Date.now();
    const reply = await deviceCall({ method: "POST", url: `${base}/slow`, json: {}, timeoutMs: 300 });
    assert.equal(reply.kind, "lost");
    assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
  });

  test("a redirect is not followed; a closed port is unreachable (never sent)", async () => {
    assert.deepEqual(await deviceCall({ method: "GET", url: `${base}/redirect`, timeoutMs: 2_000 }), { kind: "answered", status: 302, body: null });
    assert.equal(canary.connections, 0);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    assert.equal((await deviceCall({ method: "GET", url: `http://127.0.0.1:${port}/`, timeoutMs: 2_000 })).kind, "unreachable");
  });

  test("a very large answer is cut off at a size cap (lost, never buffered whole)", async () => {
    const huge = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 40 && res.write(chunk)) sent++;
        if (sent >= 40) res.end();
        else res.once("drain", pump);
      };
      pump();
    });
    await new Promise<void>((resolve) => huge.listen(0, "127.0.0.1", resolve));
    try {
      const reply = await deviceCall({ method: "GET", url: `http://127.0.0.1:${(huge.address() as AddressInfo).port}/`, timeoutMs: 10_000 });
      assert.deepEqual(reply, { kind: "lost", error: "answer too large" });
    } finally {
      huge.closeAllConnections();
      await new Promise((resolve) => huge.close(resolve));
    }
  });
});
