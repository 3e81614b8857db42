import { randomBytes } from "node:crypto";
import { WahaChatRoutes } from "./chat-routes.js";
import { need, obj, str } from "./json.js";
import type { Ctx, FakeGroup, FakeSession, Reply } from "./types.js";
import { toChatId, toJid } from "./wa-format.js";

/** WAHA's group API, answered with what NOWEB answers (Baileys GroupMetadata, engine errors as 500). */
export abstract class WahaGroupRoutes extends WahaChatRoutes {
  protected groupGuard(c: Ctx): FakeSession {
    const s = this.working(c.params[0] ?? "");
    if (this.refuse.group) throw this.fail(c, "Internal Server Error: group call refused");
    return s;
  }

  /** NOWEB getGroup: an unknown id is a plain Error → 500, not 404. */
  protected group(c: Ctx): FakeGroup {
    this.working(c.params[0] ?? "");
    const g = this.groups.get(c.params[1] ?? "");
    if (!g) throw this.fail(c, `Group with id '${c.params[1]}' not found`);
    return g;
  }

  /** NOWEB answers group calls with Baileys GroupMetadata: participants as `<digits>@s.whatsapp.net` with `admin`. */
  protected groupMetadata(session: string, g: FakeGroup) {
    const me = this.meId(session);
    const participants = g.participants.map((p) => ({ id: toJid(p), admin: p === me ? "superadmin" : null }));
    return { id: g.id, subject: g.subject, subjectOwner: toJid(me), subjectTime: this.seconds(), creation: this.seconds(), owner: toJid(me), desc: undefined, restrict: false, announce: false, size: participants.length, participants };
  }

  protected createGroup(c: Ctx): Reply {
    const s = this.groupGuard(c);
    const name = need(c.body, "name");
    const members = Array.isArray(c.body.participants) ? c.body.participants.map((p) => toChatId(str(obj(p).id) ?? "")) : [];
    const me = this.meId(s.name);
    const g: FakeGroup = { id: `120363${String(randomBytes(6).readUIntBE(0, 6) % 1e12).padStart(12, "0")}@g.us`, subject: name, participants: [me, ...members] };
    this.groups.set(g.id, g);
    const info = { id: g.id, subject: g.subject, description: null, participants: g.participants.map((id) => ({ id, role: id === me ? "superadmin" : "participant" })) };
    this.emit(s.name, "group.v2.join", { timestamp: this.now(), group: info, _data: {} });
    return { body: this.groupMetadata(s.name, g) };
  }

  /** Our own group changes come back as group.v2.* events, authored by us (WhatsApp notifies every member). */
  protected setSubject(c: Ctx): Reply {
    const s = this.groupGuard(c);
    const g = this.group(c);
    g.subject = need(c.body, "subject");
    this.emitGroupUpdate(s.name, g, this.meId(s.name));
    return { status: 200 };
  }

  protected participants(c: Ctx): Reply {
    const s = this.groupGuard(c);
    const g = this.group(c);
    const action = c.params[2] === "add" ? "add" : "remove";
    const who = (Array.isArray(c.body.participants) ? c.body.participants : []).map((p) => toChatId(str(obj(p).id) ?? ""));
    this.emitParticipants(s.name, g, action, who, this.meId(s.name));
    return { body: who.map((id) => ({ status: "200", jid: toJid(id) })) };
  }

  protected leaveGroup(c: Ctx): Reply {
    const s = this.groupGuard(c);
    this.emitParticipants(s.name, this.group(c), "remove", [this.meId(s.name)], this.meId(s.name));
    return {};
  }
}
