// The fake's data model and the shapes shared by its modules.
export interface FakeAttachment { guid: string; transferName: string; mimeType: string; bytes: Buffer }
export interface FakeMessage {
  guid: string; tempGuid: string | null; text: string; chatGuid: string; isFromMe: boolean;
  /** Address of the sender for inbound rows, of the recipient for outbound 1:1 rows ("" = me / none). */
  handle: string;
  dateCreated: number; dateDelivered: number | null; dateRead: number | null; dateEdited: number | null; dateRetracted: number | null;
  error: number; associatedMessageGuid: string | null; associatedMessageType: string | null; expressiveSendStyleId: string | null;
  threadOriginatorGuid: string | null; isAudioMessage: boolean; attachments: FakeAttachment[];
  itemType: number; groupTitle: string | null; groupActionType: number; otherHandle: number;
}
export interface FakeChat { guid: string; displayName: string | null; participants: string[]; style: 43 | 45 }
export interface FakeWebhook { id: number; url: string; events: string[] }
export interface FakeRequest { method: string; path: string; query: Record<string, string>; body: unknown }
export type Refusable = "react" | "edit" | "unsend" | "rename" | "participant" | "chatNew" | "read" | "typing";
export type Service = "iMessage" | "SMS";
export type Json = Record<string, unknown>;

/**
 * The public fields of FakeBlueBubbles that the internals use. They are read through the fake on every
 * use, never copied, because tests reassign them (`fake.webhooks = []`, `fake.refuse = {...}`).
 */
export interface FakeState {
  messages: FakeMessage[];
  sent: FakeMessage[];
  webhooks: FakeWebhook[];
  chats: Map<string, FakeChat>;
  privateApi: boolean;
  helperConnected: boolean;
  chatGuidPrefix: "iMessage" | "any";
  duplicateNewMessage: boolean;
  dropWebhooks: boolean;
  imessageAvailable: (address: string) => boolean;
  refuse: Partial<Record<Refusable, boolean>>;
  log: (line: string) => void;
}

export type Reply = { json: Json } | { file: FakeAttachment };
export interface Upload { filename: string; mimeType: string; data: Buffer }
export interface Ctx { params: string[]; query: Record<string, string>; body: Json; files: Record<string, Upload> }
export interface Route { method: string; pattern: RegExp; privateApi: boolean; run: (c: Ctx) => Reply | Promise<Reply> }
