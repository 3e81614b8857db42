import { mkdirSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join, resolve } from "node:path";
import SQLite from "better-sqlite3";
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";
import { migrateToLatest } from "./migrate.js";

export type Dialect = "sqlite" | "postgres";

/** A query handle: the database itself, or a transaction on it. */
export type Tx = Kysely<Database>;

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /** Runs `fn` in one transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE). */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T>;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;
  /**
   * A token that changes whenever any data may have changed — by this process or another one
   * (the CLI) — so hot reads can be cached and revalidated in microseconds. null where no such
   * token is cheap to get (PostgreSQL): callers then do not cache.
   */
  version(): string | null;
  close(): Promise<void>;
}

export interface DbOptions {
  /** postgres://… or undefined for SQLite. */
  databaseUrl?: string | undefined;
  /** SQLite: the folder holding msgbubbles.sqlite, or ":memory:". */
  dataDir?: string;
  /** PostgreSQL: a schema to create and use (tests give each run its own). */
  schema?: string;
  /** Apply pending migrations on open (the server and CLI do; default true). */
  migrate?: boolean;
}

// PostgreSQL returns int8 as strings to protect precision; our bigints are epoch milliseconds,
// well inside Number's exact range.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openDb(opts: DbOptions): Promise<Db> {
  const db = opts.databaseUrl ? await openPostgres(opts.databaseUrl, opts.schema) : openSqlite(opts.dataDir ?? "./data");
  if (opts.migrate !== false) {
    try {
      await migrateToLatest(db.kysely, db.dialect);
    } catch (err) {
      await db.close();
      throw err;
    }
  }
  return db;
}

function openSqlite(dataDir: string): Db {
  let file = ":memory:";
  if (dataDir !== ":memory:") {
    mkdirSync(resolve(dataDir), { recursive: true });
    file = join(resolve(dataDir), "msgbubbles.sqlite");
  }
  const raw = new SQLite(file);
  raw.pragma("journal_mode = WAL");
  // A commit is on disk before anyone is answered: in memory there is nothing to sync; on disk
  // SQLite writes the commit's WAL frames (NORMAL) and walSync makes them durable off the event
  // loop — the same guarantee as FULL, whose fsync would block every request while it waits.
  const wal = file === ":memory:" ? null : walSync(`${file}-wal`);
  const durable = wal ? wal.sync : async () => {};
  raw.pragma(file === ":memory:" ? "synchronous = FULL" : "synchronous = NORMAL");
  raw.pragma("foreign_keys = ON");
  // The CLI writes from another process; wait for its lock instead of failing.
  raw.pragma("busy_timeout = 5000");
  const statements = withStatementCache(raw);
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: statements }) });
  return {
    kysely,
    dialect: "sqlite",
    transaction: groupCommit(kysely, durable),
    // data_version moves when another connection commits; `writes` (counted by the statement
    // cache) when this one writes. Reading data_version costs a pragma, so it is read once per
    // turn of the event loop and shared by the requests handled in that turn (they are
    // simultaneous anyway); our own writes still move the token at once.
    version: (() => {
      const dataVersion = raw.prepare("select data_version from pragma_data_version").pluck();
      let memo: number | null = null;
      return () => {
        try {
          if (memo === null) {
            memo = dataVersion.get() as number;
            setImmediate(() => {
              memo = null;
            });
          }
          return `${statements.writes}:${memo}`;
        } catch {
          return null; // closed or failing: do not cache; the real query reports the problem
        }
      };
    })(),
    async ping() {
      try {
        raw.prepare("select 1").get();
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      // Writes made outside transaction() (the CLI's, caches) are made durable here at the latest.
      if (wal) await wal.sync().finally(() => wal.close());
      await kysely.destroy();
    },
  };
}

// Group commit's own statements, compiled once (they run several times per transaction).
const BEGIN = CompiledQuery.raw("begin immediate");
const SAVEPOINT = CompiledQuery.raw("savepoint tx");
const RELEASE = CompiledQuery.raw("release tx");
const ROLLBACK_TO = CompiledQuery.raw("rollback to tx");
const COMMIT = CompiledQuery.raw("commit");
const ROLLBACK = CompiledQuery.raw("rollback");

interface Pending {
  fn: (trx: Tx) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Makes the WAL durable up to now: fdatasync of the -wal file on libuv's thread pool, so the event
 * loop keeps serving requests while the disk works. Linux syncs a file's data whichever
 * descriptor wrote it. Callers that arrive while a sync runs share the next one (it may have
 * started before their commit); so one sync covers every commit made before it began. Writes
 * outside transaction() (the CLI's one-statement commands) become durable at the next sync or
 * when the database is closed.
 */
export function walSync(walPath: string, openFile: (path: string, flags: string) => Promise<FileHandle> = open): { sync(): Promise<void>; close(): Promise<void> } {
  let handle: Promise<FileHandle> | null = null;
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const once = async () => {
    handle ??= openFile(walPath, "r+");
    let file: FileHandle;
    try {
      file = await handle;
    } catch (err) {
      handle = null;
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return; // nothing written yet
      throw err;
    }
    await file.datasync();
  };
  const sync = (): Promise<void> => {
    if (!running) {
      running = once().finally(() => {
        running = null;
      });
      return running;
    }
    next ??= running.catch(() => {}).then(() => {
      next = null;
      return sync();
    });
    return next;
  };
  return {
    sync,
    async close() {
      if (handle) await (await handle).close();
      handle = null;
    },
  };
}

/**
 * Transactions on SQLite, with group commit. Making a commit durable (an fsync) dominates a small
 * write, so transactions that are requested together (in the same turn of the event loop, e.g. a
 * burst of sends) run one after another inside a single BEGIN IMMEDIATE … COMMIT, each in its own
 * savepoint: one that fails rolls back alone and gets its error; the others commit together and
 * are answered only once the commit is on disk (`durable`), so durability is not traded for
 * speed. One connection runs one batch at a time, like one writer must; the next batch may run
 * while the previous one's sync is still in flight.
 */
function groupCommit(kysely: Kysely<Database>, durable: () => Promise<void>) {
  let queue: Pending[] = [];
  let scheduled = false;

  async function flush(): Promise<void> {
    scheduled = false;
    const batch = queue;
    queue = [];
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      await kysely.connection().execute(async (conn) => {
        await conn.executeQuery(BEGIN);
        try {
          for (const item of batch) {
            await conn.executeQuery(SAVEPOINT);
            try {
              outcomes.push({ ok: true, value: await item.fn(conn) });
              await conn.executeQuery(RELEASE);
            } catch (err) {
              await conn.executeQuery(ROLLBACK_TO);
              await conn.executeQuery(RELEASE);
              outcomes.push({ ok: false, value: err });
            }
          }
          await conn.executeQuery(COMMIT);
        } catch (err) {
          await conn.executeQuery(ROLLBACK).catch(() => {});
          throw err;
        }
      });
      // Outside the connection: the next batch may run while this one waits for the disk.
      await durable();
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    batch.forEach((item, i) => {
      const o = outcomes[i];
      if (o?.ok) item.resolve(o.value);
      else item.reject(o?.value);
    });
  }

  return <T>(fn: (trx: Tx) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void flush());
      }
    });
}

/**
 * Kysely's SQLite driver prepares every statement anew on each query, and preparing costs several
 * times more than running a small indexed query. Statements are cached by their SQL text; the
 * cache is bounded because `in (…)` lists of varying length make distinct texts.
 */
function withStatementCache(raw: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  const self = {
    /** Statements run that may have written (Kysely runs every non-reader through `run`). */
    writes: 0,
    close: () => raw.close(),
    prepare(text: string) {
      let stmt = cache.get(text);
      if (!stmt) {
        if (cache.size >= 1000) cache.clear();
        stmt = raw.prepare(text);
        if (!stmt.reader) {
          const run = stmt.run.bind(stmt);
          stmt.run = ((...params: unknown[]) => {
            self.writes++;
            return run(...params);
          }) as typeof stmt.run;
        }
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
  return self;
}

async function openPostgres(url: string, schema?: string): Promise<Db> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`bad schema name ${schema}`);
  if (schema) {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`create schema if not exists ${schema}`);
    await admin.end();
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 5000,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client that loses its server (restart) emits 'error'; without a listener that would
  // crash the process. The pool drops the client and the next query gets a fresh one.
  pool.on("error", () => {});
  // The pool listens only while a client is idle: one checked out (a transaction awaiting other
  // work) that loses its server emits 'error' with no listener, which kills the process. Listen
  // for its whole life; its query fails instead (→ 503), and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", () => {}));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    dialect: "postgres",
    transaction: (fn) => kysely.transaction().execute(fn),
    version: () => null,
    async ping() {
      try {
        await sql`select 1`.execute(kysely);
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await kysely.destroy();
    },
  };
}

/** Drops a schema made for a test run. */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`drop schema if exists ${schema} cascade`);
  await admin.end();
}
