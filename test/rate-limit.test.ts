// Per-key GCRA rate limit and the pre-auth per-IP limiter: reliability.md §3 (RL-R1…R3, tests
// RL-T01…T07) and api.md §3, against the real app with a ManualClock.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { ERRORS, type ErrorCode } from "../src/errors.js";
import type { GcraPolicy } from "../src/http/gcra.js";
import { MemoryRateLimiter, type RateLimiter } from "../src/http/rate-limiter.js";
import { generateKey } from "../src/keys/secret.js";
import { buildTestApp, type SeededAccount, type TestApp } from "./helpers.js";
import { buildNotesApp } from "./test-notes-route.js";

function assertError(res: LightMyRequestResponse, status: number, code: ErrorCode, message: string = ERRORS[code].message): void {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ["error", "message", "request_id"]);
  assert.equal(body.error, code);
  assert.equal(body.message, message);
  assert.match(body.request_id, /^req_[0-9a-f]{32}$/);
  assert.equal(body.request_id, res.headers["x-request-id"]);
}

const IP_LIMITED = "Too many failed authentication attempts from this address.";

/** The five rate-limit headers of a response, for exact comparisons. */
function limitHeaders(res: LightMyRequestResponse) {
  const h = res.headers;
  return {
    policy: h["ratelimit-policy"], ratelimit: h.ratelimit,
    limit: h["x-ratelimit-limit"], remaining: h["x-ratelimit-remaining"], reset: h["x-ratelimit-reset"],
  };
}

describe("per-key rate limit", () => {
  let t: TestApp;
  let acct: SeededAccount;
  const get = (key: string, remoteAddress?: string) =>
    remoteAddress
      ? t.app.inject({ method: "GET", url: "/v1/numbers", remoteAddress, headers: { authorization: `Bearer ${key}` } })
      : t.call(key, "GET", "/v1/numbers");
  /** Epoch seconds `s` seconds from the (whole-second) ManualClock's now. */
  const epochIn = (s: number) => String(t.clock.now() / 1000 + s);

  beforeEach(async () => {
    t = await buildTestApp();
    acct = await t.seedAccount();
  });
  afterEach(() => t.close());

  it("120 requests at one instant pass; the 121st gets 429 rate_limited with Retry-After: 1; 500 ms later one more passes (RL-T01)", async () => {
    for (let i = 1; i <= 120; i++) assert.equal((await get(acct.testKey)).statusCode, 200, `request ${i}`);
    const denied = await get(acct.testKey);
    assertError(denied, 429, "rate_limited");
    assert.equal(denied.headers["retry-after"], "1");
    assert.deepEqual(limitHeaders(denied), {
      policy: '"default";q=120;w=60', ratelimit: '"default";r=0;t=1', limit: "120", remaining: "0", reset: epochIn(1),
    });
    t.clock.advance(499);
    assertError(await get(acct.testKey), 429, "rate_limited");
    t.clock.advance(1);
    const next = await get(acct.testKey);
    assert.equal(next.statusCode, 200);
    assert.equal(next.headers["x-ratelimit-remaining"], "0");
    assertError(await get(acct.testKey), 429, "rate_limited");
  });

  it("every 2xx carries RateLimit, RateLimit-Policy and X-RateLimit-*; remaining falls by one per request of a burst (RL-T02)", async () => {
    assert.deepEqual(limitHeaders(await get(acct.testKey)), {
      policy: '"default";q=120;w=60', ratelimit: '"default";r=119;t=1', limit: "120", remaining: "119", reset: epochIn(1),
    });
    let last = limitHeaders(await get(acct.testKey));
    for (let i = 3; i <= 60; i++) {
      const h = limitHeaders(await get(acct.testKey));
      assert.equal(Number(h.remaining), Number(last.remaining) - 1);
      assert.ok(Number(h.reset) >= Number(last.reset));
      last = h;
    }
    // 60 requests spent: the bucket is whole again after 60 × 500 ms, which X-RateLimit-Reset
    // (GitHub style, epoch seconds) and the draft's t both say.
    assert.deepEqual(last, { policy: '"default";q=120;w=60', ratelimit: '"default";r=60;t=30', limit: "120", remaining: "60", reset: epochIn(30) });
    t.clock.advance(30_000);
    assert.equal((await get(acct.testKey)).headers["x-ratelimit-remaining"], "119");
    // Errors after auth carry them too.
    const bad = await t.call(acct.testKey, "GET", "/v1/numbers?colour=red");
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.headers.ratelimit, '"default";r=118;t=1');
  });

  it("accepted requests never exceed burst + elapsed/T, a 429 is only given when the bucket is spent, and a retry at Retry-After passes (RL-T03)", async () => {
    // Bursts of up to 13 requests at one instant, separated by short or long gaps.
    const gap = fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 2_000, max: 30_000 }));
    const bursts = fc.array(fc.record({ gap, size: fc.integer({ min: 1, max: 13 }) }), { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }), bursts, async (limit, arrivals) => {
        const key = await t.newKey(acct.id, "test", limit);
        t.clock.advance(3_600_000); // a fresh key; time only moves forward
        const tEff = Math.ceil(60_000 / limit); // the interval, allowing whole-millisecond rounding up
        const accepted: number[] = [];
        const spent = (now: number) => accepted.some((ti, i) => (accepted.length - i + 1) * tEff > limit * tEff + (now - ti));
        for (const gap of arrivals.flatMap((b) => [b.gap, ...Array<number>(b.size - 1).fill(0)])) {
          t.clock.advance(gap);
          let res = await get(key);
          assert.equal(res.headers["ratelimit-policy"], `"default";q=${limit};w=60`);
          if (res.statusCode === 429) {
            assert.ok(spent(t.clock.now()), `429 with budget left at ${accepted.length} accepted`);
            const wait = Number(res.headers["retry-after"]);
            assert.ok(Number.isInteger(wait) && wait >= 1);
            assert.equal(res.headers.ratelimit, `"default";r=0;t=${wait}`); // Retry-After ≥ t
            t.clock.advance(wait * 1000);
            res = await get(key);
          }
          assert.equal(res.statusCode, 200, res.body);
          accepted.push(t.clock.now());
        }
        // Integer form of (j − i + 1) ≤ burst + (t_j − t_i) / T with T = 60 000 / limit.
        for (const [i, ti] of accepted.entries()) {
          for (const [k, tj] of accepted.slice(i).entries()) {
            assert.ok((k + 1) * 60_000 <= limit * 60_000 + (tj - ti) * limit, `${k + 1} accepted in ${tj - ti} ms`);
          }
        }
      }),
      { seed: 20260611, numRuns: 30 },
    );
  });

  it("a key's own limit overrides the default: 9/min gives 9 at once, then 429 with Retry-After: 7 (ceil of 60/9 s)", async () => {
    const key = await t.newKey(acct.id, "live", 9);
    for (let i = 8; i >= 0; i--) {
      const res = await get(key);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers["x-ratelimit-remaining"], String(i));
      assert.equal(res.headers["ratelimit-policy"], '"default";q=9;w=60');
    }
    const denied = await get(key);
    assertError(denied, 429, "rate_limited");
    assert.equal(denied.headers["retry-after"], "7");
    assert.deepEqual(limitHeaders(denied), { policy: '"default";q=9;w=60', ratelimit: '"default";r=0;t=7', limit: "9", remaining: "0", reset: epochIn(7) });
    t.clock.advance(7_000);
    assert.equal((await get(key)).statusCode, 200);
    assertError(await get(key), 429, "rate_limited");
    assert.equal((await get(acct.liveKey)).headers["x-ratelimit-limit"], "120");
  });

  it("buckets are per key: exhausting one key leaves another account's key and the same account's other mode and keys untouched (RL-T04)", async () => {
    const other = await t.seedAccount("Other");
    const a = await t.newKey(acct.id, "test", 3);
    const [sameMode, live, foreign] = [await t.newKey(acct.id, "test", 3), await t.newKey(acct.id, "live", 3), await t.newKey(other.id, "test", 3)];
    for (let i = 0; i < 3; i++) assert.equal((await get(a)).statusCode, 200);
    assertError(await get(a), 429, "rate_limited");
    for (const k of [sameMode, live, foreign]) {
      const res = await get(k);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["x-ratelimit-remaining"], "2");
    }
    assertError(await get(a), 429, "rate_limited");
  });

  it("failed authentications from one IP turn from 401 into 429 after AUTH_FAILURE_LIMIT_PER_MINUTE; other IPs unaffected (RL-T05)", async () => {
    const bad = fc.sample(fc.oneof(fc.constant(null), fc.string(), fc.constantFrom("test", "live").map((m) => generateKey(m as "test"))), { seed: 7, numRuns: 1000 });
    const codes: number[] = [];
    for (const key of bad) {
      const headers = key === null ? {} : { authorization: `Bearer ${key}` };
      codes.push((await t.app.inject({ method: "GET", url: "/v1/numbers", headers })).statusCode);
    }
    assert.deepEqual(codes.slice(0, 30), Array(30).fill(401));
    assert.deepEqual(codes.slice(30), Array(970).fill(429));
    const blocked = await t.call(generateKey("test"), "GET", "/v1/numbers");
    assertError(blocked, 429, "rate_limited", IP_LIMITED);
    assert.equal(blocked.headers["retry-after"], "2");
    // The limiter runs before the key lookup: from this IP even a valid key waits.
    assertError(await get(acct.testKey), 429, "rate_limited", IP_LIMITED);
    assertError(await get(generateKey("test"), "10.0.0.2"), 401, "unauthorized");
    assert.equal((await get(acct.testKey, "10.0.0.2")).statusCode, 200);
    t.clock.advance(2_000);
    assertError(await t.call(generateKey("live"), "GET", "/v1/numbers"), 401, "unauthorized");
    assertError(await t.call(generateKey("live"), "GET", "/v1/numbers"), 429, "rate_limited", IP_LIMITED);
  });

  it("20 concurrent requests on a 5/min key: exactly 5 pass, with remaining 4…0 (RL-R1)", async () => {
    const key = await t.newKey(acct.id, "test", 5);
    const all = await Promise.all(Array.from({ length: 20 }, () => get(key)));
    const passed = all.filter((r) => r.statusCode === 200);
    assert.deepEqual(passed.map((r) => r.headers["x-ratelimit-remaining"]).sort(), ["0", "1", "2", "3", "4"]);
    for (const r of all.filter((r) => r.statusCode !== 200)) assertError(r, 429, "rate_limited");
  });

  it("successful authentications do not spend the per-IP failure budget (RL-T05)", async () => {
    for (let i = 0; i < 29; i++) assertError(await t.call(generateKey("test"), "GET", "/v1/numbers"), 401, "unauthorized");
    for (let i = 0; i < 50; i++) assert.equal((await get(acct.testKey)).statusCode, 200);
    assertError(await t.call(generateKey("test"), "GET", "/v1/numbers"), 401, "unauthorized");
    assertError(await t.call(generateKey("test"), "GET", "/v1/numbers"), 429, "rate_limited", IP_LIMITED);
  });
});

describe("rate limit and the layers around it", () => {
  it("429 does not burn an Idempotency-Key: after Retry-After the same key gets 202 (RL-T06)", async () => {
    const t = await buildNotesApp({ config: { RATE_LIMIT_PER_MINUTE: 2 } });
    try {
      const acct = await t.seedAccount();
      const post = () => t.call(acct.testKey, "POST", "/v1/test_notes", { text: "hi" }, { "idempotency-key": "RL6" });
      assert.equal((await t.call(acct.testKey, "GET", "/v1/numbers")).statusCode, 200);
      assert.equal((await t.call(acct.testKey, "GET", "/v1/numbers")).statusCode, 200);
      const limited = await post();
      assertError(limited, 429, "rate_limited");
      assert.equal(limited.headers["retry-after"], "30");
      assert.deepEqual([await t.count("test_notes"), await t.count("idempotency_keys"), t.fx.creates], [0, 0, 0]);
      t.clock.advance(30_000);
      assert.equal((await post()).statusCode, 202);
      t.clock.advance(30_000);
      assert.equal((await post()).statusCode, 200);
      assert.equal(await t.count("test_notes"), 1);
    } finally {
      await t.close();
    }
  });

  it("40 concurrent bad keys from one IP with AUTH_FAILURE_LIMIT_PER_MINUTE=5: exactly 5 get 401, 35 get 429 (RL-T05)", async () => {
    const t = await buildTestApp({ config: { AUTH_FAILURE_LIMIT_PER_MINUTE: 5 } });
    try {
      const all = await Promise.all(Array.from({ length: 40 }, () => t.call(generateKey("test"), "GET", "/v1/numbers")));
      const limited = all.filter((r) => r.statusCode === 429);
      assert.equal(all.filter((r) => r.statusCode === 401).length, 5);
      assert.equal(limited.length, 35);
      for (const r of limited) {
        assertError(r, 429, "rate_limited", IP_LIMITED);
        assert.equal(r.headers["retry-after"], "12");
      }
    } finally {
      await t.close();
    }
  });

  /** A limiter whose store fails: peek works (the per-IP check passes), take throws `err`. */
  class FailingLimiter implements RateLimiter {
    private readonly mem = new MemoryRateLimiter();
    constructor(private readonly err: Error) {}
    async take(): Promise<never> {
      throw this.err;
    }
    peek(bucket: string, policy: GcraPolicy, now: number) {
      return this.mem.peek(bucket, policy, now);
    }
  }

  for (const [what, err, status, code] of [
    ["a lost connection", Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:5432 at /srv/app/pg.js"), { code: "ECONNREFUSED" }), 503, "unavailable"],
    ["any other store error", Object.assign(new Error('relation "rate_limits" does not exist: update rate_limits set tat = $1'), { code: "42P01" }), 500, "internal_error"],
  ] as const) {
    it(`the limiter store failing with ${what} fails closed with a generic ${status} ${code}; the handler never runs (RL-T07)`, async () => {
      const t = await buildNotesApp({ limiter: new FailingLimiter(err) });
      try {
        const acct = await t.seedAccount();
        const res = await t.call(acct.testKey, "POST", "/v1/test_notes", { text: "hi" }, { "idempotency-key": "RL7" });
        assertError(res, status, code);
        assert.doesNotMatch(res.body, /ECONNREFUSED|10\.1\.2\.3|5432|\/srv|rate_limits|relation|update|42P01|stack/i);
        assert.equal(res.headers.ratelimit, undefined);
        assert.deepEqual([await t.count("test_notes"), await t.count("idempotency_keys"), t.fx.creates], [0, 0, 0]);
      } finally {
        await t.close();
      }
    });
  }
});
