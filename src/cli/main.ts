import { Command, CommanderError } from "commander";
import { loadConfig } from "../config.js";
import { openDb } from "../db/client.js";
import { accountsCommands, keysCommands, numbersCommands, type Run } from "./commands.js";
import { type Io, print, printError, processIo } from "./io.js";

/**
 * `msgbubbles <command>`: the server and the operator commands. Every command reads the same
 * DATA_DIR / DATABASE_URL as the server. Returns the exit code instead of exiting, so tests run
 * commands in-process.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let json = argv.includes("--json");
  let exitCode = 0;
  const program = new Command("msgbubbles")
    .description("MsgBubbles: iMessage, SMS and WhatsApp behind one API")
    .option("--json", "machine-readable output")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: (s) => !json && io.err(s) });

  const run: Run = async (action) => {
    const config = loadConfig(io.env);
    const db = await openDb({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
    try {
      print(io, json, await action(db));
    } finally {
      await db.close();
    }
  };
  accountsCommands(program, run);
  keysCommands(program, run);
  numbersCommands(program, run);
  program
    .command("serve")
    .description("Run the API server (HOST, PORT, DATA_DIR or DATABASE_URL from the environment)")
    .action(async () => {
      // Loaded on demand: the operator commands start faster without the HTTP stack.
      const { serve } = await import("./serve.js");
      await serve(io);
    });
  for (const cmd of program.commands.flatMap((c) => [c, ...c.commands])) cmd.option("--json", "machine-readable output");

  try {
    await program.parseAsync(argv);
    json = Boolean(program.opts().json) || json;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      if (json) printError(io, true, new Error(err.message.replace(/^error: /, "")));
      return err.exitCode || 1;
    }
    exitCode = printError(io, json, err);
  }
  return exitCode;
}
