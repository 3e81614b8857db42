// ---- chat.db model ------------------------------------------------------------------------------------
import { randomInt, randomUUID } from "node:crypto";
import { imessageError, notFound } from "./envelopes.js";
import type { FakeAttachment, FakeChat, FakeMessage, FakeState, Service } from "./types.js";

const uuid = () => randomUUID().toUpperCase();
export const parseDm = (guid: string) => {
  const m = /^(iMessage|SMS|any);-;(.+)$/.exec(guid);
  return m?.[2] ? { service: (m[1] === "SMS" ? "SMS" : "iMessage") as Service, address: m[2] } : undefined;
};
export const isGroupGuid = (guid: string) => guid.includes(";+;");

export class ChatDb {
  readonly smsDelivered = new WeakSet<FakeMessage>();
  private readonly rowIds = new WeakMap<object, number>();
  private nextRowId = 1;
  private readonly handleIds = new Map<string, number>();

  constructor(private readonly state: FakeState, private readonly now: () => number) {}

  addRow(p: Partial<FakeMessage> & Pick<FakeMessage, "chatGuid" | "isFromMe" | "handle">): FakeMessage {
    const m: FakeMessage = {
      guid: uuid(), tempGuid: null, text: "", dateCreated: this.now(), dateDelivered: null, dateRead: null, dateEdited: null,
      dateRetracted: null, error: 0, associatedMessageGuid: null, associatedMessageType: null, expressiveSendStyleId: null,
      threadOriginatorGuid: null, isAudioMessage: false, attachments: [], itemType: 0, groupTitle: null, groupActionType: 0,
      otherHandle: 0, ...p,
    };
    this.rowIds.set(m, this.nextRowId++);
    this.state.messages.push(m);
    return m;
  }

  /** An outbound row: in a DM its handle is the recipient; in a group, no handle (handle_id 0). */
  addOutbound(chat: FakeChat, p: Partial<FakeMessage>): FakeMessage {
    return this.addRow({ ...p, chatGuid: chat.guid, isFromMe: true, handle: chat.style === 45 ? (chat.participants[0] ?? "") : "" });
  }

  newAttachment(name: string, mimeType: string, bytes: Buffer): FakeAttachment {
    const a = { guid: uuid(), transferName: name, mimeType, bytes };
    this.rowIds.set(a, this.nextRowId++);
    return a;
  }

  /** chat.db lookup; 1:1 GUIDs match across `iMessage;-;`, `SMS;-;` and `any;-;` (§0.6), same service first. */
  findChat(guid: string): FakeChat | undefined {
    const exact = this.state.chats.get(guid);
    if (exact) return exact;
    const dm = parseDm(guid);
    if (!dm) return undefined;
    const same = [...this.state.chats.values()].filter((c) => parseDm(c.guid)?.address === dm.address);
    return same.find((c) => parseDm(c.guid)?.service === dm.service) ?? same[0];
  }

  chatForSend(guid: string): FakeChat {
    if (isGroupGuid(guid)) {
      const chat = this.findChat(guid);
      if (!chat) throw notFound("Chat does not exist!");
      return chat;
    }
    const dm = parseDm(guid);
    if (!dm) throw imessageError("Message Send Error", `Invalid chat GUID: ${guid}`);
    return this.ensureDm(dm.service, dm.address);
  }

  /** The 1:1 chat for (service, address), created on first use under the form chat.db stores (§0.6, macOS 26 `any;-;`). */
  ensureDm(service: Service, address: string): FakeChat {
    const existing = [...this.state.chats.values()].find((c) => { const d = parseDm(c.guid); return d?.address === address && d.service === service; });
    if (existing) return existing;
    const guid = service === "SMS" ? `SMS;-;${address}` : `${this.state.chatGuidPrefix};-;${address}`;
    return this.putChat({ guid, displayName: null, participants: [address], style: 45 });
  }

  ensureGroup(guid: string, member: string): FakeChat {
    return this.state.chats.get(guid) ?? this.putChat({ guid, displayName: null, participants: [member], style: 43 });
  }

  createGroup(addresses: string[]): FakeChat {
    const guid = `iMessage;+;chat${randomInt(1e9, 1e10 - 1)}${randomInt(1e8, 1e9 - 1)}`;
    return this.putChat({ guid, displayName: null, participants: [...new Set(addresses)], style: 43 });
  }

  private putChat(chat: FakeChat): FakeChat {
    this.state.chats.set(chat.guid, chat);
    this.rowIds.set(chat, this.nextRowId++);
    return chat;
  }

  mustChat(guid: string): FakeChat {
    const chat = this.findChat(guid);
    if (!chat) throw new Error(`FakeBlueBubbles: no chat ${guid}`);
    return chat;
  }

  findMessage(guid: string): FakeMessage | undefined {
    return this.state.messages.find((m) => m.guid === guid);
  }

  mustFind(guid: string): FakeMessage {
    const m = this.findMessage(guid);
    if (!m) throw new Error(`FakeBlueBubbles: no message ${guid}`);
    return m;
  }

  serviceOf(chatGuid: string): Service {
    return chatGuid.startsWith("SMS;") ? "SMS" : "iMessage";
  }

  rowId(o: object): number {
    return this.rowIds.get(o) ?? 0;
  }

  handleId(address: string): number {
    let id = this.handleIds.get(address);
    if (id === undefined) { id = this.handleIds.size + 1; this.handleIds.set(address, id); }
    return id;
  }
}
