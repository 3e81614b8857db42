/**
 * One benchmark server per process: `node --import tsx bench/server.ts <kind>`. Prints one JSON
 * line `{ port, fixture }` once listening on 127.0.0.1, and exits cleanly on SIGTERM/SIGINT or
 * when the bench that started it goes away (its IPC channel closes), so `--cpu-prof` can write
 * its profile.
 *
 * Storage for "app" comes from the parent (bench/lib.ts owns creating and removing it):
 * BENCH_DB=sqlite with BENCH_DATA_DIR, or BENCH_DB=postgres with BENCH_DATABASE_URL + BENCH_SCHEMA.
 */
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import multipart from "@fastify/multipart";
import fastify, { type FastifyInstance } from "fastify";
import { createAccount } from "../src/accounts/store.js";
import { createApp } from "../src/app.js";
import { systemClock } from "../src/clock.js";
import { defaultConfig } from "../src/config.js";
import { openDb, walSync } from "../src/db/client.js";
import SQLite from "better-sqlite3";
import { createKey } from "../src/keys/store.js";
import { addNumber } from "../src/numbers/store.js";
import { uuidv7 } from "../src/ids.js";
import type { Fixture } from "./lib.js";

interface Booted {
  app: FastifyInstance;
  fixture: Fixture;
  close(): Promise<void>;
}

const servers: Record<string, () => Promise<Booted>> = {
  /** A plain Fastify with one small JSON route: the ceiling we compare against. */
  async bare() {
    const app = fastify({ logger: false });
    app.get("/", async () => ({ hello: "world" }));
    // The baseline of the send path: parse a JSON body, answer 202 with a small JSON object.
    app.post("/", async (req, reply) => reply.code(202).send({ data: { received: req.body }, request_id: "req_bench" }));
    return { app, fixture: {}, close: async () => {} };
  },

  /**
   * The floor of any upload route (bench/uploads.ts): Fastify + @fastify/multipart streaming each
   * file part to disk with fsync, and nothing else — no auth, type detection or database.
   */
  async "bare-upload"() {
    const dir = env("BENCH_DATA_DIR");
    const app = fastify({ logger: false });
    await app.register(multipart, { limits: { fileSize: Number.POSITIVE_INFINITY } });
    let n = 0;
    app.post("/v1/attachments", async (req, reply) => {
      for await (const part of req.parts()) {
        if (part.type === "file") await pipeline(part.file, createWriteStream(join(dir, `f${n++}`), { highWaterMark: 256 * 1024, flush: true }));
      }
      return reply.code(201).send({ data: [] });
    });
    return { app, fixture: { apiKey: "unused" }, close: async () => {} };
  },

  /**
   * The floor of any durable accept (bench/scenarios.ts): Fastify + better-sqlite3 writing, for
   * each POST, copies of the rows one real send writes — the message, its `message.created`
   * event, its lane's pacing state and its chat — on the app's own schema and indexes, with the
   * app's durability (WAL, group commit, fdatasync before answering). No auth, validation, rate
   * limit, idempotency or query builder: what is left when the app's own work costs nothing.
   */
  async "bare-accept"() {
    const dataDir = env("BENCH_DATA_DIR");
    const template = await oneRealSend(dataDir);
    const raw = new SQLite(join(dataDir, "msgbubbles.sqlite"));
    raw.pragma("journal_mode = WAL");
    raw.pragma("synchronous = NORMAL");
    const wal = walSync(join(dataDir, "msgbubbles.sqlite-wal"));
    const insert = (table: string, row: Record<string, unknown>) => {
      const cols = Object.keys(row);
      const stmt = raw.prepare(`insert into "${table}" (${cols.map((c) => `"${c}"`).join(", ")}) values (${cols.map(() => "?").join(", ")})`);
      return (values: Record<string, unknown>) => stmt.run(cols.map((c) => (c in values ? values[c] : row[c])));
    };
    const insertMessage = insert("messages", template.message);
    const insertEvent = insert("events", template.event);
    const updateLane = raw.prepare(`update "sender_lanes" set "tat" = ?, "pending" = "pending" + 1 where "id" = ?`);
    const updateChat = raw.prepare(`update "chats" set "last_message_at" = ?, "updated_at" = ? where "id" = ?`);
    const begin = raw.prepare("begin immediate");
    const commit = raw.prepare("commit");
    // Sends asked for in the same turn of the event loop share one commit, as in the app.
    let batch: { id: string; done: () => void }[] = [];
    const accept = () =>
      new Promise<string>((resolve) => {
        const id = uuidv7();
        batch.push({ id, done: () => resolve(id) });
        if (batch.length > 1) return;
        setImmediate(async () => {
          const answered = batch;
          batch = [];
          const now = new Date().toISOString();
          begin.run();
          for (const { id } of answered) {
            insertMessage({ id, created_at: now, updated_at: now, queue_key: `${now}:${id}` });
            insertEvent({ id: uuidv7(), created_at: now, data: template.event.data });
            updateLane.run(Date.now(), template.message.lane_id);
            updateChat.run(now, now, template.message.chat_id);
          }
          commit.run();
          await wal.sync();
          for (const { done } of answered) done();
        });
      });
    const app = fastify({ logger: false });
    app.post("/v1/messages", async (_req, reply) => {
      const id = await accept();
      return reply.code(202).send({ data: { ...template.answer, id }, request_id: "req_bench" });
    });
    const close = async () => {
      raw.close();
    };
    return { app, fixture: { apiKey: "unused", from: template.from }, close };
  },

  /**
   * The floor of any HTTP upload (bench/uploads.ts): Fastify with no body parser, piping the raw
   * request body to a file with fsync — no multipart parsing at all. What moving the bytes over
   * loopback HTTP costs on this machine, whoever parses them.
   */
  async "bare-body"() {
    const dir = env("BENCH_DATA_DIR");
    const app = fastify({ logger: false });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", (_req, _payload, done) => done(null));
    let n = 0;
    app.post("/v1/attachments", async (req, reply) => {
      await pipeline(req.raw, createWriteStream(join(dir, `f${n++}`), { highWaterMark: 256 * 1024, flush: true }));
      return reply.code(201).send({ data: [] });
    });
    return { app, fixture: { apiKey: "unused" }, close: async () => {} };
  },

  /** The real app on a seeded database: one account, one test key, three numbers. */
  async app() {
    const postgres = env("BENCH_DB") === "postgres";
    const db = await openDb(postgres ? { databaseUrl: env("BENCH_DATABASE_URL"), schema: env("BENCH_SCHEMA") } : { dataDir: env("BENCH_DATA_DIR") });
    const clock = systemClock;
    const account = await createAccount(db.kysely, clock, "Bench");
    // A high per-key limit so the limiter never answers 429 during the bench. On PostgreSQL the
    // limiter stores its TAT in a bigint column, which rejects the fractional TATs of limits that
    // do not divide 60 000 ms (a 500 today), so there it is 60 000/min: a 60 000 burst, plus 1/ms.
    const rateLimit = postgres ? 60_000 : 1_000_000;
    const workers = process.env.BENCH_WORKERS === "1";
    const key = await createKey(db.kysely, clock, { accountId: account.id, mode: "test", rateLimit });
    // The fan-out bench sends from ten numbers: a number's pace tops out at 100 sends/s.
    const handles = Array.from({ length: workers ? 10 : 3 }, (_, i) => `+155555501${String(i).padStart(2, "0")}`);
    for (const [i, handle] of handles.entries()) {
      // The fastest pace, so that the send benchmark's backlog never reaches the validity window.
      await addNumber(db.kysely, clock, { accountId: account.id, handle, channels: "imessage,sms", backend: "simulator", label: `Bench ${i + 1}`, pace: 6000 });
    }
    // Uploaded attachments go to the bench's temp dir too (BENCH_DATA_DIR), never into ./data.
    const dataDir = process.env.BENCH_DATA_DIR;
    // BENCH_WORKERS=1: also run the dispatcher and the webhook worker, as `serve` does, with a
    // fast simulator and local webhook receivers allowed (the webhook fan-out benchmark).
    const workerConfig = workers ? { WEBHOOK_ALLOW_PRIVATE: true, SIMULATOR_DELIVERY_MS: 20, SIMULATOR_READ_MS: 20 } : {};
    const app = await createApp({ config: defaultConfig({ LOG_LEVEL: "silent", ...(dataDir ? { DATA_DIR: dataDir } : {}), ...workerConfig }), db, logger: false });
    if (workers) {
      app.services.dispatcher.start();
      app.services.webhooks.start();
    }
    return {
      app,
      fixture: { apiKey: key.key, from: handles[0] ?? "", froms: handles.join(",") },
      close: async () => {
        await app.services.dispatcher.stop();
        await db.close();
      },
    };
  },
};

/** The rows and answer of one real `POST /v1/messages` on a fresh database in `dataDir`. */
async function oneRealSend(dataDir: string) {
  const db = await openDb({ dataDir });
  const account = await createAccount(db.kysely, systemClock, "Bench");
  const key = await createKey(db.kysely, systemClock, { accountId: account.id, mode: "test", rateLimit: 1_000 });
  const from = "+15555550100";
  await addNumber(db.kysely, systemClock, { accountId: account.id, handle: from, channels: "imessage,sms", backend: "simulator", label: "Bench", pace: 6000 });
  const app = await createApp({ config: defaultConfig({ LOG_LEVEL: "silent", DATA_DIR: dataDir }), db, logger: false });
  const res = await app.inject({
    method: "POST",
    url: "/v1/messages",
    headers: { authorization: `Bearer ${key.key}` },
    payload: { from_handle: from, to: "+15555551234", text: "Hello from the benchmark", metadata: { order: "1234" } },
  });
  if (res.statusCode !== 202) throw new Error(`bare-accept seed: ${res.statusCode} ${res.body}`);
  const answer = (res.json() as { data: Record<string, unknown> }).data;
  const message = await db.kysely.selectFrom("messages").selectAll().where("id", "=", String(answer.id)).executeTakeFirstOrThrow();
  const event = await db.kysely.selectFrom("events").selectAll().orderBy("id", "desc").limit(1).executeTakeFirstOrThrow();
  await app.close();
  await db.close();
  return { answer, message: message as unknown as Record<string, unknown> & { lane_id: string; chat_id: string }, event: event as unknown as Record<string, unknown>, from };
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`bench/server.ts: ${name} is not set`);
  return v;
}

const kind = process.argv[2] ?? "";
const boot = servers[kind];
if (!boot) {
  console.error(`bench/server.ts: unknown server "${kind}" (known: ${Object.keys(servers).join(", ")})`);
  process.exit(2);
}

const { app, fixture, close } = await boot();
await app.listen({ host: "127.0.0.1", port: 0 });
const address = app.server.address();
if (address === null || typeof address === "string") throw new Error("bench/server.ts: not listening on TCP");

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await app.close();
  await close();
  process.exit(0);
}
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
// Started by bench/lib.ts (an IPC channel): stop when the bench goes away.
if (process.channel) process.once("disconnect", stop);

process.stdout.write(`${JSON.stringify({ port: address.port, fixture })}\n`);
