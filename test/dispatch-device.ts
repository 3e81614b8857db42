// A simulator whose sends and reconciliations can be scripted per message (keyed by the
// message's text), for the ordering and lease tests: refuse (definitely not sent), lose the
// request (ambiguous, not sent), lose the answer (ambiguous, sent), hang after the device took
// it (a worker that dies between the device's ack and the database write), device unreachable
// during reconciliation.
import type { DeviceNumber, OutboundMessage, ReconcileOutcome, SendOutcome } from "../src/backends/backend.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import { Dispatcher } from "../src/dispatch/dispatcher.js";
import { type TestApp, type TestAppOptions, buildTestApp } from "./helpers.js";

export type SendStep =
  | "ok"
  /** Definitely not sent, transient (the device said it is offline). */
  | "refuse"
  /** The request never reached the device, but the call threw: ambiguous. */
  | "lost"
  /** The device sent it, then the answer was lost: ambiguous. */
  | "ack-lost"
  /** The device sent it; the worker then stalls until release() (a crash, for all others see). */
  | "hang";

export class ScriptedSimulator extends SimulatorBackend {
  /** Per message text, the outcomes of its next send attempts (then "ok"). */
  readonly sends = new Map<string, SendStep[]>();
  /** Per message text, how many reconciliations answer "unknown" (device unreachable) first. */
  readonly unknownReconciles = new Map<string, number>();
  /** Every send call, in order: [text, step]. */
  readonly calls: [string, SendStep][] = [];
  readonly reconciles: string[] = [];
  private gates: (() => void)[] = [];

  script(text: string, ...steps: SendStep[]): void {
    this.sends.set(text, steps);
  }

  /** Lets every hung send return (its worker then records, fenced by its stale lease). */
  release(): void {
    for (const open of this.gates.splice(0)) open();
  }

  override async send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
    const key = m.text ?? "";
    const step = this.sends.get(key)?.shift() ?? "ok";
    this.calls.push([key, step]);
    switch (step) {
      case "ok":
        return super.send(number, m);
      case "refuse":
        return { kind: "not_sent", permanent: false, code: "device_offline", message: "The device is offline." };
      case "lost":
        throw new Error("socket hang up (before the device read the request)");
      case "ack-lost":
        await super.send(number, m);
        throw new Error("socket hang up (after the device sent it)");
      case "hang": {
        const outcome = await super.send(number, m);
        await new Promise<void>((resolve) => this.gates.push(resolve));
        return outcome;
      }
    }
  }

  override async reconcile(number: DeviceNumber, m: OutboundMessage): Promise<ReconcileOutcome> {
    const key = m.text ?? "";
    this.reconciles.push(key);
    const unknown = this.unknownReconciles.get(key) ?? 0;
    if (unknown > 0) {
      this.unknownReconciles.set(key, unknown - 1);
      return { kind: "unknown" };
    }
    return super.reconcile(number, m);
  }
}

export interface ScriptedApp extends TestApp {
  device: ScriptedSimulator;
  /** Another dispatcher on the same database and device: a second worker, or the restarted process. */
  worker(): Dispatcher;
}

export async function buildScriptedApp(opts: TestAppOptions = {}): Promise<ScriptedApp> {
  let device: ScriptedSimulator | undefined;
  const t = await buildTestApp({
    ...opts,
    backends: ({ db, clock, config }) => {
      device = new ScriptedSimulator(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS });
      return new Backends(device);
    },
  });
  if (!device) throw new Error("backends factory not called");
  const dev = device;
  const close = t.close;
  return Object.assign(t, {
    device: dev,
    async close() {
      dev.release();
      await close();
    },
    worker: () => new Dispatcher({ db: t.db, clock: t.clock, config: t.config, backends: t.app.services.backends }),
  });
}

/** The dispatcher's claim step alone: the messages it marks `sending` (then "crash" before sending). */
export async function claimOnly(d: Dispatcher, now: number): Promise<{ row: { id: string; lease_token: string | null } }[]> {
  return (d as unknown as { claim(now: number): Promise<{ row: { id: string; lease_token: string | null } }[]> }).claim(now);
}
