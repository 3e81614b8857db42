import type { Clock } from "../clock.js";
import type { Db, Tx } from "../db/client.js";
import type { ChannelName, Mode } from "../db/schema.js";
import { sql } from "kysely";
import { prepared, preparedInsert, preparedQuery } from "../db/prepared.js";
import { uuidv7 } from "../ids.js";
import type { DeviceEvent } from "../messages/ingest.js";
import { readMedia, recordMedia } from "./simulator-media.js";
import type { ActionOutcome, Capabilities, DeviceBackend, DeviceNumber, GroupCreateOutcome, GroupRef, NewGroup, OutboundMessage, ReconcileOutcome, SendOutcome } from "./backend.js";
import { addToSimulatedGroup, createSimulatedGroup, fireInGroup, removeFromSimulatedGroup, renameSimulatedGroup } from "./simulator-groups.js";

/** The simulator's scripted recipients (api.md §5, Test helpers). */
export const SIM = {
  smsOnly: "+15550000001",
  fails: "+15550000002",
  neverDelivered: "+15550000003",
  echoes: "+15550000004",
  reactsLove: "+15550000005",
  typesThenReplies: "+15550000006",
} as const;

export interface TimerPayload {
  deviceId: string;
  mode: Mode;
  number: string;
  to: string;
  channel: ChannelName;
  text: string | null;
  /** Set for a group message (simulator-groups.ts). */
  group?: GroupRef;
}

export type TimerKind = "deliver" | "read" | "reply" | "react" | "typing";

const statusOf = prepared((db, id: string) => db.selectFrom("numbers").select(["status", "test_status"]).where("id", "=", id), [":id"]);
const recordSend = preparedQuery(
  (db, messageId: string, from: string, to: string, channel: string, text: string | null, sentAt: number) =>
    db
      .insertInto("simulator_history")
      .values({ message_id: messageId, from_handle: from, to_handle: to, channel, text, sent_at: sentAt, sends: sql<number>`1` })
      .onConflict((oc) => oc.column("message_id").doUpdateSet((eb) => ({ sends: eb("simulator_history.sends", "+", sql<number>`1`) })))
      .returning("sends"),
  [":id", ":from", ":to", ":channel", ":text", 1],
);
const insertTimer = preparedInsert("simulator_timers", ["id", "due_at", "kind", "payload"]);

/**
 * An in-process device. What it "sends" goes into a durable history (simulator_history), which
 * its reconcile reads, exactly as a real device's history would be read; deliveries, reads and
 * scripted replies are durable timers (simulator_timers) that the dispatcher drains as time
 * passes on the injected clock. Its online/offline state is the number's status column.
 */
export class SimulatorBackend implements DeviceBackend {
  readonly name = "simulator";

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly delays: { deliveryMs: number; readMs: number },
  ) {}

  async health(number: DeviceNumber): Promise<"online" | "offline"> {
    if (number.knownStatus) return number.knownStatus; // its state is that column, just read
    const [row] = await statusOf(this.db.kysely, number.id);
    if (!row) return "offline";
    return number.mode === "test" ? row.test_status : row.status;
  }

  async lookup(number: DeviceNumber, handle: string): Promise<Capabilities> {
    return {
      imessage: number.channels.includes("imessage") || number.channels.includes("sms") ? handle !== SIM.smsOnly : null,
      whatsapp: number.channels.includes("whatsapp") ? true : null,
    };
  }

  async send(number: DeviceNumber, m: OutboundMessage): Promise<SendOutcome> {
    if ((await this.health(number)) === "offline") return { kind: "not_sent", permanent: false, code: "device_offline", message: "The device is offline." };
    if (m.to === SIM.fails) return { kind: "not_sent", permanent: true, code: "undeliverable", message: "The recipient cannot receive messages." };
    const now = this.clock.now();
    const deviceId = `sim-${m.id}`;
    // The files are read before the transaction, as a device uploads them before it sends.
    const media = await readMedia(m.id, m.attachments);
    await this.db.transaction(async (trx) => {
      // A second send of one message counts up `sends`: the duplicate the crash tests look for.
      const [entry] = (await recordSend(trx, m.id, number.handle, m.to, m.channel, m.text, now)).rows;
      if (entry?.sends !== 1) return;
      await recordMedia(trx, media);
      if (m.to !== SIM.neverDelivered) {
        const group = m.group ? { group: m.group } : {};
        await this.schedule(trx, now + this.delays.deliveryMs, "deliver", { deviceId, mode: number.mode, number: number.handle, to: m.to, channel: m.channel, text: m.text, ...group });
      }
    });
    return { kind: "sent", deviceId };
  }

  async reconcile(_number: DeviceNumber, m: OutboundMessage): Promise<ReconcileOutcome> {
    const seen = await this.db.kysely.selectFrom("simulator_history").select("message_id").where("message_id", "=", m.id).executeTakeFirst();
    return seen ? { kind: "sent", deviceId: `sim-${m.id}` } : { kind: "absent" };
  }

  private async action(number: DeviceNumber): Promise<ActionOutcome> {
    return (await this.health(number)) === "online" ? { ok: true } : { ok: false, offline: true, message: "The device is offline." };
  }

  react = (number: DeviceNumber) => this.action(number);
  edit = (number: DeviceNumber) => this.action(number);
  unsend = (number: DeviceNumber) => this.action(number);
  markRead = (number: DeviceNumber) => this.action(number);
  typing = (number: DeviceNumber) => this.action(number);

  // Groups: the network's rules live in simulator-groups.ts. Methods, not arrow fields, so a
  // test's subclass can override them.
  createGroup(number: DeviceNumber, group: NewGroup): Promise<GroupCreateOutcome> {
    return createSimulatedGroup(this, number, group);
  }
  renameGroup(number: DeviceNumber, _group: GroupRef, _title: string | null): Promise<ActionOutcome> {
    return renameSimulatedGroup(this, number);
  }
  addParticipant(number: DeviceNumber, group: GroupRef, handle: string): Promise<ActionOutcome> {
    return addToSimulatedGroup(this, number, group, handle);
  }
  removeParticipant(number: DeviceNumber, group: GroupRef, _handle: string): Promise<ActionOutcome> {
    return removeFromSimulatedGroup(this, number, group);
  }

  /** Fires the timers that are due, in the caller's transaction, returning what the device saw. */
  async drain(trx: Tx, now: number, limit: number): Promise<DeviceEvent[]> {
    const due = await trx.selectFrom("simulator_timers").selectAll().where("due_at", "<=", now).orderBy("due_at").orderBy("id").limit(limit).execute();
    if (due.length === 0) return [];
    await trx.deleteFrom("simulator_timers").where("id", "in", due.map((t) => t.id)).execute();
    const events: DeviceEvent[] = [];
    for (const t of due) events.push(...(await this.fire(trx, t.kind as TimerKind, JSON.parse(t.payload) as TimerPayload, t.due_at)));
    return events;
  }

  private async fire(trx: Tx, kind: TimerKind, p: TimerPayload, at: number): Promise<DeviceEvent[]> {
    if (p.group) return fireInGroup(p.group, kind, p, at, (payload) => this.schedule(trx, at + this.delays.readMs, "reply", payload));
    const from = { numberHandle: p.number, mode: p.mode, from: p.to, at };
    switch (kind) {
      case "deliver":
        if (p.channel === "sms" || p.to === SIM.smsOnly) {
          // SMS has no read receipts.
        } else {
          await this.schedule(trx, at + this.delays.readMs, "read", p);
        }
        if (p.to === SIM.echoes) await this.schedule(trx, at + this.delays.readMs, "reply", p);
        if (p.to === SIM.typesThenReplies) await this.schedule(trx, at + this.delays.readMs, "typing", p);
        return [{ kind: "delivered", deviceId: p.deviceId, at }];
      case "read":
        if (p.to === SIM.reactsLove) await this.schedule(trx, at + this.delays.readMs, "react", p);
        return [{ kind: "read", deviceId: p.deviceId, at }];
      case "typing":
        await this.schedule(trx, at + this.delays.readMs, "reply", p);
        return [{ kind: "typing", ...from, state: "start" }];
      case "reply":
        return [
          ...(p.to === SIM.typesThenReplies ? [{ kind: "typing" as const, ...from, state: "stop" as const }] : []),
          { kind: "received", ...from, text: p.text, channel: p.channel, deviceId: `sim-in-${uuidv7(at)}` },
        ];
      case "react":
        return [{ kind: "reaction", ...from, targetDeviceId: p.deviceId, reaction: "love", remove: false }];
    }
  }

  private async schedule(trx: Tx, dueAt: number, kind: TimerKind, payload: TimerPayload): Promise<void> {
    await insertTimer(trx, { id: uuidv7(dueAt), due_at: dueAt, kind, payload: JSON.stringify(payload) });
  }
}
