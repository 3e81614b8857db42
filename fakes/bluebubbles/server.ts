// A local fake of BlueBubbles Server (shared/spec/backends.md §1): the /api/v1 HTTP contract,
// the {type,data} webhooks, and the quirks a connector has to survive (§0, §4). It is a test
// double for the `bluebubbles` back-end and runnable by hand (main.ts). State and switches are
// public fields so tests can inspect and script the "Mac"; envelopes, error types and messages
// are copied from the BlueBubbles sources (responses/*.ts, routers/*.ts, validators/*.ts).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { isGroupGuid, parseDm } from "./chat-db.js";
import { availability, chatNew, getChat, markRead, rename, setTyping, toggleParticipant } from "./chat-routes.js";
import { BBError, badRequest, notFound, ok, serverError, unauthorized } from "./envelopes.js";
import { parseBody, readBody, send, str } from "./http-io.js";
import { Mac } from "./mac.js";
import { edit, react, reactionText, unsend } from "./react-edit-unsend.js";
import { download, getMessage, query } from "./read-routes.js";
import { sendAttachment, sendText } from "./send-routes.js";
import { HTTP_SENT, serialize } from "./serializers.js";
import type {
  FakeChat, FakeMessage, FakeRequest, FakeState, FakeWebhook, Json, Refusable, Reply, Route, Service,
} from "./types.js";
import { addWebhook, deleteWebhook } from "./webhooks.js";

export type { FakeAttachment, FakeChat, FakeMessage, FakeRequest, FakeWebhook } from "./types.js";
export { WEBHOOK_EVENTS } from "./webhooks.js";

export class FakeBlueBubbles implements FakeState {
  readonly password: string;
  url = "";
  messages: FakeMessage[] = [];
  sent: FakeMessage[] = [];
  webhooks: FakeWebhook[] = [];
  requests: FakeRequest[] = [];
  chats = new Map<string, FakeChat>();
  privateApi = true;
  helperConnected = true;
  offline = false;
  chatGuidPrefix: "iMessage" | "any" = "iMessage";
  duplicateNewMessage = true;
  dropWebhooks = false;
  imessageAvailable: (address: string) => boolean = (a) => !a.endsWith("0001");
  /** While a flag is true, every such call is refused with a 500 iMessage Error (clear it to stop). */
  refuse: Partial<Record<Refusable, boolean>> = {};
  /** Extra switch, off by default: an SMS delivery sets `isDelivered` without a `dateDelivered` (§1.4). */
  smsDeliveredWithoutDate = false;
  /** Where webhook failures are reported (main.ts prints them; tests stay quiet). */
  log: (line: string) => void = () => {};

  private readonly mac: Mac;
  private server: http.Server | undefined;
  private readonly routes: Route[];

  constructor(opts: { password?: string; now?: () => number } = {}) {
    this.password = opts.password ?? "fake-password";
    this.mac = new Mac(this, opts.now ?? Date.now);
    this.routes = this.buildRoutes();
  }

  // ---- lifecycle ------------------------------------------------------------------------------------
  async start(port = 0): Promise<string> {
    this.mac.hooks.open();
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.mac.hooks.close();
    this.mac.faults.wakeAll();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  }

  // ---- scripting --------------------------------------------------------------------------------------
  hangNextSends(n: number, opts: { ms: number; sent: boolean }): void {
    for (let i = 0; i < n; i++) this.mac.faults.hangs.push({ ...opts });
  }

  failNextSends(n: number, code: number): void {
    for (let i = 0; i < n; i++) this.mac.faults.failures.push(code);
  }

  async receive(opts: { from: string; text: string; chatGuid?: string; attachments?: { name: string; mimeType: string; bytes: Buffer }[]; service?: Service }): Promise<FakeMessage> {
    const { db, hooks } = this.mac;
    const chat = opts.chatGuid && isGroupGuid(opts.chatGuid)
      ? db.ensureGroup(opts.chatGuid, opts.from)
      : db.ensureDm(opts.chatGuid ? (parseDm(opts.chatGuid)?.service ?? "iMessage") : (opts.service ?? (this.imessageAvailable(opts.from) ? "iMessage" : "SMS")), opts.from);
    const attachments = (opts.attachments ?? []).map((a) => db.newAttachment(a.name, a.mimeType, a.bytes));
    const m = db.addRow({ chatGuid: chat.guid, isFromMe: false, handle: opts.from, text: opts.text, attachments });
    hooks.fireNewMessage(m, null);
    return m;
  }

  async deliver(guid: string): Promise<void> {
    const m = this.mac.db.mustFind(guid);
    if (this.smsDeliveredWithoutDate && this.mac.db.serviceOf(m.chatGuid) === "SMS") this.mac.db.smsDelivered.add(m);
    else m.dateDelivered ??= this.mac.now();
    this.mac.hooks.fireUpdated(m);
  }

  async read(guid: string): Promise<void> {
    const m = this.mac.db.mustFind(guid);
    if (isGroupGuid(m.chatGuid)) return; // §1.4: dateRead is only tracked for DMs; groups never get read.
    m.dateDelivered ??= this.mac.now();
    m.dateRead = this.mac.now();
    this.mac.hooks.fireUpdated(m);
  }

  async tapback(from: string, targetGuid: string, reaction: string): Promise<FakeMessage> {
    const target = this.mac.db.mustFind(targetGuid);
    const m = this.mac.db.addRow({
      chatGuid: target.chatGuid, isFromMe: false, handle: from, text: reactionText(reaction, target.text),
      associatedMessageGuid: `p:0/${target.guid}`, associatedMessageType: reaction,
    });
    this.mac.hooks.fireNewMessage(m, null);
    return m;
  }

  async editInbound(guid: string, text: string): Promise<void> {
    const m = this.mac.db.mustFind(guid);
    m.text = text;
    m.dateEdited = this.mac.now();
    this.mac.hooks.fireUpdated(m, true);
  }

  async unsendInbound(guid: string): Promise<void> {
    this.mac.retract(this.mac.db.mustFind(guid));
  }

  async typing(chatGuid: string, display: boolean): Promise<void> {
    // §1.2: PrivateApiTypingEventHandler ignores group GUIDs (`;+;`), so only DMs ever report typing.
    if (isGroupGuid(chatGuid)) return;
    this.mac.hooks.fire("typing-indicator", { display, guid: this.mac.db.findChat(chatGuid)?.guid ?? chatGuid });
  }

  async groupEvent(chatGuid: string, change: { kind: "rename"; title: string; by: string } | { kind: "added" | "removed"; handle: string; by: string } | { kind: "left"; handle: string }): Promise<FakeMessage> {
    const chat = this.mac.db.findChat(chatGuid);
    if (chat?.style !== 43) throw new Error(`FakeBlueBubbles: no group chat ${chatGuid}`);
    if (change.kind === "rename") return this.mac.groupChange(chat, change.by, { kind: "rename", title: change.title });
    if (change.kind === "left") return this.mac.groupChange(chat, change.handle, { kind: "left", address: change.handle });
    return this.mac.groupChange(chat, change.by, { kind: change.kind, address: change.handle });
  }

  async flushWebhooks(): Promise<void> {
    await this.mac.hooks.flush();
  }

  // ---- HTTP plumbing ------------------------------------------------------------------------------------
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.offline) { req.socket.destroy(); return; } // an unreachable Mac: connection reset, no answer
    const url = new URL(req.url ?? "/", "http://fake");
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? "GET";
    let reply: Reply;
    try {
      const raw = await readBody(req);
      const { route, params } = this.match(method, url.pathname);
      this.authenticate(query);
      const { body, files, logged } = parseBody(req.headers["content-type"], raw);
      this.requests.push({ method, path: url.pathname, query, body: logged });
      if (route.privateApi) this.mac.requirePrivateApi();
      reply = await route.run({ params, query, body, files });
    } catch (e) {
      reply = { json: e instanceof BBError ? e.body : serverError(e instanceof Error ? e.message : String(e)).body };
    }
    send(res, reply);
  }

  private match(method: string, path: string): { route: Route; params: string[] } {
    for (const route of this.routes) {
      const m = route.method === method ? route.pattern.exec(path) : null;
      if (m) return { route, params: m.slice(1).map((p) => decodeURIComponent(p)) };
    }
    throw notFound(`Route not found: ${method} ${path}`);
  }

  /** `middleware/authMiddleware.ts`: `guid ?? password ?? token`, compared after trimming; no header auth. */
  private authenticate(query: Record<string, string>): void {
    const token = query.guid ?? query.password ?? query.token;
    if (!token) throw unauthorized("Missing server password!");
    if (token.trim() !== this.password.trim()) throw unauthorized("Unauthorized");
  }

  private buildRoutes(): Route[] {
    const r = (method: string, path: string, run: Route["run"], privateApi = false): Route => ({
      method, privateApi, run, pattern: new RegExp(`^${path.replace(/:\w+/g, "([^/]+)")}$`),
    });
    const v1 = "/api/v1";
    const mac = this.mac;
    return [
      r("GET", `${v1}/ping`, () => ok("Ping received!", "pong")),
      r("GET", `${v1}/server/info`, () => ok("Successfully fetched metadata", this.serverInfo())),
      r("POST", `${v1}/message/text`, (c) => sendText(mac, c)),
      r("POST", `${v1}/message/attachment`, (c) => sendAttachment(mac, c)),
      r("POST", `${v1}/message/react`, (c) => react(mac, c), true),
      r("POST", `${v1}/message/query`, (c) => query(mac, c)),
      // §1.5: edit and unsend check the Private API inside the interface; the effect on the wire is the same.
      r("POST", `${v1}/message/:guid/edit`, (c) => edit(mac, c), true),
      r("POST", `${v1}/message/:guid/unsend`, (c) => unsend(mac, c), true),
      r("GET", `${v1}/message/:guid`, (c) => getMessage(mac, c)),
      r("POST", `${v1}/chat/new`, (c) => chatNew(mac, c)),
      r("GET", `${v1}/chat/:guid`, (c) => getChat(mac, c)),
      r("PUT", `${v1}/chat/:guid`, (c) => rename(mac, c), true),
      r("POST", `${v1}/chat/:guid/participant/add`, (c) => toggleParticipant(mac, c, "add"), true),
      r("POST", `${v1}/chat/:guid/participant`, (c) => toggleParticipant(mac, c, "add"), true),
      r("POST", `${v1}/chat/:guid/participant/remove`, (c) => toggleParticipant(mac, c, "remove"), true),
      r("DELETE", `${v1}/chat/:guid/participant`, (c) => toggleParticipant(mac, c, "remove"), true),
      r("POST", `${v1}/chat/:guid/read`, (c) => markRead(mac, c), true),
      r("POST", `${v1}/chat/:guid/typing`, (c) => setTyping(mac, c, true), true),
      r("DELETE", `${v1}/chat/:guid/typing`, (c) => setTyping(mac, c, false), true),
      r("GET", `${v1}/handle/availability/imessage`, (c) => availability(mac, c), true),
      r("GET", `${v1}/attachment/:guid/download`, (c) => download(mac, c)),
      r("GET", `${v1}/webhook`, () => ok("Successfully fetched webhooks!", this.webhooks.map((w) => ({ ...w, events: [...w.events] })))),
      r("POST", `${v1}/webhook`, (c) => addWebhook(mac, c)),
      r("DELETE", `${v1}/webhook/:id`, (c) => deleteWebhook(mac, c)),
      // Manual control for an operator (main.ts); same password, not part of BlueBubbles.
      r("POST", "/fake/receive", async (c) => ok("Received", serialize(mac.db, await this.receive(this.receiveOpts(c.body)), HTTP_SENT))),
      r("POST", "/fake/deliver/:guid", async (c) => { await this.deliver(this.mustFindHttp(c.params[0])); return ok("Delivered"); }),
      r("POST", "/fake/read/:guid", async (c) => { await this.read(this.mustFindHttp(c.params[0])); return ok("Read"); }),
    ];
  }

  // ---- routes: general --------------------------------------------------------------------------------
  private serverInfo(): Json {
    return {
      computer_id: "fake-mac", os_version: "15.5", server_version: "1.9.9", private_api: this.privateApi,
      proxy_service: "lan-url", helper_connected: this.helperConnected, detected_icloud: "fake@icloud.com",
      detected_imessage: "fake@icloud.com", macos_time_sync: 0, local_ipv4s: ["127.0.0.1"], local_ipv6s: [],
    };
  }

  // ---- routes: operator (/fake/*) -----------------------------------------------------------------------
  private mustFindHttp(guid: string | undefined): string {
    if (!guid || !this.mac.db.findMessage(guid)) throw notFound("Message does not exist!");
    return guid;
  }

  private receiveOpts(body: Json) {
    const from = str(body.from);
    const text = str(body.text);
    if (!from || text === undefined) throw badRequest("The from and text fields are required.");
    const service: Service | undefined = body.service === "SMS" || body.service === "iMessage" ? body.service : undefined;
    return { from, text, chatGuid: str(body.chatGuid), service };
  }
}
