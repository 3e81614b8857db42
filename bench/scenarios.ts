/**
 * What `npm run bench` measures: each scenario runs its baseline, then its target, one after the
 * other, and reports target ÷ baseline. Add a scenario here (and a server kind in bench/server.ts
 * if it needs one) for new paths such as sending or uploads.
 */
import { type Fixture, need, type Scenario, type Target } from "./lib.js";

const bareFastify: Target = { label: "bare Fastify", server: "bare", request: () => ({ path: "/" }) };

const bareFastifyPost: Target = {
  label: "bare Fastify (POST)",
  server: "bare",
  request: () => ({ method: "POST", path: "/", headers: { "content-type": "application/json" }, body: sendBody("+15555550100") }),
};

function sendBody(from: string): string {
  return JSON.stringify({ from_handle: from, to: "+15555551234", text: "Hello from the benchmark", metadata: { order: "1234" } });
}

const sendMessage = (f: Fixture) => ({
  method: "POST" as const,
  path: "/v1/messages",
  headers: { authorization: `Bearer ${need(f, "apiKey")}`, "content-type": "application/json" },
  body: sendBody(need(f, "from")),
});

const listNumbers = (f: Fixture) => ({ path: "/v1/numbers", headers: { authorization: `Bearer ${need(f, "apiKey")}` } });

export function scenarios(opts: { postgres: boolean }): Scenario[] {
  const list: Scenario[] = [
    {
      name: "GET /v1/numbers",
      baseline: bareFastify,
      target: { label: "MsgBubbles (SQLite)", server: "app", db: "sqlite", request: listNumbers },
      goal: 0.5,
    },
    {
      name: "POST /v1/messages (accept)",
      baseline: bareFastifyPost,
      target: { label: "MsgBubbles (SQLite)", server: "app", db: "sqlite", request: sendMessage },
      goal: 0.5,
    },
    {
      // How far any durable accept can go on this machine: the same rows, schema and group
      // commit, with none of the app's own work (see "bare-accept" in bench/server.ts).
      name: "POST /v1/messages (floor: Fastify + the accept's SQLite writes)",
      baseline: bareFastifyPost,
      target: { label: "bare Fastify + SQLite writes", server: "bare-accept", db: "sqlite", request: sendMessage },
    },
    {
      // Many clients at once: what group commit is for (10 connections cap a commit at 10 sends).
      name: "POST /v1/messages (accept, 64 connections)",
      baseline: bareFastifyPost,
      target: { label: "MsgBubbles (SQLite)", server: "app", db: "sqlite", request: sendMessage },
      goal: 0.5,
      connections: 64,
    },
  ];
  if (opts.postgres) {
    list.push({
      name: "GET /v1/numbers (PostgreSQL)",
      baseline: bareFastify,
      target: { label: "MsgBubbles (PostgreSQL)", server: "app", db: "postgres", request: listNumbers },
      goal: 0.5,
    });
  }
  return list;
}
