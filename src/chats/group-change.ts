import type { ChatsTable } from "../db/schema.js";
import type { Chat } from "./schemas.js";
import { toChat } from "./store.js";

/**
 * A change to a group, whoever made it: through the API (rename, add, remove) or on the network
 * (a member renamed the group, added or removed someone, or left). Both paths go through
 * `changedGroup`, so they agree on what a change is and when it is a no-op.
 */
export type GroupChange =
  | { type: "renamed"; title: string | null }
  | { type: "participant_added"; handle: string }
  | { type: "participant_removed"; handle: string };

/** What a `chat.updated` event adds to the chat object: what changed, and who changed it. */
export interface ChatChange {
  type: GroupChange["type"];
  /** The participant added or removed; null for a rename. */
  handle: string | null;
  /** The title before a rename; null for participant changes. */
  previous_title: string | null;
  /** Your number for a change made through the API; the member who made it on the network; null when the network does not say. */
  by: string | null;
  source: "api" | "network";
}

/** `chat.updated` data: the chat as it is after the change, then `change`. */
export type ChatUpdated = Chat & { change: ChatChange };

export const participantsOf = (chat: Pick<ChatsTable, "participants">): string[] => JSON.parse(chat.participants) as string[];

/**
 * The chat's columns after `change`, or null when it changes nothing: the same title, a member
 * who is already in, someone who is not in, or our own number (we are never in our participant
 * list). Devices repeat themselves and races between API and network land here, so a repeat is
 * silently nothing, never a second event.
 */
export function changedGroup(chat: ChatsTable, change: GroupChange): Pick<ChatsTable, "title" | "participants"> | null {
  const participants = participantsOf(chat);
  switch (change.type) {
    case "renamed":
      return change.title === chat.title ? null : { title: change.title, participants: chat.participants };
    case "participant_added":
      if (change.handle === chat.from_handle || participants.includes(change.handle)) return null;
      return { title: chat.title, participants: JSON.stringify([...participants, change.handle]) };
    case "participant_removed":
      if (!participants.includes(change.handle)) return null;
      return { title: chat.title, participants: JSON.stringify(participants.filter((p) => p !== change.handle)) };
  }
}

export function chatUpdatedData(before: ChatsTable, after: ChatsTable, change: GroupChange, by: string | null, source: ChatChange["source"]): ChatUpdated {
  return {
    ...toChat(after),
    change: {
      type: change.type,
      handle: change.type === "renamed" ? null : change.handle,
      previous_title: change.type === "renamed" ? before.title : null,
      by,
      source,
    },
  };
}
