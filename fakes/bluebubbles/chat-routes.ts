// ---- routes: chats ------------------------------------------------------------------------------------
import { badRequest, imessageError, notFound, ok, serverError } from "./envelopes.js";
import { str } from "./http-io.js";
import type { Mac } from "./mac.js";
import { HTTP_SENT, parseWith, serialize, serializeChat } from "./serializers.js";
import type { Ctx, Reply, Service } from "./types.js";

/** `ChatInterface.create` (§1.3): groups need the Private API; a first message is always required. */
export async function chatNew(mac: Mac, c: Ctx): Promise<Reply> {
  const addresses = c.body.addresses;
  if (!Array.isArray(addresses) || addresses.length === 0 || !addresses.every((a) => typeof a === "string" && a)) {
    throw badRequest("The addresses field is required and must be an array of addresses.");
  }
  const method = str(c.body.method) ?? "apple-script";
  const service: Service = c.body.service === "SMS" ? "SMS" : "iMessage";
  const message = str(c.body.message);
  const tempGuid = str(c.body.tempGuid) || null;
  const pa = method === "private-api" && mac.state.privateApi && mac.state.helperConnected;
  if (addresses.length > 1 && !pa) throw serverError("Cannot create group chats on macOS Big Sur or newer!");
  if (!message) throw serverError(`A message is required when creating chats ${method === "private-api" ? "with the Private API" : "on macOS Big Sur or newer"}!`);
  if (method === "private-api") mac.requirePrivateApi();
  if (mac.state.refuse.chatNew) throw imessageError("iMessage has encountered an error", "Failed to create chat!");
  const chat = addresses.length === 1 ? mac.db.ensureDm(service, addresses[0] as string) : mac.db.createGroup(addresses as string[]);
  const m = mac.db.addOutbound(chat, { text: message, tempGuid });
  mac.state.sent.push(m);
  mac.hooks.fireNewMessage(m, tempGuid);
  const first = { ...serialize(mac.db, m, { ...HTTP_SENT, chats: "omit" }), ...(tempGuid ? { tempGuid } : {}) };
  return ok("Successfully created chat!", { ...serializeChat(mac.db, chat, "load", false), messages: [first] });
}

export function getChat(mac: Mac, c: Ctx): Reply {
  const chat = mac.db.findChat(c.params[0] ?? "");
  if (!chat) throw notFound("Chat does not exist!");
  const withs = parseWith(c.query.with);
  const data = serializeChat(mac.db, chat, withs.includes("participants") ? "load" : "empty", false);
  if (withs.includes("lastmessage")) {
    const last = mac.state.messages.filter((m) => m.chatGuid === chat.guid).at(-1);
    data.lastMessage = last ? serialize(mac.db, last, { ...HTTP_SENT, chats: "empty" }) : null;
  }
  return ok("Success", data);
}

export function rename(mac: Mac, c: Ctx): Reply {
  const chat = mac.db.findChat(c.params[0] ?? "");
  if (!chat) throw notFound("Chat does not exist!");
  const displayName = str(c.body.displayName);
  if (!displayName) return ok("Chat not updated! No update information provided!", serializeChat(mac.db, chat, "load", false));
  if (chat.style !== 43 || chat.participants.length <= 1) throw imessageError("Cannot rename a non-group chat!", "Chat is not a group");
  if (mac.state.refuse.rename) throw imessageError("Chat update executed with errors!", "Failed to set new display name!");
  // The Mac's own change lands in chat.db like anyone's: group-name-change + new-message with isFromMe.
  if (displayName !== chat.displayName) mac.groupChange(chat, "", { kind: "rename", title: displayName });
  return ok("Successfully updated the following fields: displayName", serializeChat(mac.db, chat, "load", false));
}

export function toggleParticipant(mac: Mac, c: Ctx, action: "add" | "remove"): Reply {
  const chat = mac.db.findChat(c.params[0] ?? "");
  if (!chat) throw notFound("Chat does not exist!");
  const address = str(c.body.address);
  if (!address) throw badRequest("The address field is required.");
  if (chat.style !== 43) throw serverError("Chat is not a group chat!");
  if (mac.state.refuse.participant) throw imessageError("iMessage has encountered an error", `Failed to ${action} participant!`);
  if (chat.participants.includes(address) === (action === "add")) {
    throw serverError(`Failed to ${action} participant to chat! Operation took longer than 5 seconds!`);
  }
  mac.groupChange(chat, "", { kind: action === "add" ? "added" : "removed", address });
  return ok("Success", serializeChat(mac.db, chat, "load", false));
}

export function markRead(mac: Mac, c: Ctx): Reply {
  const chat = mac.db.findChat(c.params[0] ?? "");
  if (!chat) throw notFound("Chat does not exist!");
  if (mac.state.refuse.read) throw imessageError("iMessage has encountered an error", "Failed to mark chat as read!");
  // §1.4: this is the Mac's own read state, not a recipient read receipt.
  mac.hooks.fire("chat-read-status-changed", { chatGuid: chat.guid, read: true });
  return ok("Successfully marked chat as read!");
}

export function setTyping(mac: Mac, c: Ctx, on: boolean): Reply {
  if (!mac.db.findChat(c.params[0] ?? "")) throw notFound("Chat does not exist!");
  if (mac.state.refuse.typing) throw imessageError("iMessage has encountered an error", `Failed to ${on ? "start" : "stop"} typing!`);
  return ok(`Successfully ${on ? "started" : "stopped"} typing!`);
}

export function availability(mac: Mac, c: Ctx): Reply {
  const address = c.query.address;
  if (!address) throw badRequest("The address field is required.");
  return ok("Successfully determined iMessage availability!", { available: mac.state.imessageAvailable(address) });
}
