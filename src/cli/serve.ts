import { createApp } from "../app.js";
import { systemClock } from "../clock.js";
import { loadConfig } from "../config.js";
import { openDb } from "../db/client.js";
import { startMaintenance } from "../maintenance.js";
import { DEMO_NUMBER, createDemoIfEmpty } from "./demo.js";
import type { Io } from "./io.js";

/** The only place that listens: boot, print how to start, run until SIGINT/SIGTERM. */
export async function serve(io: Io): Promise<void> {
  const config = loadConfig(io.env);
  const db = await openDb({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR });
  const demo = config.CREATE_DEMO_ACCOUNT ? await createDemoIfEmpty(db, systemClock) : null;
  const app = await createApp({ config, db });
  const address = await app.listen({ host: config.HOST, port: config.PORT });
  const base = config.PUBLIC_URL ?? address;
  const storage = db.dialect === "postgres" ? "PostgreSQL" : `SQLite in ${config.DATA_DIR}`;
  io.out(`MsgBubbles is listening on ${address} (${storage}). API reference: ${base}/docs\n`);
  if (demo) {
    io.out(
      [
        "",
        `First start: created a demo account (${demo.accountId}) with the simulator number ${DEMO_NUMBER}`,
        "and this test-mode API key. It is shown only once; copy it now:",
        "",
        `  ${demo.key}`,
        "",
        "Try it: send a message, then read it back:",
        "",
        `  curl -s ${base}/v1/messages -H "Authorization: Bearer ${demo.key}" -H "Content-Type: application/json" -d '{"from_handle":"${DEMO_NUMBER}","to":"+15555550123","text":"Hello from MsgBubbles"}'`,
        `  curl -s "${base}/v1/messages?limit=1" -H "Authorization: Bearer ${demo.key}"`,
        "",
        "",
      ].join("\n"),
    );
  }
  const maintenance = startMaintenance({ db, clock: systemClock, config, log: app.log });
  // Real devices post their events to PUBLIC_URL; without it, to the address we listen on.
  config.PUBLIC_URL ??= address;
  app.services.dispatcher.start();
  app.services.webhooks.start();
  app.services.devices.start();

  await new Promise<void>((resolve) => {
    const stop = async () => {
      maintenance.stop();
      // Closing the app also stops the webhook worker: no new claims, attempts in flight recorded.
      await app.close();
      await app.services.dispatcher.stop();
      await db.close();
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
