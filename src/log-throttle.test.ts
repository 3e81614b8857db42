import assert from "node:assert/strict";
import { test } from "node:test";
import type { FastifyBaseLogger } from "fastify";
import { throttledErrorLog } from "./log-throttle.js";

test("a loop failing on every pass logs once per interval, counting what it held back", () => {
  const lines: unknown[] = [];
  const log = { error: (obj: unknown) => lines.push(obj) } as unknown as FastifyBaseLogger;
  const logError = throttledErrorLog(60_000);
  for (let i = 0; i < 50; i++) logError(log, new Error("db down"), "tick failed");
  assert.equal(lines.length, 1);
  assert.equal((lines[0] as { suppressed: number }).suppressed, 0);
  const quick = throttledErrorLog(0);
  quick(log, new Error("a"), "x");
  quick(log, new Error("b"), "x");
  assert.equal(lines.length, 3);
});
