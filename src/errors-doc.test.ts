import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ERRORS } from "./errors.js";

// docs/errors.md is the public list of codes; it must match the table the code answers with.
describe("docs/errors.md", () => {
  const doc = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
  const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])] as const);

  it("lists every code of src/errors.ts with its HTTP status, and no other", () => {
    const documented = Object.fromEntries(rows);
    const actual = Object.fromEntries(Object.entries(ERRORS).map(([code, e]) => [code, e.status]));
    assert.deepEqual(documented, actual);
  });

  it("lists each code once", () => {
    assert.equal(new Set(rows.map(([c]) => c)).size, rows.length);
  });
});
