// A local fake of BlueBubbles Server (shared/spec/backends.md §1): the /api/v1 HTTP contract,
// the {type,data} webhooks, and the quirks a connector has to survive (§0, §4). It is a test
// double for the `bluebubbles` back-end and runnable by hand (main.ts). State and switches are
// public fields so tests can inspect and script the "Mac"; envelopes, error types and messages
// are copied from the BlueBubbles sources (responses/*.ts, routers/*.ts, validators/*.ts).
import { randomInt, randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

export interface FakeAttachment { guid: string; transferName: string; mimeType: string; bytes: Buffer }
export interface FakeMessage {
  guid: string; tempGuid: string | null; text: string; chatGuid: string; isFromMe: boolean;
  /** Address of the sender for inbound rows, of the recipient for outbound 1:1 rows ("" = me / none). */
  handle: string;
  dateCreated: number; dateDelivered: number | null; dateRead: number | null; dateEdited: number | null; dateRetracted: number | null;
  error: number; associatedMessageGuid: string | null; associatedMessageType: string | null; expressiveSendStyleId: string | null;
  threadOriginatorGuid: string | null; isAudioMessage: boolean; attachments: FakeAttachment[];
  itemType: number; groupTitle: string | null; groupActionType: number; otherHandle: number;
}
export interface FakeChat { guid: string; displayName: string | null; participants: string[]; style: 43 | 45 }
export interface FakeWebhook { id: number; url: string; events: string[] }
export interface FakeRequest { method: string; path: string; query: Record<string, string>; body: unknown }
type Refusable = "react" | "edit" | "unsend" | "rename" | "participant" | "chatNew" | "read" | "typing";
type Service = "iMessage" | "SMS";
type Json = Record<string, unknown>;

/** Registrable webhook events (§1.4, `api/http/constants.ts` webhookEventOptions). */
export const WEBHOOK_EVENTS: readonly string[] = [
  "*", "new-message", "updated-message", "message-send-error", "group-name-change", "group-icon-changed",
  "group-icon-removed", "participant-removed", "participant-added", "participant-left", "chat-read-status-changed",
  "typing-indicator", "scheduled-message-error", "server-update", "new-server", "new-findmy-location", "hello-world",
  "incoming-facetime", "ft-call-status-changed", "imessage-alias-removed", "theme-backup-created",
  "theme-backup-updated", "theme-backup-deleted", "settings-backup-created", "settings-backup-updated",
  "settings-backup-deleted",
];
/** The six classic tapbacks `react` accepts (§1.3 `MessageInterface.possibleReactions`), with the UI text of each. */
const REACTIONS: Record<string, [added: string, removed: string]> = {
  love: ["Loved", "Removed a heart from"], like: ["Liked", "Removed a like from"],
  dislike: ["Disliked", "Removed a dislike from"], laugh: ["Laughed at", "Removed a laugh from"],
  emphasize: ["Emphasized", "Removed an exclamation from"], question: ["Questioned", "Removed a question mark from"],
};
const PA_GATE = "Please make sure you have completed the setup for the Private API, and your helper is connected!";
const UTI: Record<string, string> = {
  "image/jpeg": "public.jpeg", "image/png": "public.png", "image/heic": "public.heic", "image/gif": "com.compuserve.gif",
  "video/mp4": "public.mpeg-4", "video/quicktime": "com.apple.quicktime-movie", "audio/x-caf": "com.apple.coreaudio-format",
  "audio/mp4": "public.mpeg-4-audio", "audio/x-m4a": "public.mpeg-4-audio", "audio/mpeg": "public.mp3",
  "application/pdf": "com.adobe.pdf", "text/plain": "public.plain-text",
};
const MIME_BY_EXT: Record<string, string> = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", heic: "image/heic", gif: "image/gif", mp4: "video/mp4",
  mov: "video/quicktime", caf: "audio/x-caf", m4a: "audio/x-m4a", mp3: "audio/mpeg", pdf: "application/pdf", txt: "text/plain",
};

// ---- envelopes (responses/success.ts, responses/errors.ts; §1.1) -----------------------------------
/** An HTTP error answered with BlueBubbles' error envelope `{status, message, error:{type, message}, data?}`. */
class BBError extends Error {
  constructor(readonly status: number, readonly body: Json) { super(String(body.message)); }
}
function errorBody(status: number, message: string, type: string, error: string, data?: unknown): Json {
  return { status, message, error: { type, message: error }, ...(data === undefined ? {} : { data }) };
}
const badRequest = (e: string) => new BBError(400, errorBody(400, "You've made a bad request! Please check your request params & body", "Validation Error", e));
const notFound = (e: string) => new BBError(404, errorBody(404, "The requested resource was not found", "Database Error", e));
const unauthorized = (e: string) => new BBError(401, errorBody(401, "You are not authorized to access this resource", "Authentication Error", e));
const imessageError = (message: string, e: string, data?: unknown) => new BBError(500, errorBody(500, message, "iMessage Error", e, data));
/** A plain `throw new Error()` inside an interface, wrapped by `errorMiddleware.ts`. */
const serverError = (e: string) => new BBError(500, errorBody(500, "An unhandled error has occurred!", "Server Error", e));

type Reply = { json: Json } | { file: FakeAttachment };
function ok(message: string, data?: unknown, metadata?: Json): Reply {
  return { json: { status: 200, message, ...(data === undefined ? {} : { data }), ...(metadata ? { metadata } : {}) } };
}

interface Upload { filename: string; mimeType: string; data: Buffer }
interface Ctx { params: string[]; query: Record<string, string>; body: Json; files: Record<string, Upload> }
interface Route { method: string; pattern: RegExp; privateApi: boolean; run: (c: Ctx) => Reply | Promise<Reply> }

/** How a row is serialized: webhook (`isForNotification`) or HTTP, and which relations are loaded. */
interface Shape { notification: boolean; chats: "omit" | "empty" | "load"; participants: boolean; attachments: boolean }
const NEW_MESSAGE: Shape = { notification: true, chats: "load", participants: true, attachments: true };
// §0.2: `handleUpdatedMessage` serializes with includeChats:false, so updated-message has NO chats key.
const UPDATED_MESSAGE: Shape = { notification: true, chats: "omit", participants: false, attachments: true };
const HTTP_SENT: Shape = { notification: false, chats: "load", participants: false, attachments: true };

const uuid = () => randomUUID().toUpperCase();
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const parseDm = (guid: string) => {
  const m = /^(iMessage|SMS|any);-;(.+)$/.exec(guid);
  return m?.[2] ? { service: (m[1] === "SMS" ? "SMS" : "iMessage") as Service, address: m[2] } : undefined;
};
const isGroupGuid = (guid: string) => guid.includes(";+;");

export class FakeBlueBubbles {
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

  private readonly now: () => number;
  private server: http.Server | undefined;
  private abort = new AbortController();
  private readonly routes: Route[];
  private readonly rowIds = new WeakMap<object, number>();
  private nextRowId = 1;
  private readonly handleIds = new Map<string, number>();
  private readonly smsDelivered = new WeakSet<FakeMessage>();
  private readonly inFlight = new Set<string>();
  private readonly hangs: { ms: number; sent: boolean }[] = [];
  private readonly failures: number[] = [];
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly chains = new Map<number, Promise<void>>();
  private readonly pending = new Set<Promise<void>>();
  private nextWebhookId = 1;

  constructor(opts: { password?: string; now?: () => number } = {}) {
    this.password = opts.password ?? "fake-password";
    this.now = opts.now ?? Date.now;
    this.routes = this.buildRoutes();
  }

  // ---- lifecycle ------------------------------------------------------------------------------------
  async start(port = 0): Promise<string> {
    this.abort = new AbortController();
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
    this.abort.abort();
    for (const [timer, wake] of this.timers) { clearTimeout(timer); wake(); }
    this.timers.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  }

  // ---- scripting --------------------------------------------------------------------------------------
  hangNextSends(n: number, opts: { ms: number; sent: boolean }): void {
    for (let i = 0; i < n; i++) this.hangs.push({ ...opts });
  }

  failNextSends(n: number, code: number): void {
    for (let i = 0; i < n; i++) this.failures.push(code);
  }

  async receive(opts: { from: string; text: string; chatGuid?: string; attachments?: { name: string; mimeType: string; bytes: Buffer }[]; service?: Service }): Promise<FakeMessage> {
    const chat = opts.chatGuid && isGroupGuid(opts.chatGuid)
      ? this.ensureGroup(opts.chatGuid, opts.from)
      : this.ensureDm(opts.chatGuid ? (parseDm(opts.chatGuid)?.service ?? "iMessage") : (opts.service ?? (this.imessageAvailable(opts.from) ? "iMessage" : "SMS")), opts.from);
    const attachments = (opts.attachments ?? []).map((a) => this.newAttachment(a.name, a.mimeType, a.bytes));
    const m = this.addRow({ chatGuid: chat.guid, isFromMe: false, handle: opts.from, text: opts.text, attachments });
    this.fireNewMessage(m, null);
    return m;
  }

  async deliver(guid: string): Promise<void> {
    const m = this.mustFind(guid);
    if (this.smsDeliveredWithoutDate && this.serviceOf(m.chatGuid) === "SMS") this.smsDelivered.add(m);
    else m.dateDelivered ??= this.now();
    this.fireUpdated(m);
  }

  async read(guid: string): Promise<void> {
    const m = this.mustFind(guid);
    if (isGroupGuid(m.chatGuid)) return; // §1.4: dateRead is only tracked for DMs; groups never get read.
    m.dateDelivered ??= this.now();
    m.dateRead = this.now();
    this.fireUpdated(m);
  }

  async tapback(from: string, targetGuid: string, reaction: string): Promise<FakeMessage> {
    const target = this.mustFind(targetGuid);
    const m = this.addRow({
      chatGuid: target.chatGuid, isFromMe: false, handle: from, text: reactionText(reaction, target.text),
      associatedMessageGuid: `p:0/${target.guid}`, associatedMessageType: reaction,
    });
    this.fireNewMessage(m, null);
    return m;
  }

  async editInbound(guid: string, text: string): Promise<void> {
    const m = this.mustFind(guid);
    m.text = text;
    m.dateEdited = this.now();
    this.fireUpdated(m, true);
  }

  async unsendInbound(guid: string): Promise<void> {
    this.retract(this.mustFind(guid));
  }

  async typing(chatGuid: string, display: boolean): Promise<void> {
    // §1.2: PrivateApiTypingEventHandler ignores group GUIDs (`;+;`), so only DMs ever report typing.
    if (isGroupGuid(chatGuid)) return;
    this.fire("typing-indicator", { display, guid: this.findChat(chatGuid)?.guid ?? chatGuid });
  }

  async groupEvent(chatGuid: string, change: { kind: "rename"; title: string; by: string } | { kind: "added" | "removed"; handle: string; by: string } | { kind: "left"; handle: string }): Promise<FakeMessage> {
    const chat = this.findChat(chatGuid);
    if (chat?.style !== 43) throw new Error(`FakeBlueBubbles: no group chat ${chatGuid}`);
    if (change.kind === "rename") return this.groupChange(chat, change.by, { kind: "rename", title: change.title });
    if (change.kind === "left") return this.groupChange(chat, change.handle, { kind: "left", address: change.handle });
    return this.groupChange(chat, change.by, { kind: change.kind, address: change.handle });
  }

  async flushWebhooks(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
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
      if (route.privateApi) this.requirePrivateApi();
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

  /** `middleware/privateApiMiddleware.ts` (the sentence is the envelope's message, the detail the error's). */
  private requirePrivateApi(): void {
    if (!this.privateApi) throw imessageError(PA_GATE, "iMessage Private API is not enabled!");
    if (!this.helperConnected) throw imessageError(PA_GATE, "iMessage Private API Helper is not connected!");
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.timers.delete(timer); resolve(); }, ms);
      this.timers.set(timer, resolve);
    });
  }

  private buildRoutes(): Route[] {
    const r = (method: string, path: string, run: Route["run"], privateApi = false): Route => ({
      method, privateApi, run, pattern: new RegExp(`^${path.replace(/:\w+/g, "([^/]+)")}$`),
    });
    const v1 = "/api/v1";
    return [
      r("GET", `${v1}/ping`, () => ok("Ping received!", "pong")),
      r("GET", `${v1}/server/info`, () => ok("Successfully fetched metadata", this.serverInfo())),
      r("POST", `${v1}/message/text`, (c) => this.sendText(c)),
      r("POST", `${v1}/message/attachment`, (c) => this.sendAttachment(c)),
      r("POST", `${v1}/message/react`, (c) => this.react(c), true),
      r("POST", `${v1}/message/query`, (c) => this.query(c)),
      // §1.5: edit and unsend check the Private API inside the interface; the effect on the wire is the same.
      r("POST", `${v1}/message/:guid/edit`, (c) => this.edit(c), true),
      r("POST", `${v1}/message/:guid/unsend`, (c) => this.unsend(c), true),
      r("GET", `${v1}/message/:guid`, (c) => this.getMessage(c)),
      r("POST", `${v1}/chat/new`, (c) => this.chatNew(c)),
      r("GET", `${v1}/chat/:guid`, (c) => this.getChat(c)),
      r("PUT", `${v1}/chat/:guid`, (c) => this.rename(c), true),
      r("POST", `${v1}/chat/:guid/participant/add`, (c) => this.toggleParticipant(c, "add"), true),
      r("POST", `${v1}/chat/:guid/participant`, (c) => this.toggleParticipant(c, "add"), true),
      r("POST", `${v1}/chat/:guid/participant/remove`, (c) => this.toggleParticipant(c, "remove"), true),
      r("DELETE", `${v1}/chat/:guid/participant`, (c) => this.toggleParticipant(c, "remove"), true),
      r("POST", `${v1}/chat/:guid/read`, (c) => this.markRead(c), true),
      r("POST", `${v1}/chat/:guid/typing`, (c) => this.setTyping(c, true), true),
      r("DELETE", `${v1}/chat/:guid/typing`, (c) => this.setTyping(c, false), true),
      r("GET", `${v1}/handle/availability/imessage`, (c) => this.availability(c), true),
      r("GET", `${v1}/attachment/:guid/download`, (c) => this.download(c)),
      r("GET", `${v1}/webhook`, () => ok("Successfully fetched webhooks!", this.webhooks.map((w) => ({ ...w, events: [...w.events] })))),
      r("POST", `${v1}/webhook`, (c) => this.addWebhook(c)),
      r("DELETE", `${v1}/webhook/:id`, (c) => this.deleteWebhook(c)),
      // Manual control for an operator (main.ts); same password, not part of BlueBubbles.
      r("POST", "/fake/receive", async (c) => ok("Received", this.serialize(await this.receive(this.receiveOpts(c.body)), HTTP_SENT))),
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

  // ---- routes: sending --------------------------------------------------------------------------------
  /** `validateText` (§1.3): method inference, the AppleScript requirements, the in-flight tempGuid check. */
  private async sendText(c: Ctx): Promise<Reply> {
    const { chatGuid, tempGuid, message, method, effectId, subject, selectedMessageGuid } = this.sendFields(c.body);
    if (typeof c.body.message !== "string") throw badRequest("The message field must be present and a string.");
    const resolved = effectId || subject || selectedMessageGuid || c.body.ddScan || c.body.attributedBody ? "private-api" : (method ?? "apple-script");
    if (resolved === "apple-script" && !tempGuid) throw badRequest("A 'tempGuid' is required when sending via AppleScript");
    if (resolved === "apple-script" && !message) throw badRequest("A 'message' is required when sending via AppleScript");
    if (resolved === "private-api" && !message && !subject) throw badRequest("A 'message' or 'subject' is required when sending via the Private API");
    if (tempGuid && this.inFlight.has(tempGuid)) throw badRequest(`Message is already queued to be sent! (Temp GUID: ${tempGuid})`);
    if (resolved === "private-api" && (!this.privateApi || !this.helperConnected)) {
      throw imessageError("Message Send Error", this.privateApi ? "iMessage Private API Helper is not connected!" : "iMessage Private API is not enabled!");
    }
    const chat = this.chatForSend(chatGuid);
    return this.completeSend("text", tempGuid, () => this.addOutbound(chat, {
      text: message ?? "", tempGuid: tempGuid ?? null, expressiveSendStyleId: effectId ?? null, threadOriginatorGuid: selectedMessageGuid ?? null,
    }));
  }

  /** `validateAttachment` + `sendAttachment` (§1.3): multipart, file field `attachment`. */
  private async sendAttachment(c: Ctx): Promise<Reply> {
    const { chatGuid, tempGuid, method, effectId, subject, selectedMessageGuid } = this.sendFields(c.body);
    const name = str(c.body.name);
    if (!name) throw badRequest("The name field is required.");
    const resolved = effectId || subject || selectedMessageGuid ? "private-api" : (method ?? "apple-script");
    if (resolved === "apple-script" && !tempGuid) throw badRequest("A 'tempGuid' is required when sending via AppleScript");
    if (tempGuid && this.inFlight.has(tempGuid)) throw badRequest("Attachment is already queued to be sent!");
    const file = c.files.attachment;
    if (!file || file.data.length === 0) throw badRequest("Attachment not provided or was empty!");
    if (resolved === "private-api" && (!this.privateApi || !this.helperConnected)) throw imessageError("Attachment Send Error", "iMessage Private API Helper is not connected!");
    const chat = this.chatForSend(chatGuid);
    const mimeType = file.mimeType !== "application/octet-stream" ? file.mimeType : guessMime(name);
    return this.completeSend("attachment", tempGuid, () => this.addOutbound(chat, {
      tempGuid: tempGuid ?? null, isAudioMessage: c.body.isAudioMessage === "true", expressiveSendStyleId: effectId ?? null,
      threadOriginatorGuid: selectedMessageGuid ?? null, attachments: [this.newAttachment(name, mimeType, file.data)],
    }));
  }

  private sendFields(body: Json) {
    const chatGuid = str(body.chatGuid);
    if (!chatGuid) throw badRequest("The chatGuid field is required.");
    const method = str(body.method);
    if (method !== undefined && method !== "apple-script" && method !== "private-api") throw badRequest("The selected method is invalid.");
    const opt = (k: string) => str(body[k]) || undefined;
    return {
      chatGuid, method, tempGuid: opt("tempGuid"), message: str(body.message), effectId: opt("effectId"),
      subject: opt("subject"), selectedMessageGuid: opt("selectedMessageGuid"),
    };
  }

  /** After validation: a scripted failure (`failNextSends`), a scripted hang (`hangNextSends`) or a send. */
  private async completeSend(kind: "text" | "attachment", tempGuid: string | undefined, draft: () => FakeMessage): Promise<Reply> {
    const withTemp = (data: Json) => (tempGuid ? { ...data, tempGuid } : data);
    const code = this.failures.shift();
    if (code !== undefined) {
      // §1.1: a send failure is a 500 whose `data` is the Message with a non-zero `error`; the row exists in
      // chat.db (so it is in `messages`) but the network never carried it (so it is not in `sent`).
      const m = draft();
      m.error = code;
      this.fire("message-send-error", withTemp(this.serialize(m, NEW_MESSAGE)));
      const data = withTemp(this.serialize(m, HTTP_SENT));
      if (kind === "text") throw imessageError("Message sent with an error. See attached message", "Message failed to send!", data);
      throw imessageError("Attachment Send Error", "Failed to send attachment! See attached message error code.", data);
    }
    const hang = this.hangs.shift();
    if (hang) {
      // §0.5 (BB #801): the HTTP call blocks, then answers 500 although the message went out. The send
      // promise never matched the row, so only the poller's new-message fires: without tempGuid.
      if (tempGuid) this.inFlight.add(tempGuid);
      try {
        if (hang.sent) { const m = draft(); this.sent.push(m); this.fireNewMessage(m, null); }
        await this.sleep(hang.ms);
      } finally {
        if (tempGuid) this.inFlight.delete(tempGuid);
      }
      throw imessageError("Message failed to send!", "Message send timeout");
    }
    const m = draft();
    this.sent.push(m);
    this.fireNewMessage(m, tempGuid ?? null);
    const data = this.serialize(m, HTTP_SENT);
    // `messageRouter.ts`: sendText injects tempGuid into the response; sendAttachment does not.
    return kind === "text" ? ok("Message sent!", withTemp(data)) : ok("Attachment sent!", data);
  }

  private async react(c: Ctx): Promise<Reply> {
    const chatGuid = str(c.body.chatGuid);
    const selected = str(c.body.selectedMessageGuid);
    const reaction = str(c.body.reaction);
    if (!chatGuid || !selected || !reaction) throw badRequest("The chatGuid, selectedMessageGuid and reaction fields are required.");
    if (!(reaction.replace(/^-/, "") in REACTIONS)) {
      throw badRequest(`The selected reaction is invalid. Must be one of: ${Object.keys(REACTIONS).flatMap((k) => [k, `-${k}`]).join(", ")}`);
    }
    const target = this.findMessage(selected);
    if (!target) throw badRequest("Selected message does not exist!");
    if (this.refuse.react) throw imessageError("Reaction Send Error", "Failed to send reaction! See attached message error code.");
    const chat = this.findChat(chatGuid) ?? this.mustChat(target.chatGuid);
    const partIndex = typeof c.body.partIndex === "number" ? c.body.partIndex : 0;
    const m = this.addOutbound(chat, { text: reactionText(reaction, target.text), associatedMessageGuid: `p:${partIndex}/${target.guid}`, associatedMessageType: reaction });
    this.sent.push(m);
    this.fireNewMessage(m, null);
    return ok("Reaction sent!", this.serialize(m, HTTP_SENT));
  }

  private async edit(c: Ctx): Promise<Reply> {
    const edited = str(c.body.editedMessage);
    if (!edited || !str(c.body.backwardsCompatibilityMessage)) throw badRequest("The editedMessage and backwardsCompatibilityMessage fields are required.");
    const m = this.findMessage(c.params[0] ?? "");
    if (!m) throw badRequest("Selected message does not exist!");
    if (this.refuse.edit || !m.isFromMe) throw imessageError("Edit Message Error", "Failed to edit message! See attached message error code.");
    m.text = edited;
    m.dateEdited = this.now();
    this.fireUpdated(m, true);
    return ok("Message edited!", this.serialize(m, HTTP_SENT));
  }

  private async unsend(c: Ctx): Promise<Reply> {
    const m = this.findMessage(c.params[0] ?? "");
    if (!m) throw badRequest("Selected message does not exist!");
    if (this.refuse.unsend || !m.isFromMe) throw imessageError("Unsend Message Error", "Failed to unsend message! See attached message error code.");
    this.retract(m);
    return ok("Message unsent!", this.serialize(m, HTTP_SENT));
  }

  // ---- routes: reading --------------------------------------------------------------------------------
  private getMessage(c: Ctx): Reply {
    const m = this.findMessage(c.params[0] ?? "");
    if (!m) throw notFound("Message does not exist!");
    return ok("Success", this.serialize(m, shapeFromWith(parseWith(c.query.with))));
  }

  /** `POST /message/query` (§1.3): filters on dateCreated only (>= after, < before), like `getMessages`. */
  private query(c: Ctx): Reply {
    const b = c.body;
    const offset = b.offset === undefined ? 0 : Number(b.offset);
    const limit = b.limit === undefined ? 100 : Number(b.limit);
    const sort = b.sort === undefined ? "DESC" : b.sort;
    if (!Number.isInteger(offset) || offset < 0) throw badRequest("The offset must be at least 0.");
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest("The limit must be between 1 and 1000.");
    if (sort !== "ASC" && sort !== "DESC") throw badRequest("The selected sort is invalid.");
    for (const k of ["after", "before"] as const) if (b[k] !== undefined && !Number.isFinite(Number(b[k]))) throw badRequest(`The ${k} must be a number.`);
    if (b.where !== undefined && !Array.isArray(b.where)) throw badRequest("The where must be an array.");
    let rows = this.messages;
    const chatGuid = str(b.chatGuid);
    if (chatGuid) {
      const chat = this.findChat(chatGuid);
      if (!chat) return ok(`No chat found with GUID: ${chatGuid}`, []);
      rows = rows.filter((m) => m.chatGuid === chat.guid);
    }
    if (b.after !== undefined) rows = rows.filter((m) => m.dateCreated >= Number(b.after));
    if (b.before !== undefined) rows = rows.filter((m) => m.dateCreated < Number(b.before));
    for (const w of (b.where as unknown[] | undefined) ?? []) rows = rows.filter(this.whereFilter(w));
    const sorted = [...rows].sort((x, y) => x.dateCreated - y.dateCreated || this.rowId(x) - this.rowId(y));
    if (sort === "DESC") sorted.reverse();
    const page = sorted.slice(offset, offset + limit);
    const shape = shapeFromWith(Array.isArray(b.with) ? b.with.map(String) : parseWith(str(b.with)));
    const data = page.map((m) => this.serialize(m, shape));
    return ok("Successfully fetched messages!", data, { offset, limit, total: rows.length, count: data.length });
  }

  /** The `where:[{statement, args}]` clauses a connector uses: `message.<column> <op> :arg` (or `IN (:...arg)`). */
  private whereFilter(w: unknown): (m: FakeMessage) => boolean {
    const clause = (w ?? {}) as { statement?: unknown; args?: Record<string, unknown> };
    const stmt = str(clause.statement) ?? "";
    const p = /^\s*(?:message\.)?(\w+)\s*(==|=|!=|<>|>=|<=|>|<|IN|LIKE)\s*(?:\(\s*:\.\.\.(\w+)\s*\)|:(\w+))\s*$/i.exec(stmt);
    const column = p?.[1] ?? "";
    const columns: Record<string, (m: FakeMessage) => unknown> = {
      guid: (m) => m.guid, ROWID: (m) => this.rowId(m), text: (m) => m.text, is_from_me: (m) => (m.isFromMe ? 1 : 0),
      associated_message_guid: (m) => m.associatedMessageGuid, error: (m) => m.error,
    };
    const get = columns[column];
    if (!p || !get) throw serverError(`SQLITE_ERROR: statement not supported by the fake: ${stmt}`);
    const op = (p[2] ?? "").toUpperCase();
    const arg = clause.args?.[p[3] ?? p[4] ?? ""];
    return (m) => {
      const v = get(m) as string | number | null;
      if (op === "IN") return Array.isArray(arg) && arg.includes(v);
      if (op === "LIKE") return likeRegex(String(arg)).test(String(v ?? ""));
      const a = arg as string | number;
      if (op === "=" || op === "==") return v === a;
      if (op === "!=" || op === "<>") return v !== a;
      if (v === null) return false;
      return op === ">" ? v > a : op === ">=" ? v >= a : op === "<" ? v < a : v <= a;
    };
  }

  private download(c: Ctx): Reply {
    const guid = c.params[0] ?? "";
    for (const m of this.messages) for (const a of m.attachments) if (a.guid === guid) return { file: a };
    throw notFound("Attachment does not exist!");
  }

  // ---- routes: chats ------------------------------------------------------------------------------------
  /** `ChatInterface.create` (§1.3): groups need the Private API; a first message is always required. */
  private async chatNew(c: Ctx): Promise<Reply> {
    const addresses = c.body.addresses;
    if (!Array.isArray(addresses) || addresses.length === 0 || !addresses.every((a) => typeof a === "string" && a)) {
      throw badRequest("The addresses field is required and must be an array of addresses.");
    }
    const method = str(c.body.method) ?? "apple-script";
    const service: Service = c.body.service === "SMS" ? "SMS" : "iMessage";
    const message = str(c.body.message);
    const tempGuid = str(c.body.tempGuid) || null;
    const pa = method === "private-api" && this.privateApi && this.helperConnected;
    if (addresses.length > 1 && !pa) throw serverError("Cannot create group chats on macOS Big Sur or newer!");
    if (!message) throw serverError(`A message is required when creating chats ${method === "private-api" ? "with the Private API" : "on macOS Big Sur or newer"}!`);
    if (method === "private-api") this.requirePrivateApi();
    if (this.refuse.chatNew) throw imessageError("iMessage has encountered an error", "Failed to create chat!");
    const chat = addresses.length === 1 ? this.ensureDm(service, addresses[0] as string) : this.createGroup(addresses as string[]);
    const m = this.addOutbound(chat, { text: message, tempGuid });
    this.sent.push(m);
    this.fireNewMessage(m, tempGuid);
    const first = { ...this.serialize(m, { ...HTTP_SENT, chats: "omit" }), ...(tempGuid ? { tempGuid } : {}) };
    return ok("Successfully created chat!", { ...this.serializeChat(chat, "load", false), messages: [first] });
  }

  private getChat(c: Ctx): Reply {
    const chat = this.findChat(c.params[0] ?? "");
    if (!chat) throw notFound("Chat does not exist!");
    const withs = parseWith(c.query.with);
    const data = this.serializeChat(chat, withs.includes("participants") ? "load" : "empty", false);
    if (withs.includes("lastmessage")) {
      const last = this.messages.filter((m) => m.chatGuid === chat.guid).at(-1);
      data.lastMessage = last ? this.serialize(last, { ...HTTP_SENT, chats: "empty" }) : null;
    }
    return ok("Success", data);
  }

  private rename(c: Ctx): Reply {
    const chat = this.findChat(c.params[0] ?? "");
    if (!chat) throw notFound("Chat does not exist!");
    const displayName = str(c.body.displayName);
    if (!displayName) return ok("Chat not updated! No update information provided!", this.serializeChat(chat, "load", false));
    if (chat.style !== 43 || chat.participants.length <= 1) throw imessageError("Cannot rename a non-group chat!", "Chat is not a group");
    if (this.refuse.rename) throw imessageError("Chat update executed with errors!", "Failed to set new display name!");
    // The Mac's own change lands in chat.db like anyone's: group-name-change + new-message with isFromMe.
    if (displayName !== chat.displayName) this.groupChange(chat, "", { kind: "rename", title: displayName });
    return ok("Successfully updated the following fields: displayName", this.serializeChat(chat, "load", false));
  }

  private toggleParticipant(c: Ctx, action: "add" | "remove"): Reply {
    const chat = this.findChat(c.params[0] ?? "");
    if (!chat) throw notFound("Chat does not exist!");
    const address = str(c.body.address);
    if (!address) throw badRequest("The address field is required.");
    if (chat.style !== 43) throw serverError("Chat is not a group chat!");
    if (this.refuse.participant) throw imessageError("iMessage has encountered an error", `Failed to ${action} participant!`);
    if (chat.participants.includes(address) === (action === "add")) {
      throw serverError(`Failed to ${action} participant to chat! Operation took longer than 5 seconds!`);
    }
    this.groupChange(chat, "", { kind: action === "add" ? "added" : "removed", address });
    return ok("Success", this.serializeChat(chat, "load", false));
  }

  private markRead(c: Ctx): Reply {
    const chat = this.findChat(c.params[0] ?? "");
    if (!chat) throw notFound("Chat does not exist!");
    if (this.refuse.read) throw imessageError("iMessage has encountered an error", "Failed to mark chat as read!");
    // §1.4: this is the Mac's own read state, not a recipient read receipt.
    this.fire("chat-read-status-changed", { chatGuid: chat.guid, read: true });
    return ok("Successfully marked chat as read!");
  }

  private setTyping(c: Ctx, on: boolean): Reply {
    if (!this.findChat(c.params[0] ?? "")) throw notFound("Chat does not exist!");
    if (this.refuse.typing) throw imessageError("iMessage has encountered an error", `Failed to ${on ? "start" : "stop"} typing!`);
    return ok(`Successfully ${on ? "started" : "stopped"} typing!`);
  }

  private availability(c: Ctx): Reply {
    const address = c.query.address;
    if (!address) throw badRequest("The address field is required.");
    return ok("Successfully determined iMessage availability!", { available: this.imessageAvailable(address) });
  }

  // ---- routes: webhooks -------------------------------------------------------------------------------
  private addWebhook(c: Ctx): Reply {
    const url = str(c.body.url);
    const events = c.body.events;
    if (!url) throw badRequest("Webhook URL is required!");
    if (!url.startsWith("http")) throw badRequest("Webhook URL must include an HTTP scheme!");
    if (!Array.isArray(events)) throw badRequest("The events field is required and must be an array.");
    for (const e of events) {
      if (typeof e !== "string") throw badRequest("Webhook events must be strings!");
      if (!WEBHOOK_EVENTS.includes(e)) throw badRequest(`Invalid webhook event: ${e}! Webhook must be one of: ${WEBHOOK_EVENTS.join(",")}`);
    }
    // `ServerRepository.addWebhook`: an existing URL is returned as it is, its events NOT updated.
    const existing = this.webhooks.find((w) => w.url === url);
    const hook = existing ?? { id: this.nextWebhookId++, url, events: [...(events as string[])] };
    if (!existing) this.webhooks.push(hook);
    return ok("Successfully created webhook!", { ...hook, events: [...hook.events] });
  }

  private deleteWebhook(c: Ctx): Reply {
    const id = Number(c.params[0]);
    const i = this.webhooks.findIndex((w) => w.id === id);
    if (i < 0) throw notFound("Webhook does not exist!");
    this.webhooks.splice(i, 1);
    return ok("Successfully deleted webhook!");
  }

  // ---- chat.db model ------------------------------------------------------------------------------------
  private addRow(p: Partial<FakeMessage> & Pick<FakeMessage, "chatGuid" | "isFromMe" | "handle">): FakeMessage {
    const m: FakeMessage = {
      guid: uuid(), tempGuid: null, text: "", dateCreated: this.now(), dateDelivered: null, dateRead: null, dateEdited: null,
      dateRetracted: null, error: 0, associatedMessageGuid: null, associatedMessageType: null, expressiveSendStyleId: null,
      threadOriginatorGuid: null, isAudioMessage: false, attachments: [], itemType: 0, groupTitle: null, groupActionType: 0,
      otherHandle: 0, ...p,
    };
    this.rowIds.set(m, this.nextRowId++);
    this.messages.push(m);
    return m;
  }

  /** An outbound row: in a DM its handle is the recipient; in a group, no handle (handle_id 0). */
  private addOutbound(chat: FakeChat, p: Partial<FakeMessage>): FakeMessage {
    return this.addRow({ ...p, chatGuid: chat.guid, isFromMe: true, handle: chat.style === 45 ? (chat.participants[0] ?? "") : "" });
  }

  private newAttachment(name: string, mimeType: string, bytes: Buffer): FakeAttachment {
    const a = { guid: uuid(), transferName: name, mimeType, bytes };
    this.rowIds.set(a, this.nextRowId++);
    return a;
  }

  private retract(m: FakeMessage): void {
    // Apple marks an unsend by bumping date_edited and emptying the parts (BB waits on dateEdited, §1.3);
    // dateRetracted is set too, so both signals of §1.4 ("Unsend") are present.
    m.dateEdited = this.now();
    m.dateRetracted = m.dateEdited;
    m.text = "";
    this.fireUpdated(m, true);
  }

  /** A group change row (§1.4, `MessagePoller.handleGroupChanges`) applied to the chat, then announced. */
  private groupChange(chat: FakeChat, actor: string, c: { kind: "rename"; title: string } | { kind: "added" | "removed" | "left"; address: string }): FakeMessage {
    const fromMe = actor === "";
    let m: FakeMessage;
    let event: string;
    if (c.kind === "rename") {
      chat.displayName = c.title;
      m = this.addRow({ chatGuid: chat.guid, isFromMe: fromMe, handle: actor, itemType: 2, groupTitle: c.title });
      event = "group-name-change";
    } else if (c.kind === "left") {
      chat.participants = chat.participants.filter((p) => p !== c.address);
      // participant-left: the leaver is the row's own handle; otherHandle stays 0.
      m = this.addRow({ chatGuid: chat.guid, isFromMe: false, handle: c.address, itemType: 3, groupActionType: 0 });
      event = "participant-left";
    } else {
      if (c.kind === "added" && !chat.participants.includes(c.address)) chat.participants.push(c.address);
      if (c.kind === "removed") chat.participants = chat.participants.filter((p) => p !== c.address);
      // otherHandle is only a handle ROWID, as in BB; the connector re-reads GET /chat/:guid?with=participants.
      m = this.addRow({
        chatGuid: chat.guid, isFromMe: fromMe, handle: actor, itemType: 1, groupActionType: c.kind === "added" ? 0 : 1,
        otherHandle: this.handleId(c.address),
      });
      event = c.kind === "added" ? "participant-added" : "participant-removed";
    }
    // The poller reports the row both as the group event and as an ordinary new message.
    this.fire(event, this.serialize(m, NEW_MESSAGE));
    this.fireNewMessage(m, null);
    return m;
  }

  /** chat.db lookup; 1:1 GUIDs match across `iMessage;-;`, `SMS;-;` and `any;-;` (§0.6), same service first. */
  private findChat(guid: string): FakeChat | undefined {
    const exact = this.chats.get(guid);
    if (exact) return exact;
    const dm = parseDm(guid);
    if (!dm) return undefined;
    const same = [...this.chats.values()].filter((c) => parseDm(c.guid)?.address === dm.address);
    return same.find((c) => parseDm(c.guid)?.service === dm.service) ?? same[0];
  }

  private chatForSend(guid: string): FakeChat {
    if (isGroupGuid(guid)) {
      const chat = this.findChat(guid);
      if (!chat) throw notFound("Chat does not exist!");
      return chat;
    }
    const dm = parseDm(guid);
    if (!dm) throw imessageError("Message Send Error", `Invalid chat GUID: ${guid}`);
    return this.ensureDm(dm.service, dm.address);
  }

  /** The 1:1 chat for (service, address), created on first use under the form chat.db stores (§0.6, macOS 26 `any;-;`). */
  private ensureDm(service: Service, address: string): FakeChat {
    const existing = [...this.chats.values()].find((c) => { const d = parseDm(c.guid); return d?.address === address && d.service === service; });
    if (existing) return existing;
    const guid = service === "SMS" ? `SMS;-;${address}` : `${this.chatGuidPrefix};-;${address}`;
    return this.putChat({ guid, displayName: null, participants: [address], style: 45 });
  }

  private ensureGroup(guid: string, member: string): FakeChat {
    return this.chats.get(guid) ?? this.putChat({ guid, displayName: null, participants: [member], style: 43 });
  }

  private createGroup(addresses: string[]): FakeChat {
    const guid = `iMessage;+;chat${randomInt(1e9, 1e10 - 1)}${randomInt(1e8, 1e9 - 1)}`;
    return this.putChat({ guid, displayName: null, participants: [...new Set(addresses)], style: 43 });
  }

  private putChat(chat: FakeChat): FakeChat {
    this.chats.set(chat.guid, chat);
    this.rowIds.set(chat, this.nextRowId++);
    return chat;
  }

  private mustChat(guid: string): FakeChat {
    const chat = this.findChat(guid);
    if (!chat) throw new Error(`FakeBlueBubbles: no chat ${guid}`);
    return chat;
  }

  private findMessage(guid: string): FakeMessage | undefined {
    return this.messages.find((m) => m.guid === guid);
  }

  private mustFind(guid: string): FakeMessage {
    const m = this.findMessage(guid);
    if (!m) throw new Error(`FakeBlueBubbles: no message ${guid}`);
    return m;
  }

  private mustFindHttp(guid: string | undefined): string {
    if (!guid || !this.findMessage(guid)) throw notFound("Message does not exist!");
    return guid;
  }

  private receiveOpts(body: Json) {
    const from = str(body.from);
    const text = str(body.text);
    if (!from || text === undefined) throw badRequest("The from and text fields are required.");
    const service: Service | undefined = body.service === "SMS" || body.service === "iMessage" ? body.service : undefined;
    return { from, text, chatGuid: str(body.chatGuid), service };
  }

  private serviceOf(chatGuid: string): Service {
    return chatGuid.startsWith("SMS;") ? "SMS" : "iMessage";
  }

  private rowId(o: object): number {
    return this.rowIds.get(o) ?? 0;
  }

  private handleId(address: string): number {
    let id = this.handleIds.get(address);
    if (id === undefined) { id = this.handleIds.size + 1; this.handleIds.set(address, id); }
    return id;
  }

  // ---- serializers (MessageSerializer, ChatSerializer, HandleSerializer, AttachmentSerializer) -----------
  private serialize(m: FakeMessage, s: Shape): Json {
    const chat = this.findChat(m.chatGuid);
    const out: Json = {
      originalROWID: this.rowId(m), guid: m.guid, text: m.text, attributedBody: null,
      handle: m.handle ? this.serializeHandle(m.handle, this.serviceOf(m.chatGuid)) : null,
      handleId: m.handle ? this.handleId(m.handle) : 0, otherHandle: m.otherHandle,
      // HTTP reads only carry attachments when asked (`with: ["attachments"]`); webhooks always do.
      attachments: s.attachments ? m.attachments.map((a) => this.serializeAttachment(a, m, s.notification)) : [],
      subject: null, error: m.error, dateCreated: m.dateCreated, dateRead: m.dateRead, dateDelivered: m.dateDelivered,
      isDelivered: !m.isFromMe || m.dateDelivered !== null || this.smsDelivered.has(m), isFromMe: m.isFromMe,
      hasDdResults: false, isArchived: false, itemType: m.itemType, groupTitle: m.groupTitle, groupActionType: m.groupActionType,
      balloonBundleId: null, associatedMessageGuid: m.associatedMessageGuid, associatedMessageType: m.associatedMessageType,
      expressiveSendStyleId: m.expressiveSendStyleId, threadOriginatorGuid: m.threadOriginatorGuid, hasPayloadData: false,
    };
    // §1.4: fields "outside webhook payloads only" — notably isAudioMessage and replyToGuid.
    if (!s.notification) {
      Object.assign(out, {
        country: null, isDelayed: false, isAutoReply: false, isSystemMessage: false, isServiceMessage: false, isForward: false,
        threadOriginatorPart: m.threadOriginatorGuid ? "0:0:0" : null, isCorrupt: false, datePlayed: null,
        cacheRoomnames: chat?.style === 43 ? chat.guid.split(";")[2] : null, isSpam: false, isExpired: false,
        timeExpressiveSendStyleId: null, isAudioMessage: m.isAudioMessage, replyToGuid: m.threadOriginatorGuid,
        shareStatus: 0, shareDirecation: false, wasDeliveredQuietly: false, didNotifyRecipient: false,
      });
    }
    if (s.chats !== "omit") {
      out.chats = s.chats === "load" && chat ? [this.serializeChat(chat, s.participants && chat.style === 43 ? "load" : "omit", s.notification)] : [];
    }
    return { ...out, messageSummaryInfo: null, payloadData: null, dateEdited: m.dateEdited, dateRetracted: m.dateRetracted, partCount: 1 };
  }

  private serializeChat(c: FakeChat, participants: "omit" | "empty" | "load", notification: boolean): Json {
    const out: Json = {
      originalROWID: this.rowId(c), guid: c.guid, style: c.style, chatIdentifier: c.guid.split(";")[2] ?? c.guid,
      // chat.db stores an unnamed chat's display_name as "" rather than NULL.
      isArchived: false, displayName: c.displayName ?? "",
    };
    if (participants !== "omit") out.participants = participants === "load" ? c.participants.map((a) => this.serializeHandle(a, this.serviceOf(c.guid))) : [];
    if (!notification) Object.assign(out, { isFiltered: false, groupId: c.style === 43 ? c.guid : null, properties: null, lastAddressedHandle: null });
    return out;
  }

  private serializeHandle(address: string, service: Service): Json {
    return { originalROWID: this.handleId(address), address, service, uncanonicalizedId: null, country: "us" };
  }

  private serializeAttachment(a: FakeAttachment, m: FakeMessage, notification: boolean): Json {
    const out: Json = {
      originalROWID: this.rowId(a), guid: a.guid, uti: UTI[a.mimeType] ?? "public.data", mimeType: a.mimeType,
      transferName: a.transferName, totalBytes: a.bytes.length, height: 0, width: 0, metadata: null,
    };
    if (!notification) Object.assign(out, { transferState: 5, isOutgoing: m.isFromMe, hideAttachment: false, isSticker: false, originalGuid: a.guid, hasLivePhoto: false });
    return out;
  }

  // ---- webhooks (services/webhookService: unsigned, no retries, failures only logged; §0.1) -------------
  /** new-message for a new row; with `duplicateNewMessage` it fires twice (§0.3): the send-promise match carrying tempGuid, then the poller's copy. */
  private fireNewMessage(m: FakeMessage, tempGuid: string | null): void {
    const data = this.serialize(m, NEW_MESSAGE);
    const copies = this.duplicateNewMessage ? 2 : 1;
    for (let i = 0; i < copies; i++) this.fire("new-message", i === 0 && tempGuid ? { ...data, tempGuid } : data);
  }

  /** updated-message (§1.4 `MessagePoller` filter): delivery and read only count for your own rows; edits for anyone's. */
  private fireUpdated(m: FakeMessage, anyone = false): void {
    if (m.isFromMe || anyone) this.fire("updated-message", this.serialize(m, UPDATED_MESSAGE));
  }

  /** POSTs `{type, data}` to every matching webhook. Deliveries to one URL are chained so they arrive in order (BB fires them concurrently). */
  private fire(type: string, data: unknown): void {
    if (this.dropWebhooks) return;
    const body = JSON.stringify({ type, data });
    for (const hook of this.webhooks) {
      if (!hook.events.includes("*") && !hook.events.includes(type)) continue;
      const p = (this.chains.get(hook.id) ?? Promise.resolve())
        .then(() => this.post(hook.url, body))
        .catch((e: unknown) => this.log(`webhook ${type} → ${hook.url} failed: ${e instanceof Error ? e.message : String(e)}`));
      this.chains.set(hook.id, p);
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    }
  }

  private post(url: string, body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const request = target.protocol === "https:" ? https.request : http.request;
      const req = request(target, {
        method: "POST", agent: false, signal: this.abort.signal,
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
      }, (res) => {
        res.resume();
        res.on("end", () => ((res.statusCode ?? 500) < 400 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }
}

// ---- helpers ------------------------------------------------------------------------------------------
function reactionText(reaction: string, targetText: string): string {
  const removed = reaction.startsWith("-");
  const texts = REACTIONS[reaction.replace(/^-/, "")];
  const verb = texts ? texts[removed ? 1 : 0] : "Reacted to";
  return `${verb} “${targetText}”`;
}

function parseWith(v: string | undefined): string[] {
  return (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

function shapeFromWith(withs: string[]): Shape {
  const has = (...names: string[]) => names.some((n) => withs.includes(n));
  const participants = has("chats.participants", "chat.participants");
  return { notification: false, chats: has("chats", "chat") || participants ? "load" : "empty", participants, attachments: has("attachments", "attachment") };
}

function likeRegex(pattern: string): RegExp {
  const body = pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/%/g, ".*").replace(/_/g, ".");
  return new RegExp(`^${body}$`, "is");
}

function guessMime(name: string): string {
  return MIME_BY_EXT[name.split(".").pop()?.toLowerCase() ?? ""] ?? "application/octet-stream";
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseBody(contentType: string | undefined, raw: Buffer): { body: Json; files: Record<string, Upload>; logged: unknown } {
  const type = contentType ?? "";
  if (type.startsWith("multipart/form-data")) {
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(type);
    const { fields, files } = parseMultipart(raw, boundary?.[1] ?? boundary?.[2] ?? "");
    const logged: Json = { ...fields };
    for (const [k, f] of Object.entries(files)) logged[k] = { filename: f.filename, mimeType: f.mimeType, size: f.data.length };
    return { body: fields, files, logged };
  }
  if (raw.length === 0) return { body: {}, files: {}, logged: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw badRequest("Invalid JSON body");
  }
  const body = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Json) : {};
  return { body, files: {}, logged: parsed };
}

/** A minimal multipart/form-data reader: split on the boundary, headers up to the blank line, content to the next CRLF--boundary. */
function parseMultipart(raw: Buffer, boundary: string): { fields: Record<string, string>; files: Record<string, Upload> } {
  const fields: Record<string, string> = {};
  const files: Record<string, Upload> = {};
  if (!boundary) throw badRequest("Missing multipart boundary");
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = raw.indexOf(delimiter);
  while (pos !== -1) {
    const start = pos + delimiter.length;
    if (raw.subarray(start, start + 2).toString() === "--") break;
    const next = raw.indexOf(Buffer.from(`\r\n--${boundary}`), start);
    if (next === -1) break;
    const part = raw.subarray(start + 2, next);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd !== -1) {
      const head = part.subarray(0, headerEnd).toString("utf8");
      const content = part.subarray(headerEnd + 4);
      const name = /\bname="([^"]*)"/i.exec(head)?.[1];
      const filename = /\bfilename="([^"]*)"/i.exec(head)?.[1];
      const mimeType = /content-type:\s*([^\r\n;]+)/i.exec(head)?.[1]?.trim() ?? "application/octet-stream";
      if (name !== undefined && filename !== undefined) files[name] = { filename, mimeType, data: Buffer.from(content) };
      else if (name !== undefined) fields[name] = content.toString("utf8");
    }
    pos = next + 2;
  }
  return { fields, files };
}

function send(res: http.ServerResponse, reply: Reply): void {
  if (res.destroyed || res.writableEnded) return;
  if ("file" in reply) {
    const a = reply.file;
    res.writeHead(200, {
      "Content-Type": a.mimeType, "Content-Length": a.bytes.length,
      "Content-Disposition": `attachment; filename="${a.transferName.replace(/[^\x20-\x7e]|["\\]/g, "_")}"`,
    });
    res.end(a.bytes);
    return;
  }
  const text = JSON.stringify(reply.json);
  res.writeHead(Number(reply.json.status ?? 200), { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}
