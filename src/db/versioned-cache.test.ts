import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAccount, setAccountActive } from "../accounts/store.js";
import { ManualClock } from "../clock.js";
import { freshDb } from "../../test/helpers.js";
import { VersionedCache } from "./versioned-cache.js";

describe("VersionedCache", () => {
  it("serves a hit while nothing changed and reloads after any write; never caches without a token", async () => {
    const db = await freshDb();
    try {
      const clock = new ManualClock();
      const account = await createAccount(db.kysely, clock, "A");
      const cache = new VersionedCache<boolean>(db);
      let loads = 0;
      const active = () =>
        cache.get(account.id, async () => {
          loads++;
          return (await db.kysely.selectFrom("accounts").select("active").where("id", "=", account.id).executeTakeFirstOrThrow()).active === 1;
        });
      assert.equal(await active(), true);
      assert.equal(await active(), true);
      assert.equal(loads, db.version() === null ? 2 : 1);
      await setAccountActive(db.kysely, clock, account.id, false);
      assert.equal(await active(), false);
    } finally {
      await db.drop();
    }
  });
});
