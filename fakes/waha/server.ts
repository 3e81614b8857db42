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
import { WahaGroupRoutes } from "./group-routes.js";
import { obj } from "./json.js";
import type { Ctx, FakeSession, Handler, Reply } from "./types.js";

export type { FakeGroup, FakeSession, FakeWaMessage, FakeWebhookConfig } from "./types.js";
export { WAHA_VERSION } from "./wa-format.js";

/**
 * Built as a stack of layers, one concern per file (state → webhooks → scripted → http → chat-routes → group-routes),
 * as classes rather than functions over a shared object so that the internals stay protected and FakeWaha's public
 * surface is only what tests drive.
 */
export class FakeWaha extends WahaGroupRoutes {
  // ---------------------------------------------------------------- routes

  protected override routeTable(): [string, RegExp, Handler][] {
    const P = "([^/]+)";
    const r = (method: string, path: string, h: Handler): [string, RegExp, Handler] => [method, new RegExp(`^${path.replaceAll("{}", P)}$`), h];
    return [
      r("GET", "/api/sessions", () => ({ body: [...this.sessions.values()].map((s) => this.sessionInfo(s)) })),
      r("GET", "/api/sessions/{}", (c) => ({ body: this.sessionInfo(this.session(c.params[0] ?? "")) })),
      r("PUT", "/api/sessions/{}", (c) => this.updateSession(c)),
      r("POST", "/api/sessions/{}/(start|stop|restart)", (c) => this.lifecycle(c)),
      r("POST", "/api/sendText", (c) => this.send(c, "text")),
      r("POST", "/api/sendImage", (c) => this.send(c, "image")),
      r("POST", "/api/sendFile", (c) => this.send(c, "file")),
      r("POST", "/api/sendVoice", (c) => this.send(c, "voice")),
      r("POST", "/api/sendVideo", (c) => this.send(c, "video")),
      r("PUT", "/api/reaction", (c) => this.reaction(c)),
      r("PUT", "/api/{}/chats/{}/messages/{}", (c) => this.edit(c)),
      r("DELETE", "/api/{}/chats/{}/messages/{}", (c) => this.revoke(c)),
      r("GET", "/api/{}/chats/{}/messages", (c) => this.history(c)),
      r("POST", "/api/sendSeen", (c) => this.chatting(c)),
      r("POST", "/api/startTyping", (c) => this.chatting(c)),
      r("POST", "/api/stopTyping", (c) => this.chatting(c)),
      r("POST", "/api/{}/presence", (c) => this.chatting(c, c.params[0])),
      r("POST", "/api/{}/presence/{}/subscribe", (c) => this.subscribe(c)),
      r("GET", "/api/contacts/check-exists", (c) => this.checkExists(c)),
      r("GET", "/api/files/{}/{}", (c) => this.file(c)),
      r("POST", "/api/{}/groups", (c) => this.createGroup(c)),
      r("GET", "/api/{}/groups/{}", (c) => ({ body: this.groupMetadata(c.params[0] ?? "", this.group(c)) })),
      r("PUT", "/api/{}/groups/{}/subject", (c) => this.setSubject(c)),
      r("POST", "/api/{}/groups/{}/participants/(add|remove)", (c) => this.participants(c)),
      r("POST", "/api/{}/groups/{}/leave", (c) => this.leaveGroup(c)),
    ];
  }

  private sessionInfo(s: FakeSession) {
    return { name: s.name, status: s.status, config: s.config, me: s.me, engine: { engine: "NOWEB" } };
  }

  /**
   * PUT /api/sessions/{session} {config}: "Updates a session with a full new configuration. If the session is not in a
   * STOPPED status, it will be stopped and started with the new configuration" (WAHA docs, how-to/sessions), so a
   * running session passes through STARTING again, announced to the new webhooks.
   */
  private updateSession(c: Ctx): Reply {
    const s = this.session(c.params[0] ?? "");
    s.config = obj(c.body.config) as FakeSession["config"];
    if (s.status !== "STOPPED") this.boot(s);
    return { body: this.sessionInfo(s) };
  }

  private lifecycle(c: Ctx): Reply {
    const s = this.session(c.params[0] ?? "");
    const action = c.params[1];
    if (action === "stop" || action === "restart") this.changeStatus(s, "STOPPED");
    if (action !== "stop" && s.status === "STOPPED") this.boot(s);
    return { body: this.sessionInfo(s) };
  }
}
