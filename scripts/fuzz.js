#!/usr/bin/env node
// npm run fuzz: the OpenAPI fuzzer (FILES below) at length — FUZZ_RUNS=2000 unless set, and
// a random seed, printed before and after the run so a failure can be replayed exactly:
//   FUZZ_SEED=<seed> FUZZ_RUNS=<runs> npm run fuzz
// Set in the child's environment here rather than in the npm script line, so it works in any
// shell. Extra arguments are passed on (e.g. `npm run fuzz -- --test-name-pattern=P07`).
import { spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";

const FILES = ["test/fuzz-requests.test.ts", "test/fuzz-model.test.ts", "test/fuzz-races.test.ts"];

const runs = process.env.FUZZ_RUNS || "2000";
const seed = process.env.FUZZ_SEED || String(randomInt(2 ** 31 - 1));
const replay = `FUZZ_SEED=${seed} FUZZ_RUNS=${runs} npm run fuzz`;
console.log(`fuzz: FUZZ_RUNS=${runs} FUZZ_SEED=${seed} (replay with: ${replay})`);
const res = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...process.argv.slice(2), ...FILES], {
  stdio: "inherit",
  env: { ...process.env, FUZZ_RUNS: runs, FUZZ_SEED: seed },
});
console.log(`fuzz: ${res.status === 0 ? "passed" : "FAILED"} with FUZZ_SEED=${seed} FUZZ_RUNS=${runs} (replay with: ${replay})`);
process.exit(res.status ?? 1);
