/**
 * A faithful local fake of WAHA (devlikeapro/waha), engine NOWEB, for tests and for running by hand.
 * The contract is /work/shared/spec/backends.md §0.7, §2.1, §4 and §5, and WAHA's own source where
 * backends.md is silent (`src/core/engines/noweb/session.noweb.core.ts`, `src/structures/*.dto.ts`,
 * `src/api/exception.filter.ts`). Each reproduced quirk has a comment naming where it comes from.
 *
 * Scripted behaviour (hanging sends, refusals, inbound traffic, acks, presence, group changes) is
 * driven from the test through the public methods; webhooks are POSTed to the session's
 * `config.webhooks`, and `flushWebhooks()` resolves once every POST fired so far is answered.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { chatting, checkExists, edit, file, history, reaction, revoke, send, subscribe } from "./chat-routes.js";
import { Engine } from "./engine.js";
import { HttpError, nest } from "./errors.js";
import { createGroup, getGroup, leaveGroup, participants, setSubject } from "./group-routes.js";
import { engineError, readBody, respond } from "./http.js";
import { obj } from "./json.js";
import * as phone from "./scripted.js";
import { getSession, lifecycle, listSessions, updateSession } from "./session-routes.js";
import type { Ctx, FakeGroup, FakeSession, FakeState, FakeWaMessage, GroupChange, HangOpts, Handler, InboundOpts, Json, Reply } from "./types.js";

export type { FakeGroup, FakeSession, FakeWaMessage, FakeWebhookConfig } from "./types.js";
export { WAHA_VERSION } from "./wa-format.js";

/**
 * The one public class: it owns the state (its public fields, which tests read and tweak directly), the HTTP server and
 * the route table. The routes (chat-routes, group-routes, session-routes) and the phone's side (scripted) are plain
 * functions over the shared Engine, which reads these fields through a reference to this fake, never a copy.
 */
export class FakeWaha implements FakeState {
  readonly apiKey: string;
  url = "";
  sessions = new Map<string, FakeSession>();
  messages: FakeWaMessage[] = [];
  sent: FakeWaMessage[] = [];
  requests: { method: string; path: string; query: Record<string, string>; body: unknown; headers: Record<string, string | string[] | undefined> }[] = [];
  /** Every webhook POST attempted, with the receiver's status or the network error (not part of WAHA). */
  deliveries: { url: string; event: string; status: number | null; error: string | null }[] = [];
  existing: (phoneDigits: string) => boolean = (d) => !d.endsWith("0001");
  /** WAHA Plus. With `false` (Core), media sends answer 422 AvailableInPlusVersion (backends.md §2.1 "Core edition limits"). */
  plus = true;
  /**
   * Real NOWEB answers a send with the raw Baileys message `{key:{remoteJid, fromMe, id}, message, messageTimestamp, status}`
   * (the engine returns `sock.sendMessage(...)` as is), not a WAMessage. Off by default: sends answer a WAMessage with a
   * string `id`, as the brief asks; switch it on to check a back-end copes with the real shape.
   */
  rawSendResponses = false;
  groups = new Map<string, FakeGroup>();
  /** While a flag is true every such call answers WAHA's 500 (an engine error); set it back to false to recover. */
  refuse: { reaction?: boolean; edit?: boolean; revoke?: boolean; group?: boolean } = {};

  private readonly engine: Engine;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly routes: [string, RegExp, Handler][];

  constructor(opts: { apiKey?: string; now?: () => number } = {}) {
    this.apiKey = opts.apiKey ?? "fake-key";
    this.engine = new Engine(this, opts.now ?? Date.now);
    this.routes = this.routeTable();
  }

  // ---------------------------------------------------------------- lifecycle

  start(port = 0): Promise<string> {
    this.engine.abort = new AbortController();
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
    this.engine.abort.abort();
    for (const t of this.engine.timers) clearTimeout(t);
    this.engine.timers.clear();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.allSettled([...this.engine.hooks.pending]);
  }

  /** Extra routes on the same server and behind the same X-Api-Key check (main.ts adds `/fake/*`). */
  addRoute(method: string, path: string, handler: (body: Json) => Promise<unknown>): void {
    this.routes.push([method, new RegExp(`^${path}$`), async (c) => ({ status: 200, body: await handler(c.body) })]);
  }

  // ---------------------------------------------------------------- scripted behaviour (the phone's side, scripted.ts)

  addSession(name: string, opts: { status?: string; me?: string } = {}): void {
    phone.addSession(this.engine, name, opts);
  }

  async setStatus(name: string, status: string): Promise<void> {
    phone.setStatus(this.engine, name, status);
  }

  hangNextSends(n: number, opts: HangOpts): void {
    phone.hangNextSends(this.engine, n, opts);
  }

  async receive(session: string, opts: InboundOpts): Promise<FakeWaMessage> {
    return phone.receive(this.engine, session, opts);
  }

  async ack(session: string, id: string, ack: number): Promise<void> {
    phone.ack(this.engine, session, id, ack);
  }

  async react(session: string, opts: { from: string; messageId: string; text: string }): Promise<void> {
    phone.react(this.engine, session, opts);
  }

  async editInbound(session: string, id: string, text: string): Promise<void> {
    phone.editInbound(this.engine, session, id, text);
  }

  async revokeInbound(session: string, id: string): Promise<void> {
    phone.revokeInbound(this.engine, session, id);
  }

  async presence(session: string, chatId: string, state: "typing" | "paused", participant?: string): Promise<void> {
    phone.presence(this.engine, session, chatId, state, participant);
  }

  async groupEvent(session: string, groupId: string, change: GroupChange): Promise<void> {
    phone.groupEvent(this.engine, session, groupId, change);
  }

  async flushWebhooks(): Promise<void> {
    await this.engine.hooks.flush();
  }

  // ---------------------------------------------------------------- routes

  private routeTable(): [string, RegExp, Handler][] {
    const P = "([^/]+)";
    const r = (method: string, path: string, h: Handler): [string, RegExp, Handler] => [method, new RegExp(`^${path.replaceAll("{}", P)}$`), h];
    const e = this.engine;
    return [
      r("GET", "/api/sessions", () => listSessions(e)),
      r("GET", "/api/sessions/{}", (c) => getSession(e, c)),
      r("PUT", "/api/sessions/{}", (c) => updateSession(e, c)),
      r("POST", "/api/sessions/{}/(start|stop|restart)", (c) => lifecycle(e, c)),
      r("POST", "/api/sendText", (c) => send(e, c, "text")),
      r("POST", "/api/sendImage", (c) => send(e, c, "image")),
      r("POST", "/api/sendFile", (c) => send(e, c, "file")),
      r("POST", "/api/sendVoice", (c) => send(e, c, "voice")),
      r("POST", "/api/sendVideo", (c) => send(e, c, "video")),
      r("PUT", "/api/reaction", (c) => reaction(e, c)),
      r("PUT", "/api/{}/chats/{}/messages/{}", (c) => edit(e, c)),
      r("DELETE", "/api/{}/chats/{}/messages/{}", (c) => revoke(e, c)),
      r("GET", "/api/{}/chats/{}/messages", (c) => history(e, c)),
      r("POST", "/api/sendSeen", (c) => chatting(e, c)),
      r("POST", "/api/startTyping", (c) => chatting(e, c)),
      r("POST", "/api/stopTyping", (c) => chatting(e, c)),
      r("POST", "/api/{}/presence", (c) => chatting(e, c, c.params[0])),
      r("POST", "/api/{}/presence/{}/subscribe", (c) => subscribe(e, c)),
      r("GET", "/api/contacts/check-exists", (c) => checkExists(e, c)),
      r("GET", "/api/files/{}/{}", (c) => file(e, c)),
      r("POST", "/api/{}/groups", (c) => createGroup(e, c)),
      r("GET", "/api/{}/groups/{}", (c) => getGroup(e, c)),
      r("PUT", "/api/{}/groups/{}/subject", (c) => setSubject(e, c)),
      r("POST", "/api/{}/groups/{}/participants/(add|remove)", (c) => participants(e, c)),
      r("POST", "/api/{}/groups/{}/leave", (c) => leaveGroup(e, c)),
    ];
  }

  // ---------------------------------------------------------------- HTTP plumbing

  /** WAHA's request plumbing: X-Api-Key auth, routing, NestJS and engine error bodies. */
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
      else respond(res, 500, { body: engineError(this.engine.now, method, url, body, err instanceof Error ? err.message : String(err)) });
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
}
