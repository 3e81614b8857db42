import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Config } from "../config.js";

/**
 * Where attachment bytes live. Small on purpose, so that an object store (S3 and the like) can
 * implement it later: whole objects in and out as streams, never buffers.
 */
export interface AttachmentStorage {
  /**
   * Stores `data` under `key` and returns its size. Atomic: the object is visible under `key`
   * only once every byte is written and durable; on any error nothing is left behind.
   */
  put(key: string, data: Readable): Promise<number>;
  /** The object's bytes; rejects with code ENOENT when there is none. */
  get(key: string): Promise<Readable>;
  /** Removes the object; no error when it is already gone. */
  delete(key: string): Promise<void>;
  /** The object's size, or null when there is none. */
  size(key: string): Promise<number | null>;
}

// Keys are minted by the server (UUIDs plus a suffix), never taken from a client; the check keeps
// a bug from ever turning into a path outside the folder.
const KEY = /^[0-9A-Za-z][0-9A-Za-z._-]{0,200}$/;

function checkKey(key: string): string {
  if (!KEY.test(key) || key.includes("..")) throw new Error(`invalid storage key ${JSON.stringify(key)}`);
  return key;
}

/**
 * The default storage: files in a folder (by default under DATA_DIR). Every write goes to a
 * temporary name in `tmp/`, is fsynced (off the event loop, on libuv's pool) and then renamed into
 * place, so a reader — or a crash — never sees half a file. Objects are spread over 256
 * sub-folders by the last two characters of their key, which keeps folders small.
 */
export class LocalStorage implements AttachmentStorage {
  private readonly made = new Set<string>();

  constructor(readonly root: string) {}

  private objectPath(key: string): string {
    const k = checkKey(key);
    return join(this.root, "objects", k.slice(-2), k);
  }

  private tmpDir(): string {
    return join(this.root, "tmp");
  }

  /** mkdir -p once per folder and process: the folders are created lazily, on first write. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.made.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.made.add(dir);
  }

  async put(key: string, data: Readable): Promise<number> {
    const target = this.objectPath(key);
    const tmp = join(this.tmpDir(), `${key}.${randomBytes(6).toString("hex")}.part`);
    await Promise.all([this.ensureDir(this.tmpDir()), this.ensureDir(join(target, ".."))]);
    // Buffers of 256 KiB: few write calls, and memory per upload bounded whatever its size.
    // `flush`: fsync before close, on libuv's pool, so the file is durable before it is renamed.
    const out = createWriteStream(tmp, { flags: "wx", mode: 0o600, highWaterMark: 256 * 1024, flush: true });
    try {
      await pipeline(data, out);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    try {
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return out.bytesWritten;
  }

  async get(key: string): Promise<Readable> {
    const file = await open(this.objectPath(key), "r");
    return file.createReadStream({ highWaterMark: 256 * 1024 });
  }

  async delete(key: string): Promise<void> {
    await unlink(this.objectPath(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  async size(key: string): Promise<number | null> {
    try {
      return (await stat(this.objectPath(key))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  /** Removes temporary files older than `ageMs` (left by a crash in the middle of a write). */
  async sweepTemp(nowMs: number, ageMs: number): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir());
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      const p = join(this.tmpDir(), name);
      const s = await stat(p).catch(() => null);
      if (s && nowMs - s.mtimeMs > ageMs) {
        await unlink(p).catch(() => {});
        removed++;
      }
    }
    return removed;
  }
}

/** The storage configuration names: today always a folder (ATTACHMENTS_DIR or DATA_DIR/attachments). */
export function storageFromConfig(config: Config): LocalStorage {
  return new LocalStorage(resolve(config.ATTACHMENTS_DIR ?? join(config.DATA_DIR, "attachments")));
}
