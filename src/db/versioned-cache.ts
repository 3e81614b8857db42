import type { Db } from "./client.js";

/**
 * A read cache that is exact, not merely short-lived: each entry remembers the database's change
 * token (Db.version) from before it was read, and counts only while the token is unchanged. Any
 * write — a key revoked by the CLI in another process, an account deactivated, a number added —
 * moves the token, so the next request reads afresh. Where the database offers no token, nothing
 * is cached. Bounded: cleared whole when full.
 */
export class VersionedCache<V> {
  private readonly entries = new Map<string, { version: string; value: V }>();

  constructor(
    private readonly db: Pick<Db, "version">,
    private readonly max = 10_000,
  ) {}

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const version = this.db.version();
    if (version === null) return load();
    const hit = this.entries.get(key);
    if (hit && hit.version === version) return hit.value;
    const value = await load();
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(key, { version, value });
    return value;
  }
}
