import type { ChannelName, Mode, NumbersTable } from "../db/schema.js";
import { SERVES, type BackendName } from "../numbers/backend-config.js";
import type { Capabilities, DeviceBackend, DeviceNumber } from "./backend.js";
import type { LiveBackend } from "./live.js";
import type { SimulatorBackend } from "./simulator.js";

/**
 * Which device back-end serves a number. Test mode always runs through the simulator, whatever
 * the number's back-end; live mode uses the back-ends the operator configured — one, or one per
 * channel (iMessage/SMS on BlueBubbles and WhatsApp on WAHA), routed by channel.
 */
export class Backends {
  private readonly routers = new Map<string, DeviceBackend>();

  constructor(
    readonly simulator: SimulatorBackend,
    /** By back-end name; tests may add their own device under any name. */
    readonly live: Record<string, DeviceBackend> = {},
  ) {}

  for(number: Pick<NumbersTable, "backend">, mode: Mode): DeviceBackend {
    if (mode === "test" || number.backend === "simulator") return this.simulator;
    let backend = this.routers.get(number.backend);
    if (!backend) {
      const names = number.backend.split(",");
      const parts = names.map((name) => {
        const b = this.live[name];
        if (!b) throw new Error(`no device back-end named ${name}`);
        return b;
      });
      backend = parts.length === 1 ? (parts[0] as DeviceBackend) : new ChannelRouter(parts);
      this.routers.set(number.backend, backend);
    }
    return backend;
  }

  /** The real back-end by name, if this app has one. */
  named(name: string): LiveBackend | undefined {
    const b = this.live[name];
    return b && "ingest" in b ? (b as LiveBackend) : undefined;
  }
}

export function deviceNumber(n: Pick<NumbersTable, "id" | "handle" | "channels" | "backend_config">, mode: Mode): DeviceNumber {
  return {
    id: n.id,
    handle: n.handle,
    mode,
    channels: n.channels.split(",") as ChannelName[],
    config: JSON.parse(n.backend_config) as Record<string, unknown>,
  };
}

/** A number served by several back-ends: every operation goes to the one serving its channel. */
class ChannelRouter implements DeviceBackend {
  readonly name: string;

  constructor(private readonly parts: DeviceBackend[]) {
    this.name = parts.map((p) => p.name).join(",");
  }

  private by(channel: ChannelName): DeviceBackend {
    const b = this.parts.find((p) => (SERVES[p.name as BackendName] ?? [channel]).includes(channel));
    if (!b) throw new Error(`no back-end of ${this.name} serves ${channel}`);
    return b;
  }

  /** Online while any back-end is: a WhatsApp outage does not stop iMessage. */
  async health(n: DeviceNumber): Promise<"online" | "offline"> {
    const states = await Promise.all(this.parts.map((p) => p.health(n)));
    return states.includes("online") ? "online" : "offline";
  }

  async lookup(n: DeviceNumber, handle: string): Promise<Capabilities> {
    const answers = await Promise.all(this.parts.map((p) => p.lookup(n, handle).catch(() => ({ imessage: null, whatsapp: null }))));
    return { imessage: answers.find((a) => a.imessage !== null)?.imessage ?? null, whatsapp: answers.find((a) => a.whatsapp !== null)?.whatsapp ?? null };
  }

  send: DeviceBackend["send"] = (n, m) => this.by(m.channel).send(n, m);
  reconcile: DeviceBackend["reconcile"] = (n, m) => this.by(m.channel).reconcile(n, m);
  react: DeviceBackend["react"] = (n, t, r, remove) => this.by(t.channel).react(n, t, r, remove);
  edit: DeviceBackend["edit"] = (n, t, text) => this.by(t.channel).edit(n, t, text);
  unsend: DeviceBackend["unsend"] = (n, t) => this.by(t.channel).unsend(n, t);
  markRead: DeviceBackend["markRead"] = (n, c) => this.by(c.channel).markRead(n, c);
  typing: DeviceBackend["typing"] = (n, c, s) => this.by(c.channel).typing(n, c, s);
  createGroup: DeviceBackend["createGroup"] = (n, g) => this.by(g.channel).createGroup(n, g);
  renameGroup: DeviceBackend["renameGroup"] = (n, g, t) => this.by(g.channel).renameGroup(n, g, t);
  addParticipant: DeviceBackend["addParticipant"] = (n, g, h) => this.by(g.channel).addParticipant(n, g, h);
  removeParticipant: DeviceBackend["removeParticipant"] = (n, g, h) => this.by(g.channel).removeParticipant(n, g, h);
}
