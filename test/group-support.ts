/**
 * Shared pieces of the group tests: the messaging app on a simulator that records every group
 * call it gets and can be told to refuse one (a network's "no" the simulator's own rules do not
 * produce, e.g. a rename), a group-creating helper that asserts its 201, and readers of what a
 * refused or offline call must not have written.
 */
import assert from "node:assert/strict";
import type { ActionOutcome, DeviceNumber, GroupCreateOutcome, GroupRef, NewGroup, OutboundMessage, SendOutcome } from "../src/backends/backend.js";
import { Backends } from "../src/backends/registry.js";
import { SimulatorBackend } from "../src/backends/simulator.js";
import type { TestAppOptions } from "./helpers.js";
import { FROM, type Messaging, messagingApp } from "./messaging-helpers.js";

export type GroupOp = "createGroup" | "renameGroup" | "addParticipant" | "removeParticipant";

export interface Chat {
  id: string;
  from_handle: string;
  remote_handle: string | null;
  is_group: boolean;
  title: string | null;
  last_message_at: string | null;
  created_at: string;
  updated_at: string;
  participants: string[];
  channel: string | null;
}

/** The simulator, recording group calls and group sends, refusing the operations in `refuse`. */
export class RecordingSimulator extends SimulatorBackend {
  readonly calls: [GroupOp, unknown][] = [];
  readonly groupSends: OutboundMessage[] = [];
  readonly refuse = new Set<GroupOp>();
  /** The device answers "offline" to every group call (while the number's status says online). */
  unreachable = false;

  private refused(op: GroupOp, arg: unknown): { ok: false; offline: boolean; message: string } | null {
    this.calls.push([op, arg]);
    if (this.unreachable) return { ok: false, offline: true, message: "The device did not answer." };
    return this.refuse.has(op) ? { ok: false, offline: false, message: `The network refused ${op}.` } : null;
  }

  override async createGroup(number: DeviceNumber, group: NewGroup): Promise<GroupCreateOutcome> {
    return this.refused("createGroup", group) ?? super.createGroup(number, group);
  }
  override async renameGroup(number: DeviceNumber, group: GroupRef, title: string | null): Promise<ActionOutcome> {
    return this.refused("renameGroup", title) ?? super.renameGroup(number, group, title);
  }
  override async addParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return this.refused("addParticipant", handle) ?? super.addParticipant(number, group, handle);
  }
  override async removeParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return this.refused("removeParticipant", handle) ?? super.removeParticipant(number, group, handle);
  }
  override async send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
    if (m.group) this.groupSends.push(m);
    return super.send(number, m);
  }

  count(op: GroupOp): number {
    return this.calls.filter(([o]) => o === op).length;
  }
}

export type Counts = Record<"chats" | "messages" | "events" | "idempotency_keys" | "simulator_history" | "simulator_timers", number>;

export interface GroupApp extends Messaging {
  device: RecordingSimulator;
  /** POST /v1/chats from FROM (or `body.from_handle`); asserts 201 and returns the chat. */
  createGroup(body: Record<string, unknown>, key?: string, headers?: Record<string, string>): Promise<Chat>;
  getChat(id: string, key?: string): Promise<Chat>;
  /** Rows a refused or offline call must leave alone. */
  counts(): Promise<Counts>;
}

export async function groupApp(opts: TestAppOptions = {}): Promise<GroupApp> {
  let device: RecordingSimulator | undefined;
  const m = await messagingApp({
    ...opts,
    backends: ({ db, clock, config }) => {
      device = new RecordingSimulator(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS });
      return new Backends(device);
    },
  });
  if (!device) throw new Error("backends factory not called");
  return Object.assign(m, {
    device,
    async createGroup(body: Record<string, unknown>, key = m.acct.testKey, headers: Record<string, string> = {}) {
      const res = await m.t.call(key, "POST", "/v1/chats", { from_handle: FROM, message: { text: "Welcome, all" }, ...body }, headers);
      assert.equal(res.statusCode, 201, res.body);
      return res.json().data as Chat;
    },
    async getChat(id: string, key = m.acct.testKey) {
      const res = await m.t.call(key, "GET", `/v1/chats/${id}`);
      assert.equal(res.statusCode, 200, res.body);
      return res.json().data as Chat;
    },
    async counts() {
      const db = m.t.db.kysely;
      const n = async (table: "chats" | "messages" | "events" | "idempotency_keys" | "simulator_history" | "simulator_timers") =>
        Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n);
      return {
        chats: await n("chats"),
        messages: await n("messages"),
        events: await n("events"),
        idempotency_keys: await n("idempotency_keys"),
        simulator_history: await n("simulator_history"),
        simulator_timers: await n("simulator_timers"),
      };
    },
  });
}

/** `n` distinct plain iMessage members (no scripted behaviour). */
export const members = (n: number, base = 15557710000): string[] => Array.from({ length: n }, (_, i) => `+${base + i + 1}`);
