// ---- routes: tapback, edit and unsend of an existing message (Private API) --------------------------
import { badRequest, imessageError, ok } from "./envelopes.js";
import { str } from "./http-io.js";
import type { Mac } from "./mac.js";
import { HTTP_SENT, serialize } from "./serializers.js";
import type { Ctx, Reply } from "./types.js";

/** The six classic tapbacks `react` accepts (§1.3 `MessageInterface.possibleReactions`), with the UI text of each. */
const REACTIONS: Record<string, [added: string, removed: string]> = {
  love: ["Loved", "Removed a heart from"], like: ["Liked", "Removed a like from"],
  dislike: ["Disliked", "Removed a dislike from"], laugh: ["Laughed at", "Removed a laugh from"],
  emphasize: ["Emphasized", "Removed an exclamation from"], question: ["Questioned", "Removed a question mark from"],
};

export function reactionText(reaction: string, targetText: string): string {
  const removed = reaction.startsWith("-");
  const texts = REACTIONS[reaction.replace(/^-/, "")];
  const verb = texts ? texts[removed ? 1 : 0] : "Reacted to";
  return `${verb} “${targetText}”`;
}

export async function react(mac: Mac, c: Ctx): Promise<Reply> {
  const chatGuid = str(c.body.chatGuid);
  const selected = str(c.body.selectedMessageGuid);
  const reaction = str(c.body.reaction);
  if (!chatGuid || !selected || !reaction) throw badRequest("The chatGuid, selectedMessageGuid and reaction fields are required.");
  if (!(reaction.replace(/^-/, "") in REACTIONS)) {
    throw badRequest(`The selected reaction is invalid. Must be one of: ${Object.keys(REACTIONS).flatMap((k) => [k, `-${k}`]).join(", ")}`);
  }
  const target = mac.db.findMessage(selected);
  if (!target) throw badRequest("Selected message does not exist!");
  if (mac.state.refuse.react) throw imessageError("Reaction Send Error", "Failed to send reaction! See attached message error code.");
  const chat = mac.db.findChat(chatGuid) ?? mac.db.mustChat(target.chatGuid);
  const partIndex = typeof c.body.partIndex === "number" ? c.body.partIndex : 0;
  const m = mac.db.addOutbound(chat, { text: reactionText(reaction, target.text), associatedMessageGuid: `p:${partIndex}/${target.guid}`, associatedMessageType: reaction });
  mac.state.sent.push(m);
  mac.hooks.fireNewMessage(m, null);
  return ok("Reaction sent!", serialize(mac.db, m, HTTP_SENT));
}

export async function edit(mac: Mac, c: Ctx): Promise<Reply> {
  const edited = str(c.body.editedMessage);
  if (!edited || !str(c.body.backwardsCompatibilityMessage)) throw badRequest("The editedMessage and backwardsCompatibilityMessage fields are required.");
  const m = mac.db.findMessage(c.params[0] ?? "");
  if (!m) throw badRequest("Selected message does not exist!");
  if (mac.state.refuse.edit || !m.isFromMe) throw imessageError("Edit Message Error", "Failed to edit message! See attached message error code.");
  m.text = edited;
  m.dateEdited = mac.now();
  mac.hooks.fireUpdated(m, true);
  return ok("Message edited!", serialize(mac.db, m, HTTP_SENT));
}

export async function unsend(mac: Mac, c: Ctx): Promise<Reply> {
  const m = mac.db.findMessage(c.params[0] ?? "");
  if (!m) throw badRequest("Selected message does not exist!");
  if (mac.state.refuse.unsend || !m.isFromMe) throw imessageError("Unsend Message Error", "Failed to unsend message! See attached message error code.");
  mac.retract(m);
  return ok("Message unsent!", serialize(mac.db, m, HTTP_SENT));
}
