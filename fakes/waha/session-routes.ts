// WAHA's session API: list, read, reconfigure, start/stop/restart.
import type { Engine } from "./engine.js";
import { obj } from "./json.js";
import { boot, changeStatus } from "./scripted.js";
import type { Ctx, FakeSession, Reply } from "./types.js";

function sessionInfo(s: FakeSession) {
  return { name: s.name, status: s.status, config: s.config, me: s.me, engine: { engine: "NOWEB" } };
}

export function listSessions(e: Engine): Reply {
  return { body: [...e.fake.sessions.values()].map((s) => sessionInfo(s)) };
}

export function getSession(e: Engine, c: Ctx): Reply {
  return { body: sessionInfo(e.session(c.params[0] ?? "")) };
}

/**
 * PUT /api/sessions/{session} {config}: "Updates a session with a full new configuration. If the session is not in a
 * STOPPED status, it will be stopped and started with the new configuration" (WAHA docs, how-to/sessions), so a
 * running session passes through STARTING again, announced to the new webhooks.
 */
export function updateSession(e: Engine, c: Ctx): Reply {
  const s = e.session(c.params[0] ?? "");
  s.config = obj(c.body.config) as FakeSession["config"];
  if (s.status !== "STOPPED") boot(e, s);
  return { body: sessionInfo(s) };
}

export function lifecycle(e: Engine, c: Ctx): Reply {
  const s = e.session(c.params[0] ?? "");
  const action = c.params[1];
  if (action === "stop" || action === "restart") changeStatus(e, s, "STOPPED");
  if (action !== "stop" && s.status === "STOPPED") boot(e, s);
  return { body: sessionInfo(s) };
}
