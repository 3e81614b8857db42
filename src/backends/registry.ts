import type { ChannelName, Mode, NumbersTable } from "../db/schema.js";
import type { DeviceBackend, DeviceNumber } from "./backend.js";
import type { SimulatorBackend } from "./simulator.js";

/**
 * Which device back-end serves a number. Test mode always runs through the simulator, whatever
 * the number's back-end; live mode uses the back-end the operator configured.
 */
export class Backends {
  constructor(readonly simulator: SimulatorBackend, private readonly live: Record<string, DeviceBackend> = {}) {}

  for(number: Pick<NumbersTable, "backend">, mode: Mode): DeviceBackend {
    if (mode === "test" || number.backend === "simulator") return this.simulator;
    const backend = this.live[number.backend];
    if (!backend) throw new Error(`no device back-end named ${number.backend}`);
    return backend;
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
