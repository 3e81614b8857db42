import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { HttpError, nest } from "./errors.js";
import { obj } from "./json.js";
import { WahaScripted } from "./scripted.js";
import type { Ctx, Handler, Json, Reply } from "./types.js";
import { WAHA_VERSION } from "./wa-format.js";

/** The HTTP server and WAHA's request plumbing: X-Api-Key auth, routing, NestJS and engine error bodies. */
export abstract class WahaHttp extends WahaScripted {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly routes: [string, RegExp, Handler][] = this.routeTable();

  protected abstract routeTable(): [string, RegExp, Handler][];

  // ---------------------------------------------------------------- lifecycle

  start(port = 0): Promise<string> {
    this.abort = new AbortController();
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => res.destroy());
    });
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const addr = server.address();
        this.url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : port}`;
        resolve(this.url);
      });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.pending]);
  }

  /** Extra routes on the same server and behind the same X-Api-Key check (main.ts adds `/fake/*`). */
  addRoute(method: string, path: string, handler: (body: Json) => Promise<unknown>): void {
    this.routes.push([method, new RegExp(`^${path}$`), async (c) => ({ status: 200, body: await handler(c.body) })]);
  }

  // ---------------------------------------------------------------- HTTP plumbing

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const raw = await readBody(req);
    let body: unknown;
    let bad: string | null = null;
    try {
      body = raw.length ? JSON.parse(raw.toString("utf8")) : undefined;
    } catch (err) {
      bad = err instanceof Error ? err.message : "Invalid JSON";
    }
    this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body, headers: req.headers });
    try {
      if (!this.authorized(req, url)) throw new HttpError(401, { message: "Unauthorized", statusCode: 401 });
      if (bad) throw nest(400, "Bad Request", bad);
      const reply = await this.dispatch({ method, path: url.pathname, params: [], query: url.searchParams, body: obj(body) });
      respond(res, reply.status ?? (method === "POST" ? 201 : 200), reply);
    } catch (err) {
      if (err instanceof HttpError) respond(res, err.status, { body: err.body });
      else respond(res, 500, { body: this.engineError(method, url, body, err instanceof Error ? err.message : String(err)) });
    }
  }

  /** X-Api-Key header, or the `x-api-key` query parameter (HeaderOrQueryApiKeyStrategy), on every route. */
  private authorized(req: IncomingMessage, url: URL): boolean {
    const header = req.headers["x-api-key"];
    return (typeof header === "string" ? header : url.searchParams.get("x-api-key")) === this.apiKey;
  }

  private async dispatch(c: Ctx): Promise<Reply> {
    for (const [method, pattern, handler] of this.routes) {
      const m = method === c.method ? pattern.exec(c.path) : null;
      if (m) return handler({ ...c, params: m.slice(1).map((p) => decodeURIComponent(p)) });
    }
    throw nest(404, "Not Found", `Cannot ${c.method} ${c.path}`);
  }

  /** WAHA's AllExceptionsFilter body for a non-HTTP error (an engine failure): 500 with the exception serialized. */
  private engineError(method: string, url: URL, body: unknown, message: string, status = 500) {
    const request = { path: url.pathname, method, body, query: Object.fromEntries(url.searchParams) };
    return { statusCode: status, timestamp: new Date(this.now()).toISOString(), exception: { message, name: "Error" }, request, version: WAHA_VERSION };
  }

  protected fail(c: Ctx, message: string, status = 500): HttpError {
    return new HttpError(status, this.engineError(c.method, new URL(c.path, "http://fake"), c.body, message, status));
  }

  protected sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function respond(res: ServerResponse, status: number, reply: Reply): void {
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
