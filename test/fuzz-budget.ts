/**
 * The fuzz budget, shared by every fuzz test file: FUZZ_RUNS (default 120) and FUZZ_SEED (default
 * fixed) scale and replay it; `npm run fuzz` runs 2,000 with a random seed it prints
 * (scripts/fuzz.js).
 */
import type fc from "fast-check";

export const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 120));
export const SEED = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== "" ? Number(process.env.FUZZ_SEED) : 20_261_128;
export const scaled = (share: number, min = 1) => Math.max(min, Math.round(RUNS * share));
export const params = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns, includeErrorInReport: true });
