// WAHA's request plumbing shared by the server and the routes: bodies in and out, and the engine error bodies.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Engine } from "./engine.js";
import { HttpError } from "./errors.js";
import type { Ctx, Reply } from "./types.js";
import { WAHA_VERSION } from "./wa-format.js";

/** WAHA's AllExceptionsFilter body for a non-HTTP error (an engine failure): 500 with the exception serialized. */
export function engineError(now: () => number, method: string, url: URL, body: unknown, message: string, status = 500) {
  const request = { path: url.pathname, method, body, query: Object.fromEntries(url.searchParams) };
  return { statusCode: status, timestamp: new Date(now()).toISOString(), exception: { message, name: "Error" }, request, version: WAHA_VERSION };
}

export function fail(e: Engine, c: Ctx, message: string, status = 500): HttpError {
  return new HttpError(status, engineError(e.now, c.method, new URL(c.path, "http://fake"), c.body, message, status));
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function respond(res: ServerResponse, status: number, reply: Reply): void {
  if (res.destroyed || res.headersSent) return;
  if (reply.bytes) {
    res.writeHead(status, { "Content-Type": reply.bytes.type, "Content-Length": reply.bytes.data.length });
    res.end(reply.bytes.data);
    return;
  }
  if (reply.body === undefined) {
    res.writeHead(status, { "Content-Length": 0 });
    res.end();
    return;
  }
  const data = Buffer.from(JSON.stringify(reply.body));
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": data.length });
  res.end(data);
}
