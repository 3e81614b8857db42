import type { Tx } from "../db/client.js";
import type { MessagesTable } from "../db/schema.js";
import { attachmentsByMessage } from "../attachments/store.js";
import { reactionsOf, toMessage } from "./store.js";

/** A message as an event carries it: the whole public object, reactions and attachments (with event-lived URLs) included. */
export async function messageEventData(trx: Tx, row: MessagesTable) {
  return toMessage(row, (await reactionsOf(trx, [row.id])).get(row.id), (await attachmentsByMessage(trx, [row], "event")).get(row.id));
}
