import type { Command } from "commander";
import { createAccount, listAccounts, setAccountActive, setDailySendLimit } from "../accounts/store.js";
import { systemClock } from "../clock.js";
import type { Db } from "../db/client.js";
import { createKey, listKeys, revokeKey } from "../keys/store.js";
import { addNumber, listNumbers, removeNumber, updateNumber } from "../numbers/store.js";
import { UsageError } from "./io.js";

/** Runs one command against the database and returns what to print. */
export type Run = (action: (db: Db) => Promise<unknown>) => Promise<void>;

function int(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be a whole number, got '${v}'.`);
    return Number(v);
  };
}

function mode(v: string): "test" | "live" {
  if (v !== "test" && v !== "live") throw new UsageError(`--mode must be test or live, got '${v}'.`);
  return v;
}

export function accountsCommands(program: Command, run: Run): void {
  const accounts = program.command("accounts").description("Manage customer accounts");
  accounts
    .command("create")
    .description("Create an account")
    .requiredOption("--name <name>", "display name")
    .action((o: { name: string }) => run((db) => createAccount(db.kysely, systemClock, o.name)));
  accounts
    .command("list")
    .description("List accounts")
    .action(() => run((db) => listAccounts(db.kysely)));
  accounts
    .command("deactivate <id>")
    .description("Deactivate an account: its keys get 403 forbidden at once")
    .action((id: string) => run((db) => setAccountActive(db.kysely, systemClock, id, false)));
  accounts
    .command("activate <id>")
    .description("Reactivate an account")
    .action((id: string) => run((db) => setAccountActive(db.kysely, systemClock, id, true)));
  accounts
    .command("limit <id>")
    .description("Set an account's daily sending limit (per UTC day and mode; beyond it, 429 daily_limit_exceeded)")
    .requiredOption("--daily <n>", "messages per day, 0 for none, or 'default' for the server's DAILY_SEND_LIMIT")
    .action((id: string, o: { daily: string }) =>
      run((db) => setDailySendLimit(db.kysely, systemClock, id, o.daily === "default" ? null : /^\d+$/.test(o.daily) ? Number(o.daily) : Number.NaN)),
    );
}

export function keysCommands(program: Command, run: Run): void {
  const keys = program.command("keys").description("Manage API keys");
  keys
    .command("create")
    .description("Create an API key; the key is printed once and only its hash is stored")
    .requiredOption("--account <id>", "account id")
    .requiredOption("--mode <mode>", "test or live", mode)
    .option("--rate-limit <n>", "requests per minute (default: the server's RATE_LIMIT_PER_MINUTE)", int("--rate-limit"))
    .action((o: { account: string; mode: "test" | "live"; rateLimit?: number }) =>
      run((db) => createKey(db.kysely, systemClock, { accountId: o.account, mode: o.mode, rateLimit: o.rateLimit })),
    );
  keys
    .command("list")
    .description("List an account's keys (never the keys themselves)")
    .requiredOption("--account <id>", "account id")
    .action((o: { account: string }) => run((db) => listKeys(db.kysely, o.account)));
  keys
    .command("revoke <key-id>")
    .description("Revoke a key: its next request gets 401")
    .action((id: string) => run((db) => revokeKey(db.kysely, systemClock, id)));
}

interface NumberOptions {
  channels?: string;
  backend?: string;
  label?: string;
  pace?: number;
  url?: string;
  password?: string;
  apiKey?: string;
  session?: string;
}

const BACKEND_HELP = "device back-end: simulator, bluebubbles (iMessage/SMS via a Mac) or waha (WhatsApp)";

/** The real back-end's settings: --url and --password (BlueBubbles), --url, --api-key and --session (WAHA). */
function backendOptions(cmd: Command): Command {
  return cmd
    .option("--url <url>", "the back-end server's URL (BlueBubbles Server or WAHA)")
    .option("--password <password>", "BlueBubbles Server password")
    .option("--api-key <key>", "WAHA API key (X-Api-Key)")
    .option("--session <name>", "WAHA session name (default: default)");
}

const settingsOf = (o: NumberOptions) => ({ url: o.url, password: o.password, apiKey: o.apiKey, session: o.session });

export function numbersCommands(program: Command, run: Run): void {
  const numbers = program.command("numbers").description("Manage sending numbers");
  backendOptions(numbers
    .command("add"))
    .description("Assign a sending number to an account")
    .requiredOption("--account <id>", "account id")
    .requiredOption("--handle <e164>", "the number, E.164 (+15555550123)")
    .requiredOption("--channels <list>", "comma-separated: imessage,sms,whatsapp")
    .requiredOption("--backend <name>", BACKEND_HELP)
    .option("--label <text>", "a label shown in GET /v1/numbers")
    .option("--pace <n>", "outbound messages per minute (default 60)", int("--pace"))
    .action((o: NumberOptions & { account: string; handle: string; channels: string; backend: string }) =>
      run((db) =>
        addNumber(db.kysely, systemClock, {
          accountId: o.account,
          handle: o.handle,
          channels: o.channels,
          backend: o.backend,
          settings: settingsOf(o),
          label: o.label,
          pace: o.pace,
        }),
      ),
    );
  numbers
    .command("list")
    .description("List numbers")
    .option("--account <id>", "only this account's")
    .action((o: { account?: string }) => run((db) => listNumbers(db.kysely, o.account)));
  backendOptions(numbers
    .command("update <handle>"))
    .description("Change a number's channels, back-end, label or pace (a back-end replaces the one serving the same channels)")
    .option("--channels <list>", "comma-separated: imessage,sms,whatsapp")
    .option("--backend <name>", BACKEND_HELP)
    .option("--label <text>", "label ('' clears it)")
    .option("--pace <n>", "outbound messages per minute", int("--pace"))
    .action((handle: string, o: NumberOptions) => {
      if (Object.keys(o).length === 0) throw new UsageError("Nothing to update: pass --channels, --backend, --label or --pace.");
      return run((db) =>
        updateNumber(db.kysely, systemClock, handle, {
          channels: o.channels,
          backend: o.backend,
          settings: settingsOf(o),
          label: o.label === undefined ? undefined : o.label === "" ? null : o.label,
          pace: o.pace,
        }),
      );
    });
  numbers
    .command("remove <handle>")
    .description("Remove a number from its account")
    .action((handle: string) => run((db) => removeNumber(db.kysely, handle)));
}
