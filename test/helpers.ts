import { randomBytes } from "node:crypto";
import type { FastifyInstance, LightMyRequestResponse } from "fastify";
import { createAccount, setAccountActive } from "../src/accounts/store.js";
import { type AppDeps, createApp } from "../src/app.js";
import type { Backends } from "../src/backends/registry.js";
import { type Clock, ManualClock } from "../src/clock.js";
import { type Config, defaultConfig } from "../src/config.js";
import { type Db, dropPostgresSchema, openDb } from "../src/db/client.js";
import type { Mode } from "../src/db/schema.js";
import { createKey, revokeKey } from "../src/keys/store.js";
import { addNumber } from "../src/numbers/store.js";

/** Set by `.ci/run` (and by you) to run the storage-touching tests on PostgreSQL. */
export const DATABASE_URL = process.env.DATABASE_URL || undefined;
export const dialectName = DATABASE_URL ? "postgres" : "sqlite";

/** A fresh, migrated database: SQLite in memory, or a new PostgreSQL schema dropped on close. */
export async function freshDb(opts: { dataDir?: string } = {}): Promise<Db & { drop(): Promise<void> }> {
  if (DATABASE_URL) {
    const schema = `t_${randomBytes(6).toString("hex")}`;
    const db = await openDb({ databaseUrl: DATABASE_URL, schema });
    return Object.assign(db, {
      async drop() {
        await db.close();
        await dropPostgresSchema(DATABASE_URL as string, schema);
      },
    });
  }
  const db = await openDb({ dataDir: opts.dataDir ?? ":memory:" });
  return Object.assign(db, { drop: () => db.close() });
}

export interface TestApp {
  app: FastifyInstance;
  db: Db;
  clock: ManualClock;
  config: Config;
  close(): Promise<void>;
  /** An active account with a test and a live key. */
  seedAccount(name?: string): Promise<SeededAccount>;
  newKey(accountId: string, mode: Mode, rateLimit?: number): Promise<string>;
  revoke(keyId: string): Promise<void>;
  deactivate(accountId: string): Promise<void>;
  addNumber(accountId: string, handle: string, channels?: string, label?: string): Promise<void>;
  /** app.inject with a Bearer key. */
  call(key: string | null, method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
}

export interface SeededAccount {
  id: string;
  testKey: string;
  testKeyId: string;
  liveKey: string;
  liveKeyId: string;
}

export interface TestAppOptions {
  config?: Partial<Config>;
  clock?: ManualClock;
  extraRoutes?: AppDeps["extraRoutes"];
  logger?: AppDeps["logger"];
  limiter?: AppDeps["limiter"];
  /** Device back-ends built on the app's database and clock (default: the simulator). */
  backends?: (deps: { db: Db; clock: Clock; config: Config }) => Backends;
  /** An already-open database (e.g. to boot a second app on it: a restart); close() closes it, never drops it. */
  db?: Db;
  /** DNS for webhook URLs (tests never reach the internet). */
  webhookResolver?: AppDeps["webhookResolver"];
  /** Jitter source of the webhook retry schedule. */
  webhookRandom?: AppDeps["webhookRandom"];
}

/** Tests never reach the internet: unless a test injects its own, webhook host names do not resolve. */
const noDns: NonNullable<AppDeps["webhookResolver"]> = async (hostname) => {
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
};

/** The real app on a real database with a manual clock: what every HTTP test boots. */
export async function buildTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const clock = opts.clock ?? new ManualClock();
  const config = defaultConfig({ LOG_LEVEL: "silent", IDEMPOTENCY_WAIT_MS: 0, ...opts.config });
  const given = opts.db;
  const db: Db & { drop(): Promise<void> } = given ? { ...given, drop: () => given.close() } : await freshDb();
  const app = await createApp({
    config,
    db,
    clock,
    logger: opts.logger ?? false,
    ...(opts.extraRoutes ? { extraRoutes: opts.extraRoutes } : {}),
    ...(opts.limiter ? { limiter: opts.limiter } : {}),
    ...(opts.backends ? { backends: opts.backends({ db, clock, config }) } : {}),
    webhookResolver: opts.webhookResolver ?? noDns,
    ...(opts.webhookRandom ? { webhookRandom: opts.webhookRandom } : {}),
  });
  await app.ready();
  const newKey = async (accountId: string, mode: Mode, rateLimit?: number) => (await createKey(db.kysely, clock, { accountId, mode, rateLimit })).key;
  return {
    app,
    db,
    clock,
    config,
    async close() {
      await app.close();
      await db.drop();
    },
    async seedAccount(name = "Acme") {
      const account = await createAccount(db.kysely, clock, name);
      const test = await createKey(db.kysely, clock, { accountId: account.id, mode: "test" });
      const live = await createKey(db.kysely, clock, { accountId: account.id, mode: "live" });
      return { id: account.id, testKey: test.key, testKeyId: test.id, liveKey: live.key, liveKeyId: live.id };
    },
    newKey,
    async revoke(keyId) {
      await revokeKey(db.kysely, clock, keyId);
    },
    async deactivate(accountId) {
      await setAccountActive(db.kysely, clock, accountId, false);
    },
    async addNumber(accountId, handle, channels = "imessage,sms", label) {
      await addNumber(db.kysely, clock, { accountId, handle, channels, backend: "simulator", label });
    },
    call(key, method, url, body, headers = {}) {
      const h: Record<string, string> = { ...headers };
      if (key) h.authorization = `Bearer ${key}`;
      const m = method as "GET";
      if (body === undefined) return app.inject({ method: m, url, headers: h });
      if (typeof body === "string") {
        h["content-type"] ??= "application/json";
        return app.inject({ method: m, url, headers: h, payload: body });
      }
      return app.inject({ method: m, url, headers: h, payload: body as object });
    },
  };
}
