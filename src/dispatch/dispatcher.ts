import type { FastifyBaseLogger } from "fastify";
import { throttledErrorLog } from "../log-throttle.js";
import { iso, type Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Db, Tx } from "../db/client.js";
import type { ChannelName, MessagesTable, NumbersTable } from "../db/schema.js";
import { emitEvents, type EventRow } from "../events/catalog.js";
import { isPhoneHandle } from "../handles.js";
import { sql } from "kysely";
import { changed, preparedQuery } from "../db/prepared.js";
import { timeOfUuidv7, uuidv7 } from "../ids.js";
import type { OutboundMessage, ReconcileOutcome, SendOutcome } from "../backends/backend.js";
import { type Backends, deviceNumber } from "../backends/registry.js";
import { applyDeviceEvents } from "../messages/ingest.js";
import { toMessage } from "../messages/store.js";
import { prepareOutboundMedia } from "../attachments/outbound.js";
import { attachmentsByMessage } from "../attachments/store.js";
import { adjustPending, lockLane, paceInterval, saveLane } from "./lanes.js";
import { cachedLookup, chooseChannel } from "./routing.js";
import { addressedForDevice, isGroupMessage } from "../chats/group-send.js";

export interface DispatcherDeps {
  db: Db;
  clock: Clock;
  config: Config;
  backends: Backends;
  log?: FastifyBaseLogger | undefined;
}

interface Claimed {
  row: MessagesTable;
  number: NumbersTable;
}

type Outcome = SendOutcome | ReconcileOutcome | { kind: "unroutable" };

// The outcome every healthy send records: compiled once (see db/prepared.ts).
const markSent = preparedQuery(
  (db, channel: ChannelName | null, sentAt: string, deviceId: string, updatedAt: string, id: string, leaseToken: string) =>
    db
      .updateTable("messages")
      .set({ status: sql<"sent">`'sent'`, channel, sent_at: sentAt, device_message_id: deviceId, lease_token: sql<null>`null`, lease_until: sql<null>`null`, updated_at: updatedAt })
      .where("id", "=", id)
      .where("lease_token", "=", leaseToken)
      .where("status", "=", sql<"sending">`'sending'`),
  ["sms" as ChannelName, ":sent", ":device", ":updated", ":id", ":lease"],
);
const learnChannel = preparedQuery(
  (db, channel: ChannelName, chatId: string) => db.updateTable("chats").set({ channel }).where("id", "=", chatId).where("channel", "is", null),
  ["sms" as ChannelName, ":chat"],
);

/** Transient device errors back off exponentially, with ±20 % jitter, up to 15 minutes. */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(2 ** Math.max(0, attempt - 1) * 5_000, 15 * 60_000);
  return Math.round(base * (0.8 + 0.4 * random()));
}

/**
 * The outbound engine. Each tick, in order: scheduled messages that are due join their lane's
 * queue; queued messages past their validity window fail with `expired`; sends whose lease ran
 * out (a crashed or stuck worker) are reconciled against the device before anything is resent;
 * then every lane whose pace allows gives up its oldest message, which is marked `sending` — the
 * recovery point, committed before the device is called — and sent; finally device signals that
 * are due (the simulator's deliveries, reads and replies) are applied.
 *
 * Every state change is written with its event rows in one transaction, and only by the holder
 * of the message's lease token, so a worker that lost its lease cannot move a message.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = true;
  private ticking: Promise<number> | null = null;
  /** Sends that outlived their tick (a slow device): each records its own outcome when it answers. */
  private readonly late = new Set<Promise<void>>();

  private readonly logLoopError = throttledErrorLog();

  constructor(private readonly deps: DispatcherDeps) {}

  /** One pass; returns how much work it did (0 = idle). */
  async tick(): Promise<number> {
    if (this.ticking) return this.ticking;
    this.ticking = this.pass().finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  /** Tests: tick until nothing is left to do at the current clock time. */
  async runUntilIdle(maxTicks = 100_000): Promise<void> {
    for (let i = 0; i < maxTicks; i++) if ((await this.tick()) === 0) return;
    throw new Error("dispatcher did not become idle");
  }

  /** New work arrived: run the next tick now instead of after the idle interval. */
  wake(): void {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.loop, 0);
  }

  start(): void {
    this.stopped = false;
    this.timer = setTimeout(this.loop, 0);
  }

  private readonly loop = async (): Promise<void> => {
    if (this.stopped) return;
    this.running = true;
    let work = 0;
    try {
      work = await this.tick();
    } catch (err) {
      this.logLoopError(this.deps.log, err, "dispatcher tick failed");
    }
    this.running = false;
    if (!this.stopped) this.timer = setTimeout(this.loop, work > 0 ? 0 : this.deps.config.DISPATCH_INTERVAL_MS);
  };

  /** Stops claiming new work; an in-flight tick and late sends finish (their leases protect the rest). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.running && this.ticking) await this.ticking.catch(() => 0);
    await this.settled();
  }

  /** Waits for sends still waiting on a slow device (each is bounded by DEVICE_SEND_TIMEOUT_MS). */
  async settled(): Promise<void> {
    while (this.late.size > 0) await Promise.all([...this.late]);
  }

  private async pass(): Promise<number> {
    const now = this.deps.clock.now();
    // Steps asked for together share one commit on SQLite (group commit runs them in order):
    // promotion before expiry; claims and due device signals side by side.
    const [promoted, expired] = await Promise.all([this.promoteScheduled(now), this.expire(now)]);
    const recovered = await this.recover(now);
    const [dispatched, drained] = await Promise.all([this.dispatch(now), this.drainDevices(now)]);
    return promoted + expired + recovered + dispatched + drained;
  }

  private get db() {
    return this.deps.db;
  }

  private async promoteScheduled(now: number): Promise<number> {
    const nowIso = iso(now);
    return this.db.transaction(async (trx) => {
      const due = await trx
        .selectFrom("messages")
        .select(["id", "lane_id", "number_id", "mode"])
        .where("status", "=", "scheduled")
        .where("send_at", "<=", nowIso)
        .orderBy("send_at")
        .limit(this.deps.config.DISPATCH_BATCH)
        .execute();
      for (const m of due) {
        await trx.updateTable("messages").set({ status: "queued", queue_key: uuidv7(now), updated_at: nowIso }).where("id", "=", m.id).execute();
        await adjustPending(trx, this.db, m.lane_id, m.number_id, m.mode, +1);
      }
      return due.length;
    });
  }

  private async expire(now: number): Promise<number> {
    return this.db.transaction(async (trx) => {
      const rows = await trx
        .selectFrom("messages")
        .selectAll()
        .where("status", "=", "queued")
        .where("expires_at", "<=", now)
        .limit(this.deps.config.DISPATCH_BATCH)
        .execute();
      const events: EventRow[] = [];
      const attachments = await attachmentsByMessage(trx, rows, "event");
      for (const row of rows) {
        const set = { status: "failed" as const, error_code: "expired", error_message: "The message could not be sent within its validity window.", updated_at: iso(now) };
        await trx.updateTable("messages").set(set).where("id", "=", row.id).where("status", "=", "queued").execute();
        await adjustPending(trx, this.db, row.lane_id, row.number_id, row.mode, -1);
        events.push({ accountId: row.account_id, mode: row.mode, type: "message.failed", data: toMessage({ ...row, ...set }, [], attachments.get(row.id)) });
      }
      await emitEvents(trx, this.deps.clock, events);
      return rows.length;
    });
  }

  /** Sends whose lease expired: ask the device whether they went out before resending. */
  private async recover(now: number): Promise<number> {
    const stale = await this.db.kysely
      .selectFrom("messages")
      .innerJoin("numbers", "numbers.id", "messages.number_id")
      .selectAll("messages")
      .select(["numbers.handle as n_handle", "numbers.channels as n_channels", "numbers.backend as n_backend", "numbers.backend_config as n_config", "numbers.pace_per_minute as n_pace"])
      .where("messages.status", "=", "sending")
      .where("messages.lease_until", "<=", now)
      .limit(this.deps.config.DISPATCH_BATCH)
      .execute();
    if (stale.length === 0) return 0;
    const results: [Claimed, Outcome][] = [];
    for (const s of stale) {
      const claimed = this.claimedOf(s);
      let outcome: Outcome;
      try {
        // The channel was chosen in memory by the attempt that died: choose it again (the
        // lookup is cached), so the device is asked about the right chat and a message found
        // there is recorded with the channel it went out on.
        const channel = await this.route(claimed);
        if (channel === null) {
          outcome = { kind: "absent" }; // unroutable: send() never reached the device
        } else {
          claimed.row.channel = channel;
          const backend = this.deps.backends.for(claimed.number, claimed.row.mode);
          const out = await addressedForDevice(this.db.kysely, claimed.row, this.outbound(claimed.row, channel));
          // When the unresolved attempt began: its lease token is a uuidv7 made at the claim.
          out.attemptedAt = timeOfUuidv7(claimed.row.lease_token) ?? Date.parse(claimed.row.updated_at);
          // Devices without a client id for sends are searched by content: an identical message
          // that is already ours is not this one.
          out.isKnownDeviceId = async (deviceId) =>
            (await this.db.kysely.selectFrom("messages").select("id").where("number_id", "=", claimed.number.id).where("device_message_id", "=", deviceId).executeTakeFirst()) !== undefined;
          outcome = await backend.reconcile(deviceNumber(claimed.number, claimed.row.mode), out);
        }
      } catch (err) {
        // Cannot ask the device now: stay unresolved and ask again a lease later.
        this.deps.log?.warn({ err, message_id: claimed.row.id }, "device reconcile threw");
        outcome = { kind: "unknown" };
      }
      results.push([claimed, outcome]);
    }
    await this.record(now, results);
    return stale.length;
  }

  private claimedOf(s: MessagesTable & { n_handle: string; n_channels: string; n_backend: string; n_config: string; n_pace: number | null }): Claimed {
    const { n_handle, n_channels, n_backend, n_config, n_pace, ...row } = s;
    return {
      row,
      number: { id: row.number_id, account_id: row.account_id, handle: n_handle, channels: n_channels, backend: n_backend, backend_config: n_config, pace_per_minute: n_pace } as NumbersTable,
    };
  }

  /**
   * Claims the next message of every lane whose pace allows, then sends them. The outcomes that
   * arrive within DISPATCH_SEND_WAIT_MS are recorded together; a send still waiting on its device
   * after that (a BlueBubbles send can block for minutes) records itself when it answers, so one
   * slow device never holds up the other lanes. Its own lane stays blocked meanwhile: it has a
   * message `sending`.
   */
  private async dispatch(now: number): Promise<number> {
    const claimed = await this.claim(now);
    if (claimed.length === 0) return 0;
    const early: [Claimed, Outcome][] = [];
    let collecting = true;
    const sends = Promise.all(
      claimed.map(async (c) => {
        const outcome = await this.send(c);
        if (collecting) early.push([c, outcome]);
        else await this.record(this.deps.clock.now(), [[c, outcome]]).catch((err) => this.deps.log?.error({ err, message_id: c.row.id }, "recording a late send failed"));
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const allAnswered = await Promise.race([sends.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), this.deps.config.DISPATCH_SEND_WAIT_MS)))]);
    clearTimeout(timer);
    collecting = false;
    if (!allAnswered) {
      const late: Promise<void> = sends.then(() => undefined).finally(() => this.late.delete(late));
      this.late.add(late);
    }
    if (early.length > 0) await this.record(this.deps.clock.now(), early);
    return claimed.length;
  }

  private async claim(now: number): Promise<Claimed[]> {
    const { config } = this.deps;
    return this.db.transaction(async (trx) => {
      // One send in flight per lane: while a message of the lane is `sending` (being sent, or
      // unresolved until reconciled), no later message of the lane may overtake it.
      let q = trx
        .selectFrom("sender_lanes")
        .selectAll()
        .where("ready_at", "<=", now)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom("messages").select("messages.id").whereRef("messages.lane_id", "=", "sender_lanes.id").where("messages.status", "=", "sending"))),
        )
        .orderBy("ready_at")
        .limit(config.DISPATCH_BATCH);
      if (this.db.dialect === "postgres") q = q.forUpdate().skipLocked();
      const lanes = await q.execute();
      if (lanes.length === 0) return [];
      const numbers = new Map(
        (await trx.selectFrom("numbers").selectAll().where("id", "in", [...new Set(lanes.map((l) => l.number_id))]).execute()).map((n) => [n.id, n]),
      );
      // The head of every lane's queue in one query, and all of them leased in one update: a
      // claim's cost does not grow with the number of lanes served.
      const heads = await trx
        .selectFrom("messages")
        .selectAll()
        .where("id", "in", (eb) =>
          eb
            .selectFrom("sender_lanes as l")
            .select((sub) =>
              sub
                .selectFrom("messages as q")
                .select("q.id")
                .whereRef("q.lane_id", "=", "l.id")
                .where("q.status", "=", "queued")
                .orderBy("q.queue_key")
                .limit(1)
                .as("head"),
            )
            .where("l.id", "in", lanes.map((l) => l.id)),
        )
        .execute();
      const headOf = new Map(heads.map((m) => [m.lane_id, m]));
      const lease = { status: "sending" as const, lease_token: uuidv7(now), lease_until: now + config.DISPATCH_LEASE_MS, updated_at: iso(now) };
      // Guarded: a cancel or edit that committed since the read wins, and its lane skips a turn.
      const taken = heads.length === 0 ? [] : await trx
        .updateTable("messages")
        .set((eb) => ({ ...lease, attempts: eb("attempts", "+", 1) }))
        .where("id", "in", heads.map((m) => m.id))
        .where("status", "=", "queued")
        .returning("id")
        .execute();
      const leased = new Set(taken.map((r) => r.id));
      const claimed: Claimed[] = [];
      for (const lane of lanes) {
        const number = numbers.get(lane.number_id);
        const row = headOf.get(lane.id);
        if (!number || !row) {
          lane.pending = 0; // self-heal a counter that drifted
          await saveLane(trx, lane);
          continue;
        }
        if (!leased.has(row.id)) continue;
        lane.tat = Math.max(lane.tat, now) + paceInterval(number.pace_per_minute ?? config.DEFAULT_PACE_PER_MINUTE);
        lane.pending -= 1;
        await saveLane(trx, lane);
        claimed.push({ row: { ...row, ...lease, attempts: row.attempts + 1 }, number });
      }
      return claimed;
    });
  }

  private outbound(row: MessagesTable, channel: MessagesTable["channel"] & string): OutboundMessage {
    return { id: row.id, to: row.to_handle, channel, text: row.text, effect: row.effect, replyToDeviceId: null, voiceMemo: row.voice_memo === 1 };
  }

  /** The message's channel: its own once routed, else the number's best for the recipient. */
  private async route({ row, number }: Claimed): Promise<ChannelName | null> {
    if (row.channel) return row.channel;
    const backend = this.deps.backends.for(number, row.mode);
    const dn = deviceNumber(number, row.mode);
    const caps = row.forced_channel
      ? { imessage: null, whatsapp: null }
      : await cachedLookup(this.db.kysely, this.deps.clock, this.deps.config.LOOKUP_CACHE_HOURS, backend, dn, row.to_handle);
    const channel = chooseChannel(dn.channels, caps, row.forced_channel);
    // SMS and WhatsApp reach phone numbers only; a group message goes on its group's (forced) channel.
    return channel !== "imessage" && channel !== null && !isPhoneHandle(row.to_handle) && !isGroupMessage(row) ? null : channel;
  }

  private async send({ row, number }: Claimed): Promise<Outcome> {
    try {
      const backend = this.deps.backends.for(number, row.mode);
      const dn = deviceNumber(number, row.mode);
      const known = row.mode === "test" ? number.test_status : number.status;
      if (known) dn.knownStatus = known; // read by this tick's claim
      let channel: ChannelName | null;
      try {
        channel = await this.route({ row, number });
      } catch (err) {
        // The lookup could not reach the device: nothing was sent, so this is a transient refusal.
        this.deps.log?.warn({ err, message_id: row.id }, "device lookup failed");
        return { kind: "not_sent", permanent: false, code: "device_offline", message: "The device could not be asked which channel reaches the recipient." };
      }
      if (!channel) return { kind: "unroutable" };
      row.channel = channel;
      const out = await addressedForDevice(this.db.kysely, row, this.outbound(row, channel));
      if (row.attachment_count) {
        // Fitted to the channel just chosen (images transcoded); what cannot fit fails for good.
        const media = await prepareOutboundMedia(this.db.kysely, row, channel);
        if (!media.ok) return { kind: "not_sent", permanent: true, code: media.code, message: media.message };
        out.attachments = media.attachments;
      }
      if (row.reply_to) {
        const target = await this.db.kysely.selectFrom("messages").select("device_message_id").where("id", "=", row.reply_to).executeTakeFirst();
        out.replyToDeviceId = target?.device_message_id ?? null;
      }
      return await backend.send(dn, out);
    } catch (err) {
      // A back-end that throws has not told us what happened: treat it as ambiguous.
      this.deps.log?.warn({ err, message_id: row.id }, "device send threw");
      return { kind: "ambiguous", message: "The device did not answer." };
    }
  }

  /** Writes the outcomes of sends and reconciliations, fenced by lease token, with their events. */
  private async record(now: number, results: [Claimed, Outcome][]): Promise<void> {
    const nowIso = iso(now);
    await this.db.transaction(async (trx) => {
      const events: EventRow[] = [];
      const attachments = await attachmentsByMessage(trx, results.map(([c]) => c.row), "event");
      for (const [{ row, number }, outcome] of results) {
        const fence = (set: Partial<MessagesTable>) =>
          trx.updateTable("messages").set({ ...set, updated_at: nowIso }).where("id", "=", row.id).where("lease_token", "=", row.lease_token).where("status", "=", "sending").executeTakeFirst();
        const event = (type: EventRow["type"], set: Partial<MessagesTable>) =>
          events.push({ accountId: row.account_id, mode: row.mode, type, data: toMessage({ ...row, ...set, updated_at: nowIso }, [], attachments.get(row.id)) });
        switch (outcome.kind) {
          case "sent": {
            const set = { status: "sent" as const, channel: row.channel, sent_at: nowIso, device_message_id: outcome.deviceId, lease_token: null, lease_until: null };
            if (changed(await markSent(trx, row.channel, nowIso, outcome.deviceId, nowIso, row.id, row.lease_token ?? "")) === 1) {
              event("message.sent", set);
              // A chat started by an outbound message learns its channel from its first send.
              if (row.channel) await learnChannel(trx, row.channel, row.chat_id);
            }
            break;
          }
          case "unroutable":
          case "not_sent": {
            const permanent = outcome.kind === "unroutable" || outcome.permanent;
            if (permanent) {
              const set = {
                status: "failed" as const,
                channel: row.channel,
                error_code: outcome.kind === "unroutable" ? "undeliverable" : outcome.code,
                error_message: outcome.kind === "unroutable" ? "No channel of this number can reach the recipient." : outcome.message,
                lease_token: null,
                lease_until: null,
              };
              if (Number((await fence(set)).numUpdatedRows) === 1) event("message.failed", set);
            } else if (Number((await fence({ status: "queued", lease_token: null, lease_until: null })).numUpdatedRows) === 1) {
              // Back in its place at the head of the lane; the lane waits, so nothing overtakes it.
              const lane = await lockLane(trx, this.db, row.lane_id, number.id, row.mode);
              lane.pending += 1;
              lane.paused_until = Math.max(lane.paused_until, now + backoffMs(row.attempts));
              await saveLane(trx, lane);
            }
            break;
          }
          case "ambiguous":
            // Leave it `sending` with an expired lease: the next tick reconciles it.
            await fence({ lease_until: now });
            break;
          case "absent":
            if (Number((await fence({ status: "queued", lease_token: null, lease_until: null })).numUpdatedRows) === 1) {
              // Back at the head of its lane. The first time at once (a crashed worker's send);
              // after that with a back-off, so a device that keeps answering errors without
              // sending is not resent to at the full pace.
              const lane = await lockLane(trx, this.db, row.lane_id, number.id, row.mode);
              lane.pending += 1;
              if (row.attempts > 1) lane.paused_until = Math.max(lane.paused_until, now + backoffMs(row.attempts - 1));
              await saveLane(trx, lane);
            }
            break;
          case "unknown":
            if (row.expires_at !== null && now >= row.expires_at) {
              // Still unresolvable at the end of its validity window: give up, like any message
              // that could not be sent in time (every accepted message reaches a terminal state).
              const set = { status: "failed" as const, error_code: "expired", error_message: "The message could not be confirmed as sent within its validity window.", lease_token: null, lease_until: null };
              if (Number((await fence(set)).numUpdatedRows) === 1) event("message.failed", set);
            } else {
              await fence({ lease_until: now + this.deps.config.DISPATCH_LEASE_MS });
            }
            break;
        }
      }
      await emitEvents(trx, this.deps.clock, events);
    });
  }

  private async drainDevices(now: number): Promise<number> {
    return this.db.transaction(async (trx: Tx) => {
      const events = await this.deps.backends.simulator.drain(trx, now, this.deps.config.DISPATCH_BATCH);
      return applyDeviceEvents(trx, this.deps.clock, events);
    });
  }
}
