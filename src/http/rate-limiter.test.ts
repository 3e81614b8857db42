import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freshDb } from "../../test/helpers.js";
import type { Db } from "../db/client.js";
import { DatabaseRateLimiter, MemoryRateLimiter, type RateLimiter } from "./rate-limiter.js";

// The same contract for both stores: the database one is what a PostgreSQL cluster shares.
for (const kind of ["memory", "database"] as const) {
  describe(`${kind} rate limiter`, () => {
    let db: Db & { drop(): Promise<void> };
    let limiter: RateLimiter;
    before(async () => {
      db = await freshDb();
      limiter = kind === "memory" ? new MemoryRateLimiter() : new DatabaseRateLimiter(db);
    });
    after(() => db.drop());

    const policy = { limit: 10, periodMs: 60_000 };

    it("allows the burst, denies the next with the exact wait, then one per interval", async () => {
      const now = 1_000_000;
      for (let i = 0; i < 10; i++) {
        const d = await limiter.take("a", policy, now);
        assert.equal(d.allowed, true);
        assert.equal(d.remaining, 9 - i);
      }
      const denied = await limiter.take("a", policy, now);
      assert.equal(denied.allowed, false);
      assert.equal(denied.retryAfterMs, 6000);
      assert.equal((await limiter.take("a", policy, now + 5999)).allowed, false);
      assert.equal((await limiter.take("a", policy, now + 6000)).allowed, true);
      assert.equal((await limiter.peek("a", policy, now + 6000)).allowed, false);
    });

    it("never grants more than the budget to concurrent takers", async () => {
      const results = await Promise.all(Array.from({ length: 25 }, () => limiter.take("b", policy, 5_000_000)));
      assert.equal(results.filter((d) => d.allowed).length, 10);
    });

    it("keeps buckets apart", async () => {
      for (let i = 0; i < 10; i++) await limiter.take("c", policy, 9_000_000);
      assert.equal((await limiter.take("c", policy, 9_000_000)).allowed, false);
      assert.equal((await limiter.take("d", policy, 9_000_000)).allowed, true);
    });
  });
}
