import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gcra } from "./gcra.js";

describe("gcra", () => {
  const policy = { limit: 120, periodMs: 60_000 };

  it("allows a full burst, denies the next with the exact wait, then allows one per interval", () => {
    let tat: number | undefined;
    for (let i = 0; i < 120; i++) {
      const d = gcra(tat, 0, policy);
      assert.equal(d.allowed, true, `request ${i + 1}`);
      assert.equal(d.remaining, 119 - i);
      tat = d.tat;
    }
    const denied = gcra(tat, 0, policy);
    assert.equal(denied.allowed, false);
    assert.equal(denied.retryAfterMs, 500);
    assert.equal(gcra(tat, 499, policy).allowed, false);
    assert.equal(gcra(tat, 500, policy).allowed, true);
  });

  it("refills to the full burst after a quiet period", () => {
    let tat: number | undefined;
    for (let i = 0; i < 120; i++) tat = gcra(tat, 0, policy).tat;
    assert.equal(gcra(tat, 60_000, policy).remaining, 119);
  });
});
