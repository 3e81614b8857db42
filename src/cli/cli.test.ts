import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createApp } from "../app.js";
import { defaultConfig } from "../config.js";
import { dropPostgresSchema, openDb } from "../db/client.js";
import type { Io } from "./io.js";
import { main } from "./main.js";

const PG = process.env.DATABASE_URL || undefined;

/** The CLI's environment: a temp SQLite folder, or a fresh PostgreSQL schema via search_path. */
function cliEnv(): { env: Record<string, string>; cleanup(): Promise<void> } {
  if (PG) {
    const schema = `cli_${randomBytes(5).toString("hex")}`;
    const sep = PG.includes("?") ? "&" : "?";
    return {
      env: { DATABASE_URL: `${PG}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`, SCHEMA: schema },
      cleanup: () => dropPostgresSchema(PG, schema),
    };
  }
  return { env: { DATA_DIR: mkdtempSync(join(tmpdir(), "mb-cli-")) }, cleanup: async () => {} };
}

async function cli(env: Record<string, string>, ...args: string[]) {
  let out = "";
  let err = "";
  const io: Io = {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    env,
  };
  const code = await main(["node", "msgbubbles", ...args], io);
  return { code, out, err, json: () => JSON.parse(out) };
}

const ENTRY = "import { main } from './src/cli/main.ts'; process.exitCode = await main([\"node\", \"msgbubbles\", ...process.argv.slice(1)]);";

/** Runs a CLI command in a child process; resolves with its exit code. */
function cliProcess(env: Record<string, string>, ...args: string[]): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", ENTRY, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return new Promise((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
}

describe("operator CLI", () => {
  const { env, cleanup } = cliEnv();
  before(async () => {
    if (PG && env.SCHEMA) {
      // Create the schema the CLI's search_path points at.
      const db = await openDb({ databaseUrl: PG, schema: env.SCHEMA, migrate: false });
      await db.close();
    }
  });
  after(cleanup);

  it("accounts create/list/deactivate/activate, with --json", async () => {
    const created = await cli(env, "accounts", "create", "--name", "Acme", "--json");
    assert.equal(created.code, 0, created.err);
    const acct = created.json();
    assert.match(acct.id, /^[0-9a-f-]{36}$/);
    assert.equal(acct.name, "Acme");
    assert.equal(acct.active, true);

    const listed = (await cli(env, "accounts", "list", "--json")).json();
    assert.ok(listed.some((a: { id: string }) => a.id === acct.id));

    assert.equal((await cli(env, "accounts", "deactivate", acct.id, "--json")).json().active, false);
    assert.equal((await cli(env, "accounts", "activate", acct.id, "--json")).json().active, true);

    const human = await cli(env, "accounts", "list");
    assert.match(human.out, /^id\s+name\s+active/m);
  });

  it("keys: printed once, stored as a hash, listed without the key, revoked → 401 on the next request", async () => {
    const acct = (await cli(env, "accounts", "create", "--name", "Keys", "--json")).json();
    const made = await cli(env, "keys", "create", "--account", acct.id, "--mode", "test", "--rate-limit", "300", "--json");
    assert.equal(made.code, 0, made.err);
    const key = made.json();
    assert.match(key.key, /^sk_test_[0-9A-Za-z]{49}$/);
    assert.equal(key.rate_limit, 300);

    const listed = await cli(env, "keys", "list", "--account", acct.id, "--json");
    assert.ok(!listed.out.includes(key.key));
    assert.equal(listed.json()[0].id, key.id);

    // The server sees the CLI's changes at once (same database, another connection).
    const db = await openDb(PG ? { databaseUrl: env.DATABASE_URL } : { dataDir: env.DATA_DIR as string });
    const app = await createApp({ config: defaultConfig(), db, logger: false });
    try {
      const stored = await db.kysely.selectFrom("api_keys").selectAll().where("id", "=", key.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(stored).includes(key.key.slice(8)), "no plaintext key at rest");
      const get = () => app.inject({ url: "/v1/numbers", headers: { authorization: `Bearer ${key.key}` } });
      assert.equal((await get()).statusCode, 200);
      assert.equal((await get()).headers["x-ratelimit-limit"], "300");
      // The CLI as the operator runs it: another process, committing to the same database.
      assert.equal(await cliProcess(env, "accounts", "deactivate", acct.id), 0);
      assert.equal((await get()).statusCode, 403);
      assert.equal(await cliProcess(env, "accounts", "activate", acct.id), 0);
      assert.equal((await get()).statusCode, 200);
      assert.equal(await cliProcess(env, "keys", "revoke", key.id), 0);
      assert.equal((await get()).statusCode, 401);
    } finally {
      await app.close();
      await db.close();
    }
  });

  it("numbers add/list/update/remove", async () => {
    const acct = (await cli(env, "accounts", "create", "--name", "Nums", "--json")).json();
    const add = await cli(env, "numbers", "add", "--account", acct.id, "--handle", "+15555550123", "--channels", "sms,imessage",
      "--backend", "simulator", "--label", "Support", "--pace", "30", "--json");
    assert.equal(add.code, 0, add.err);
    assert.deepEqual(add.json().channels, ["imessage", "sms"]);
    assert.equal(add.json().pace_per_minute, 30);

    const upd = (await cli(env, "numbers", "update", "+15555550123", "--label", "", "--channels", "imessage,sms,whatsapp", "--json")).json();
    assert.equal(upd.label, null);
    assert.deepEqual(upd.channels, ["imessage", "sms", "whatsapp"]);

    const list = (await cli(env, "numbers", "list", "--account", acct.id, "--json")).json();
    assert.deepEqual(list.map((n: { handle: string }) => n.handle), ["+15555550123"]);

    assert.equal((await cli(env, "numbers", "remove", "+15555550123")).code, 0);
    assert.deepEqual((await cli(env, "numbers", "list", "--account", acct.id, "--json")).json(), []);
  });

  it("numbers on real back-ends: BlueBubbles for iMessage/SMS, WAHA added for WhatsApp, routed by channel; secrets never printed", async () => {
    const acct = (await cli(env, "accounts", "create", "--name", "Real", "--json")).json();
    const add = await cli(env, "numbers", "add", "--account", acct.id, "--handle", "+15555550150", "--channels", "imessage,sms",
      "--backend", "bluebubbles", "--url", "http://mac.local:1234/", "--password", "s3cret-pass", "--json");
    assert.equal(add.code, 0, add.err);
    assert.equal(add.json().backend, "bluebubbles");
    assert.ok(!add.out.includes("s3cret-pass"));
    const noWaha = await cli(env, "numbers", "update", "+15555550150", "--channels", "imessage,sms,whatsapp");
    assert.notEqual(noWaha.code, 0);
    assert.match(noWaha.err, /No back-end of this number serves whatsapp \(WhatsApp: --backend waha\)/);
    const both = await cli(env, "numbers", "update", "+15555550150", "--channels", "imessage,sms,whatsapp", "--backend", "waha",
      "--url", "http://waha.local:3000", "--api-key", "k3y-value", "--session", "support", "--json");
    assert.equal(both.code, 0, both.err);
    assert.equal(both.json().backend, "bluebubbles,waha");
    assert.ok(!both.out.includes("k3y-value"));
    const missing = await cli(env, "numbers", "add", "--account", acct.id, "--handle", "+15555550151", "--channels", "whatsapp", "--backend", "waha", "--url", "http://waha.local");
    assert.match(missing.err, /--api-key is required/);
    const badUrl = await cli(env, "numbers", "add", "--account", acct.id, "--handle", "+15555550151", "--channels", "imessage", "--backend", "bluebubbles", "--url", "mac.local", "--password", "x");
    assert.match(badUrl.err, /--url must be an http\(s\) URL/);
    const back = (await cli(env, "numbers", "update", "+15555550150", "--backend", "simulator", "--json")).json();
    assert.equal(back.backend, "simulator");
  });

  it("bad input: a clear error and a non-zero exit, in the API's error shape with --json", async () => {
    const acct = (await cli(env, "accounts", "create", "--name", "Bad", "--json")).json();
    const cases: [string[], RegExp][] = [
      [["keys", "create", "--account", acct.id, "--mode", "prod"], /--mode must be test or live/],
      [["keys", "create", "--account", acct.id, "--mode", "test", "--rate-limit", "lots"], /--rate-limit must be a whole number/],
      [["keys", "create", "--mode", "test"], /required option '--account/],
      [["keys", "revoke", "nope"], /No API key nope/],
      [["accounts", "deactivate", "nope"], /No account nope/],
      [["accounts", "create", "--name", "  "], /name must be 1–200 characters/],
      [["numbers", "add", "--account", acct.id, "--handle", "12345", "--channels", "sms", "--backend", "simulator"], /not a valid E\.164/],
      [["numbers", "add", "--account", acct.id, "--handle", "+15555550199", "--channels", "fax", "--backend", "simulator"], /unknown: fax/],
      [["numbers", "add", "--account", acct.id, "--handle", "+15555550199", "--channels", "sms", "--backend", "carrier-pigeon"], /backend must be one of/],
      [["numbers", "add", "--account", "nope", "--handle", "+15555550199", "--channels", "sms", "--backend", "simulator"], /No account nope/],
      [["numbers", "update", "+15555550199"], /Nothing to update/],
      [["numbers", "remove", "+15555550198"], /No number/],
      [["frobnicate"], /unknown command/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(env, ...args);
      assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
      assert.match(r.err, message, args.join(" "));
      const j = await cli(env, ...args, "--json");
      assert.notEqual(j.code, 0);
      const body = JSON.parse(j.err);
      assert.deepEqual(Object.keys(body), ["error", "message"]);
      assert.equal(j.out, "");
    }
    await cli(env, "numbers", "add", "--account", acct.id, "--handle", "+15555550197", "--channels", "sms", "--backend", "simulator");
    const dup = await cli(env, "numbers", "add", "--account", acct.id, "--handle", "+15555550197", "--channels", "sms", "--backend", "simulator", "--json");
    assert.equal(JSON.parse(dup.err).error, "conflict");
  });
});

describe("msgbubbles serve (a real process)", () => {
  it("first start on an empty database prints a test key and curl lines that send a message, which becomes read", async () => {
    const { env, cleanup } = cliEnv();
    if (PG && env.SCHEMA) await (await openDb({ databaseUrl: PG, schema: env.SCHEMA, migrate: false })).close();
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", ENTRY, "serve"],
      { env: { ...process.env, ...env, PORT: "0", LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      let out = "";
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (/curl -s "\S+limit=1"/.test(out)) resolve();
        });
        child.on("exit", (c) => reject(new Error(`serve exited with ${c}: ${out}`)));
      });
      // Run the printed lines as a user would paste them (the shell's quoting, by hand).
      const send = /curl -s (\S+) -H "Authorization: Bearer (sk_test_[0-9A-Za-z]+)" -H "Content-Type: application\/json" -d '([^']+)'/.exec(out);
      const read = /curl -s "(\S+limit=1)"/.exec(out);
      assert.ok(send && read, out);
      const [, url, key, body] = send as unknown as [string, string, string, string];
      const headers = { authorization: `Bearer ${key}` };
      const res = await fetch(url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
      assert.equal(res.status, 202);
      const sent = ((await res.json()) as { data: { id: string; status: string; from_handle: string } }).data;
      assert.equal(sent.status, "queued");
      assert.equal(sent.from_handle, "+15555550100");
      // The real server runs on the real clock: poll (bounded) until the simulator has read it.
      let latest = { id: "", status: "" };
      for (let i = 0; i < 100 && latest.status !== "read"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        latest = ((await (await fetch(read?.[1] as string, { headers })).json()) as { data: { id: string; status: string }[] }).data[0] ?? latest;
      }
      assert.deepEqual(latest, { ...latest, id: sent.id, status: "read" });
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await cleanup();
    }
  });
});
