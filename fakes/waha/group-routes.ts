// WAHA's group API, answered with what NOWEB answers (Baileys GroupMetadata, engine errors as 500).
import { randomBytes } from "node:crypto";
import type { Engine } from "./engine.js";
import { fail } from "./http.js";
import { need, obj, str } from "./json.js";
import { emitGroupUpdate, emitParticipants } from "./scripted.js";
import type { Ctx, FakeGroup, FakeSession, Reply } from "./types.js";
import { toChatId, toJid } from "./wa-format.js";

function groupGuard(e: Engine, c: Ctx): FakeSession {
  const s = e.working(c.params[0] ?? "");
  if (e.fake.refuse.group) throw fail(e, c, "Internal Server Error: group call refused");
  return s;
}

/** NOWEB getGroup: an unknown id is a plain Error → 500, not 404. */
function group(e: Engine, c: Ctx): FakeGroup {
  e.working(c.params[0] ?? "");
  const g = e.fake.groups.get(c.params[1] ?? "");
  if (!g) throw fail(e, c, `Group with id '${c.params[1]}' not found`);
  return g;
}

/** NOWEB answers group calls with Baileys GroupMetadata: participants as `<digits>@s.whatsapp.net` with `admin`. */
function groupMetadata(e: Engine, session: string, g: FakeGroup) {
  const me = e.meId(session);
  const participants = g.participants.map((p) => ({ id: toJid(p), admin: p === me ? "superadmin" : null }));
  return { id: g.id, subject: g.subject, subjectOwner: toJid(me), subjectTime: e.seconds(), creation: e.seconds(), owner: toJid(me), desc: undefined, restrict: false, announce: false, size: participants.length, participants };
}

export function getGroup(e: Engine, c: Ctx): Reply {
  return { body: groupMetadata(e, c.params[0] ?? "", group(e, c)) };
}

export function createGroup(e: Engine, c: Ctx): Reply {
  const s = groupGuard(e, c);
  const name = need(c.body, "name");
  const members = Array.isArray(c.body.participants) ? c.body.participants.map((p) => toChatId(str(obj(p).id) ?? "")) : [];
  const me = e.meId(s.name);
  const g: FakeGroup = { id: `120363${String(randomBytes(6).readUIntBE(0, 6) % 1e12).padStart(12, "0")}@g.us`, subject: name, participants: [me, ...members] };
  e.fake.groups.set(g.id, g);
  const info = { id: g.id, subject: g.subject, description: null, participants: g.participants.map((id) => ({ id, role: id === me ? "superadmin" : "participant" })) };
  e.hooks.emit(s.name, "group.v2.join", { timestamp: e.now(), group: info, _data: {} });
  return { body: groupMetadata(e, s.name, g) };
}

/** Our own group changes come back as group.v2.* events, authored by us (WhatsApp notifies every member). */
export function setSubject(e: Engine, c: Ctx): Reply {
  const s = groupGuard(e, c);
  const g = group(e, c);
  g.subject = need(c.body, "subject");
  emitGroupUpdate(e, s.name, g, e.meId(s.name));
  return { status: 200 };
}

export function participants(e: Engine, c: Ctx): Reply {
  const s = groupGuard(e, c);
  const g = group(e, c);
  const action = c.params[2] === "add" ? "add" : "remove";
  const who = (Array.isArray(c.body.participants) ? c.body.participants : []).map((p) => toChatId(str(obj(p).id) ?? ""));
  emitParticipants(e, s.name, g, action, who, e.meId(s.name));
  return { body: who.map((id) => ({ status: "200", jid: toJid(id) })) };
}

export function leaveGroup(e: Engine, c: Ctx): Reply {
  const s = groupGuard(e, c);
  emitParticipants(e, s.name, group(e, c), "remove", [e.meId(s.name)], e.meId(s.name));
  return {};
}
