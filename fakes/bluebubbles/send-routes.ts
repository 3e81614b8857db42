// ---- routes: sending --------------------------------------------------------------------------------
import { badRequest, imessageError, ok } from "./envelopes.js";
import { str } from "./http-io.js";
import type { Mac } from "./mac.js";
import { HTTP_SENT, NEW_MESSAGE, serialize } from "./serializers.js";
import type { Ctx, FakeMessage, Json, Reply } from "./types.js";

const MIME_BY_EXT: Record<string, string> = {
  jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", heic: "image/heic", gif: "image/gif", mp4: "video/mp4",
  mov: "video/quicktime", caf: "audio/x-caf", m4a: "audio/x-m4a", mp3: "audio/mpeg", pdf: "application/pdf", txt: "text/plain",
};

/** `validateText` (§1.3): method inference, the AppleScript requirements, the in-flight tempGuid check. */
export async function sendText(mac: Mac, c: Ctx): Promise<Reply> {
  const { chatGuid, tempGuid, message, method, effectId, subject, selectedMessageGuid } = sendFields(c.body);
  if (typeof c.body.message !== "string") throw badRequest("The message field must be present and a string.");
  const resolved = effectId || subject || selectedMessageGuid || c.body.ddScan || c.body.attributedBody ? "private-api" : (method ?? "apple-script");
  if (resolved === "apple-script" && !tempGuid) throw badRequest("A 'tempGuid' is required when sending via AppleScript");
  if (resolved === "apple-script" && !message) throw badRequest("A 'message' is required when sending via AppleScript");
  if (resolved === "private-api" && !message && !subject) throw badRequest("A 'message' or 'subject' is required when sending via the Private API");
  if (tempGuid && mac.faults.inFlight.has(tempGuid)) throw badRequest(`Message is already queued to be sent! (Temp GUID: ${tempGuid})`);
  if (resolved === "private-api" && (!mac.state.privateApi || !mac.state.helperConnected)) {
    throw imessageError("Message Send Error", mac.state.privateApi ? "iMessage Private API Helper is not connected!" : "iMessage Private API is not enabled!");
  }
  const chat = mac.db.chatForSend(chatGuid);
  return completeSend(mac, "text", tempGuid, () => mac.db.addOutbound(chat, {
    text: message ?? "", tempGuid: tempGuid ?? null, expressiveSendStyleId: effectId ?? null, threadOriginatorGuid: selectedMessageGuid ?? null,
  }));
}

/** `validateAttachment` + `sendAttachment` (§1.3): multipart, file field `attachment`. */
export async function sendAttachment(mac: Mac, c: Ctx): Promise<Reply> {
  const { chatGuid, tempGuid, method, effectId, subject, selectedMessageGuid } = sendFields(c.body);
  const name = str(c.body.name);
  if (!name) throw badRequest("The name field is required.");
  const resolved = effectId || subject || selectedMessageGuid ? "private-api" : (method ?? "apple-script");
  if (resolved === "apple-script" && !tempGuid) throw badRequest("A 'tempGuid' is required when sending via AppleScript");
  if (tempGuid && mac.faults.inFlight.has(tempGuid)) throw badRequest("Attachment is already queued to be sent!");
  const file = c.files.attachment;
  if (!file || file.data.length === 0) throw badRequest("Attachment not provided or was empty!");
  if (resolved === "private-api" && (!mac.state.privateApi || !mac.state.helperConnected)) throw imessageError("Attachment Send Error", "iMessage Private API Helper is not connected!");
  const chat = mac.db.chatForSend(chatGuid);
  const mimeType = file.mimeType !== "application/octet-stream" ? file.mimeType : guessMime(name);
  return completeSend(mac, "attachment", tempGuid, () => mac.db.addOutbound(chat, {
    tempGuid: tempGuid ?? null, isAudioMessage: c.body.isAudioMessage === "true", expressiveSendStyleId: effectId ?? null,
    threadOriginatorGuid: selectedMessageGuid ?? null, attachments: [mac.db.newAttachment(name, mimeType, file.data)],
  }));
}

function sendFields(body: Json) {
  const chatGuid = str(body.chatGuid);
  if (!chatGuid) throw badRequest("The chatGuid field is required.");
  const method = str(body.method);
  if (method !== undefined && method !== "apple-script" && method !== "private-api") throw badRequest("The selected method is invalid.");
  const opt = (k: string) => str(body[k]) || undefined;
  return {
    chatGuid, method, tempGuid: opt("tempGuid"), message: str(body.message), effectId: opt("effectId"),
    subject: opt("subject"), selectedMessageGuid: opt("selectedMessageGuid"),
  };
}

/** After validation: a scripted failure (`failNextSends`), a scripted hang (`hangNextSends`) or a send. */
async function completeSend(mac: Mac, kind: "text" | "attachment", tempGuid: string | undefined, draft: () => FakeMessage): Promise<Reply> {
  const withTemp = (data: Json) => (tempGuid ? { ...data, tempGuid } : data);
  const code = mac.faults.failures.shift();
  if (code !== undefined) {
    // §1.1: a send failure is a 500 whose `data` is the Message with a non-zero `error`; the row exists in
    // chat.db (so it is in `messages`) but the network never carried it (so it is not in `sent`).
    const m = draft();
    m.error = code;
    mac.hooks.fire("message-send-error", withTemp(serialize(mac.db, m, NEW_MESSAGE)));
    const data = withTemp(serialize(mac.db, m, HTTP_SENT));
    if (kind === "text") throw imessageError("Message sent with an error. See attached message", "Message failed to send!", data);
    throw imessageError("Attachment Send Error", "Failed to send attachment! See attached message error code.", data);
  }
  const hang = mac.faults.hangs.shift();
  if (hang) {
    // §0.5 (BB #801): the HTTP call blocks, then answers 500 although the message went out. The send
    // promise never matched the row, so only the poller's new-message fires: without tempGuid.
    if (tempGuid) mac.faults.inFlight.add(tempGuid);
    try {
      if (hang.sent) { const m = draft(); mac.state.sent.push(m); mac.hooks.fireNewMessage(m, null); }
      await mac.faults.sleep(hang.ms);
    } finally {
      if (tempGuid) mac.faults.inFlight.delete(tempGuid);
    }
    throw imessageError("Message failed to send!", "Message send timeout");
  }
  const m = draft();
  mac.state.sent.push(m);
  mac.hooks.fireNewMessage(m, tempGuid ?? null);
  const data = serialize(mac.db, m, HTTP_SENT);
  // `messageRouter.ts`: sendText injects tempGuid into the response; sendAttachment does not.
  return kind === "text" ? ok("Message sent!", withTemp(data)) : ok("Attachment sent!", data);
}

function guessMime(name: string): string {
  return MIME_BY_EXT[name.split(".").pop()?.toLowerCase() ?? ""] ?? "application/octet-stream";
}
