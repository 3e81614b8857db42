import type { FastifyBaseLogger } from "fastify";
import { iso, type Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Db } from "../db/client.js";
import type { ChannelName, DeviceLinksTable, NumbersTable } from "../db/schema.js";
import { emitEvents } from "../events/catalog.js";
import { applyDeviceEvents } from "../messages/ingest.js";
import { SERVES, type BackendName } from "../numbers/backend-config.js";
import type { IngestTools, LiveBackend } from "./live.js";
import { type Backends, deviceNumber } from "./registry.js";

export interface MonitorDeps {
  db: Db;
  clock: Clock;
  config: Config;
  backends: Backends;
  /** The tools a back-end's poll uses (ingest-route.ts), bound to a number. */
  tools(number: NumbersTable): IngestTools;
  log?: FastifyBaseLogger | undefined;
}

/**
 * Watches every number served by a real device. Each round, per number and back-end: ask the
 * device whether it is reachable (the number is `online` while any of its back-ends is, and a
 * channel whose back-end is down is listed in `offline_channels`); when it is, make sure its
 * webhooks point at our ingest URL, then poll it for events its webhooks may have missed
 * (BlueBubbles fires them once and never retries). A change of the number's status writes a
 * `number.status` event.
 */
export class DeviceMonitor {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private round: Promise<void> | null = null;

  constructor(private readonly deps: MonitorDeps) {}

  start(): void {
    this.stopped = false;
    const loop = async () => {
      if (this.stopped) return;
      await this.tick().catch((err) => this.deps.log?.error({ err }, "device monitor round failed"));
      if (!this.stopped) this.timer = setTimeout(loop, this.deps.config.DEVICE_POLL_INTERVAL_MS);
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round?.catch(() => undefined);
  }

  /** One round over every number with a real back-end (tests call it on their clock). */
  async tick(): Promise<void> {
    if (this.round) return this.round;
    this.round = this.check().finally(() => {
      this.round = null;
    });
    return this.round;
  }

  private async check(): Promise<void> {
    const numbers = await this.deps.db.kysely.selectFrom("numbers").selectAll().where("backend", "!=", "simulator").execute();
    await Promise.all(numbers.map((n) => this.checkNumber(n)));
  }

  private async checkNumber(number: NumbersTable): Promise<void> {
    const { db, clock } = this.deps;
    const links = new Map((await db.kysely.selectFrom("device_links").selectAll().where("number_id", "=", number.id).execute()).map((l) => [l.backend, l]));
    const down = new Set<ChannelName>();
    let anyOnline = false;
    for (const name of number.backend.split(",")) {
      const backend = this.deps.backends.named(name);
      if (!backend) continue;
      const link = links.get(name) ?? { number_id: number.id, backend: name, status: "online" as const, cursor: 0, subscribed_url: null, checked_at: 0 };
      const next = await this.checkLink(number, backend, link);
      await db.transaction((trx) =>
        trx.insertInto("device_links").values(next).onConflict((oc) => oc.columns(["number_id", "backend"]).doUpdateSet({ status: next.status, cursor: next.cursor, subscribed_url: next.subscribed_url, checked_at: next.checked_at })).execute(),
      );
      if (next.status === "online") anyOnline = true;
      else for (const c of SERVES[name as BackendName] ?? []) down.add(c);
    }
    const status = anyOnline ? "online" : "offline";
    const offline = number.channels.split(",").filter((c) => down.has(c as ChannelName)).join(",");
    if (status === number.status && offline === number.offline_channels) return;
    await db.transaction(async (trx) => {
      await trx.updateTable("numbers").set({ status, offline_channels: offline, updated_at: iso(clock.now()) }).where("id", "=", number.id).execute();
      if (status !== number.status) {
        await emitEvents(trx, clock, [{ accountId: number.account_id, mode: "live", type: "number.status", data: { handle: number.handle, status } }]);
      }
    });
    if (status !== number.status) this.deps.log?.info({ number: number.handle, status }, "number status changed");
  }

  private async checkLink(number: NumbersTable, backend: LiveBackend, link: DeviceLinksTable): Promise<DeviceLinksTable> {
    const dn = deviceNumber(number, "live");
    const now = this.deps.clock.now();
    const next: DeviceLinksTable = { ...link, checked_at: now };
    next.status = await backend.health(dn).catch(() => "offline" as const);
    if (next.status === "offline") return next;
    const url = this.ingestUrlOf(number, backend.name);
    if (url && url !== link.subscribed_url) {
      try {
        await backend.subscribe(dn, url);
        next.subscribed_url = url;
      } catch (err) {
        this.deps.log?.warn({ err, number: number.handle, backend: backend.name }, "could not point the device's webhooks at us");
      }
    }
    if (backend.poll) {
      if (link.cursor === 0) {
        next.cursor = now; // first contact: start from now, not from the device's whole history
      } else {
        try {
          const polled = await backend.poll(dn, link.cursor, this.deps.tools(number));
          if (polled.events.length > 0) await this.deps.db.transaction((trx) => applyDeviceEvents(trx, this.deps.clock, polled.events));
          next.cursor = polled.cursor;
        } catch (err) {
          this.deps.log?.warn({ err, number: number.handle, backend: backend.name }, "device poll failed");
        }
      }
    }
    return next;
  }

  private ingestUrlOf(number: NumbersTable, backend: string): string | null {
    const publicUrl = this.deps.config.PUBLIC_URL;
    const cfg = (JSON.parse(number.backend_config) as Record<string, { ingestSecret?: string } | undefined>)[backend];
    if (!publicUrl || !cfg?.ingestSecret) return null;
    return ingestUrlFor(publicUrl, backend, number.id, cfg.ingestSecret);
  }
}

/** The URL a number's device posts its events to; PUBLIC_URL is how the device reaches us. */
export function ingestUrlFor(publicUrl: string, backend: string, numberId: string, secret: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/ingest/${backend}/${numberId}?secret=${encodeURIComponent(secret)}`;
}
