import type { FastifyBaseLogger } from "fastify";

/**
 * A background loop that fails on every pass (the database is down) would log ~20 lines a second:
 * this logs the first failure, then at most one per interval with how many it held back. Wall
 * clock on purpose: it paces log lines, not application time.
 */
export function throttledErrorLog(intervalMs = 10_000): (log: FastifyBaseLogger | undefined, err: unknown, msg: string) => void {
  let last = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (log, err, msg) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    log?.error({ err, suppressed }, msg);
    last = now;
    suppressed = 0;
  };
}
