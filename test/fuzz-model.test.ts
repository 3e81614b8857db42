/**
 * Fuzzing the HTTP API (reliability.md §6) with fast-check on the real app and a real database:
 * P06 a stateful model run (`fc.commands`, fuzz-model.ts) over messages (send, edit, react, retry,
 * unsend, time passing) and webhook endpoints (create, get, patch, delete, list).
 */
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { closeApp, fuzzApp } from "./fuzz-app.js";
import { params, scaled } from "./fuzz-budget.js";
import { commands, counted, outcomes, ran } from "./fuzz-model.js";
import type { TestApp } from "./helpers.js";

describe("P06: stateful model of messages and webhook endpoints (fc.commands)", () => {
  let t: TestApp;
  let handle = 0;
  before(async () => {
    t = await fuzzApp();
  });
  after(() => closeApp(t));

  test("the server follows the model: what exists, statuses only move forward, the 409 rules, deleted endpoints 404, lists", async (tt) => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: "max" }), async (cmds) => {
        const acct = await t.seedAccount(`Model ${handle}`);
        const from = `+1555888${String(handle++).padStart(4, "0")}`;
        await t.addNumber(acct.id, from, "imessage,sms");
        await fc.asyncModelRun(() => ({ model: { messages: [], hooks: [] }, real: { t, key: acct.testKey, from } }), [...cmds].map(counted));
      }),
      params(scaled(0.12, 4)),
    );
    tt.diagnostic(`commands run: ${[...ran].map(([k, v]) => `${k}×${v}`).join(" ")}`);
    tt.diagnostic(`outcomes: ${[...outcomes].sort().map(([k, v]) => `${k}×${v}`).join(" ")}`);
  });
});
