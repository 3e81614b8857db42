// The fake "Mac" behind the HTTP routes and the scripting methods: chat.db, its webhooks, the scripted
// send faults, and the changes that both the API and a test can cause.
import { ChatDb } from "./chat-db.js";
import { imessageError } from "./envelopes.js";
import { SendFaults } from "./send-faults.js";
import { NEW_MESSAGE, serialize } from "./serializers.js";
import type { FakeChat, FakeMessage, FakeState } from "./types.js";
import { WebhookEmitter } from "./webhooks.js";

const PA_GATE = "Please make sure you have completed the setup for the Private API, and your helper is connected!";

export class Mac {
  readonly db: ChatDb;
  readonly hooks: WebhookEmitter;
  readonly faults = new SendFaults();

  constructor(readonly state: FakeState, readonly now: () => number) {
    this.db = new ChatDb(state, now);
    this.hooks = new WebhookEmitter(state, this.db);
  }

  /** `middleware/privateApiMiddleware.ts` (the sentence is the envelope's message, the detail the error's). */
  requirePrivateApi(): void {
    if (!this.state.privateApi) throw imessageError(PA_GATE, "iMessage Private API is not enabled!");
    if (!this.state.helperConnected) throw imessageError(PA_GATE, "iMessage Private API Helper is not connected!");
  }

  retract(m: FakeMessage): void {
    // Apple marks an unsend by bumping date_edited and emptying the parts (BB waits on dateEdited, §1.3);
    // dateRetracted is set too, so both signals of §1.4 ("Unsend") are present.
    m.dateEdited = this.now();
    m.dateRetracted = m.dateEdited;
    m.text = "";
    this.hooks.fireUpdated(m, true);
  }

  /** A group change row (§1.4, `MessagePoller.handleGroupChanges`) applied to the chat, then announced. */
  groupChange(chat: FakeChat, actor: string, c: { kind: "rename"; title: string } | { kind: "added" | "removed" | "left"; address: string }): FakeMessage {
    const fromMe = actor === "";
    let m: FakeMessage;
    let event: string;
    if (c.kind === "rename") {
      chat.displayName = c.title;
      m = this.db.addRow({ chatGuid: chat.guid, isFromMe: fromMe, handle: actor, itemType: 2, groupTitle: c.title });
      event = "group-name-change";
    } else if (c.kind === "left") {
      chat.participants = chat.participants.filter((p) => p !== c.address);
      // participant-left: the leaver is the row's own handle; otherHandle stays 0.
      m = this.db.addRow({ chatGuid: chat.guid, isFromMe: false, handle: c.address, itemType: 3, groupActionType: 0 });
      event = "participant-left";
    } else {
      if (c.kind === "added" && !chat.participants.includes(c.address)) chat.participants.push(c.address);
      if (c.kind === "removed") chat.participants = chat.participants.filter((p) => p !== c.address);
      // otherHandle is only a handle ROWID, as in BB; the connector re-reads GET /chat/:guid?with=participants.
      m = this.db.addRow({
        chatGuid: chat.guid, isFromMe: fromMe, handle: actor, itemType: 1, groupActionType: c.kind === "added" ? 0 : 1,
        otherHandle: this.db.handleId(c.address),
      });
      event = c.kind === "added" ? "participant-added" : "participant-removed";
    }
    // The poller reports the row both as the group event and as an ordinary new message.
    this.hooks.fire(event, serialize(this.db, m, NEW_MESSAGE));
    this.hooks.fireNewMessage(m, null);
    return m;
  }
}
