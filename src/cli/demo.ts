import { createAccount } from "../accounts/store.js";
import type { Clock } from "../clock.js";
import type { Db } from "../db/client.js";
import { createKey } from "../keys/store.js";
import { addNumber } from "../numbers/store.js";

export const DEMO_NUMBER = "+15555550100";

/**
 * On the first start with an empty database: a demo account, one simulator number and a
 * test-mode key, so a new user can call the API within a minute. Returns the key (shown once),
 * or null when the database already has accounts.
 */
export async function createDemoIfEmpty(db: Db, clock: Clock): Promise<{ key: string; accountId: string } | null> {
  return db.transaction(async (trx) => {
    const any = await trx.selectFrom("accounts").select("id").limit(1).executeTakeFirst();
    if (any) return null;
    const account = await createAccount(trx, clock, "Demo");
    await addNumber(trx, clock, {
      accountId: account.id,
      handle: DEMO_NUMBER,
      channels: "imessage,sms",
      backend: "simulator",
      label: "Demo (simulator)",
    });
    const key = await createKey(trx, clock, { accountId: account.id, mode: "test" });
    return { key: key.key, accountId: account.id };
  });
}
