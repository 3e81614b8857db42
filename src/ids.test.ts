import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isUuid, requestId, uuidv7 } from "./ids.js";

describe("ids", () => {
  it("uuidv7: version 7, RFC variant, and strictly increasing even within one millisecond", () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7(1_700_000_000_000));
    for (const id of ids) {
      assert.ok(isUuid(id));
      assert.equal(id[14], "7");
      assert.match(id[19] ?? "", /[89ab]/);
    }
    const sorted = [...ids].sort();
    assert.deepEqual(ids, sorted);
    assert.equal(new Set(ids).size, ids.length);
  });

  it("uuidv7 never goes backwards when the clock does", () => {
    const a = uuidv7(1_800_000_000_000);
    const b = uuidv7(1_700_000_000_000);
    assert.ok(b > a);
  });

  it("request ids are req_ + 32 hex", () => {
    assert.match(requestId(), /^req_[0-9a-f]{32}$/);
  });
});
