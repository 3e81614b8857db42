import type { ActionOutcome, DeviceBackend, DeviceNumber, GroupRef } from "../backends/backend.js";
import { deviceNumber } from "../backends/registry.js";
import type { ChatsTable, NumbersTable } from "../db/schema.js";
import { ApiError, type ErrorCode } from "../errors.js";
import { emitEvents } from "../events/catalog.js";
import { normaliseHandle } from "../handles.js";
import { requireOnline } from "../messages/service.js";
import type { Scope } from "../messages/store.js";
import { type GroupChange, participantsOf } from "./group-change.js";
import type { Commit, GroupDeps } from "./group-create.js";
import { applyGroupChange } from "./group-store.js";
import { getChatRow } from "./store.js";

/**
 * Rename, add, remove: the API side of group changes. Each runs on the device first (the answer
 * is the network's verdict: 502 *_failed when it refuses, 503 device_offline), then writes the
 * change and its `chat.updated` event in one transaction. A 1:1 chat answers 409 not_a_group.
 */

type GroupCall = (backend: DeviceBackend, number: DeviceNumber, group: GroupRef) => Promise<ActionOutcome>;

async function groupOf(deps: GroupDeps, scope: Scope, id: string): Promise<{ chat: ChatsTable; number: NumbersTable }> {
  const chat = await getChatRow(deps.db.kysely, scope, id);
  if (chat.is_group !== 1) throw new ApiError("not_a_group", "This is a 1:1 chat; renames and participants apply to group chats only.");
  const number = await deps.db.kysely.selectFrom("numbers").selectAll().where("id", "=", chat.number_id).executeTakeFirst();
  if (!number) throw new ApiError("conflict", "The chat's number is no longer assigned to your account.");
  return { chat, number };
}

function handleOf(raw: string): string {
  const h = normaliseHandle(raw);
  if (!h) throw new ApiError("invalid_handle", "handle is not a valid E.164 phone number or email address.");
  return h.handle;
}

/** The device call, then the change with its event; `commit` joins the same transaction. */
async function changeOnDevice(deps: GroupDeps, scope: Scope, chat: ChatsTable, number: NumbersTable, failed: ErrorCode, call: GroupCall, change: GroupChange, commit?: Commit) {
  requireOnline(number, scope);
  const group: GroupRef = { chatDeviceId: chat.device_chat_id ?? "", channel: chat.channel ?? "imessage", participants: participantsOf(chat) };
  const outcome = await call(deps.backends.for(number, scope.mode), deviceNumber(number, scope.mode), group);
  if (!outcome.ok) throw new ApiError(outcome.offline ? "device_offline" : failed, outcome.message);
  return deps.db.transaction(async (trx) => {
    // Against the row as it is now, not as read before the device call: a network-side change
    // may have landed meanwhile. If the same change already did, there is no second event.
    const { chat: after, event } = await applyGroupChange(trx, deps.clock, chat.id, change, number.handle, "api");
    if (event) await emitEvents(trx, deps.clock, [event]);
    await commit?.(trx, after.id);
    return after;
  });
}

/** PATCH /v1/chats/:id. Renaming to the current title changes nothing: no device call, no event. */
export async function renameGroupChat(deps: GroupDeps, scope: Scope, id: string, title: string | null): Promise<ChatsTable> {
  const { chat, number } = await groupOf(deps, scope, id);
  if (title === chat.title) return chat;
  return changeOnDevice(deps, scope, chat, number, "rename_failed", (b, n, g) => b.renameGroup(n, g, title), { type: "renamed", title });
}

/** POST /v1/chats/:id/participants. Someone already in → 409 conflict; our own number → 400. */
export async function addGroupParticipant(deps: GroupDeps, scope: Scope, id: string, raw: string, commit: Commit): Promise<ChatsTable> {
  const { chat, number } = await groupOf(deps, scope, id);
  const handle = handleOf(raw);
  if (handle === number.handle) throw new ApiError("invalid_request", "handle is the group's own number.");
  if (participantsOf(chat).includes(handle)) throw new ApiError("conflict", `${handle} is already a participant.`);
  const change: GroupChange = { type: "participant_added", handle };
  return changeOnDevice(deps, scope, chat, number, "participant_add_failed", (b, n, g) => b.addParticipant(n, g, handle), change, commit);
}

/** DELETE /v1/chats/:id/participants/:handle. Someone not in the group → 404 not_found. */
export async function removeGroupParticipant(deps: GroupDeps, scope: Scope, id: string, raw: string): Promise<ChatsTable> {
  const { chat, number } = await groupOf(deps, scope, id);
  const handle = handleOf(raw);
  if (!participantsOf(chat).includes(handle)) throw new ApiError("not_found", `${handle} is not a participant of this chat.`);
  const change: GroupChange = { type: "participant_removed", handle };
  return changeOnDevice(deps, scope, chat, number, "participant_remove_failed", (b, n, g) => b.removeParticipant(n, g, handle), change);
}
