import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { walSync } from "./client.js";

/** A file handle whose datasync calls are recorded and finish only when the test says so. */
function fakeFile() {
  const calls: { done: () => void; startedAfter: number }[] = [];
  let commits = 0;
  const handle = {
    datasync: () => new Promise<void>((resolve) => calls.push({ done: resolve, startedAfter: commits })),
    close: async () => {},
  } as unknown as FileHandle;
  return { calls, commit: () => commits++, open: async () => handle };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("walSync (group commit durability off the event loop)", () => {
  it("a commit made while a sync runs waits for a sync that starts after it; later callers share that one", async () => {
    const f = fakeFile();
    const wal = walSync("unused", f.open);
    f.commit();
    let firstDone = false;
    const first = wal.sync().then(() => (firstDone = true));
    await tick();
    assert.equal(f.calls.length, 1);
    f.commit(); // committed while the first sync is already running
    let secondDone = false;
    const second = wal.sync().then(() => (secondDone = true));
    const third = wal.sync();
    f.calls[0]?.done();
    await first;
    await tick();
    assert.ok(firstDone);
    assert.equal(secondDone, false, "the second commit must not be answered by a sync that began before it");
    assert.equal(f.calls.length, 2, "one more sync for both waiting callers");
    assert.equal(f.calls[1]?.startedAfter, 2);
    f.calls[1]?.done();
    await Promise.all([second, third]);
    assert.equal(f.calls.length, 2);
  });

  it("really syncs a file, and a missing WAL (nothing written yet) is nothing to sync", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mb-wal-"));
    try {
      const missing = walSync(join(dir, "none-wal"));
      await missing.sync();
      await missing.close();
      const path = join(dir, "db-wal");
      writeFileSync(path, "frames");
      const wal = walSync(path);
      await Promise.all([wal.sync(), wal.sync(), wal.sync()]);
      await wal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
