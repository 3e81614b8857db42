/** The records the fake keeps per device, and the shapes its request plumbing passes between modules. */

export interface FakeWaMessage {
  id: string;
  chatId: string;
  from: string;
  to: string;
  fromMe: boolean;
  body: string;
  timestamp: number;
  ack: number;
  hasMedia: boolean;
  media: { mimetype: string; filename: string | null; data: Buffer } | null;
  replyTo: string | null;
  kind: "text" | "image" | "file" | "voice" | "video";
  edited: boolean;
  revoked: boolean;
  reactions: { from: string; text: string }[];
  participant: string | null;
}
export interface FakeWebhookConfig {
  url: string;
  events: string[];
  hmac?: { key: string } | null;
  retries?: unknown;
  customHeaders?: { name: string; value: string }[] | null;
}
export interface FakeSession {
  name: string;
  status: string;
  me: { id: string; pushName: string } | null;
  config: { webhooks?: FakeWebhookConfig[] | null; [key: string]: unknown };
}
export interface FakeGroup {
  id: string;
  subject: string;
  participants: string[];
}
/**
 * The public fields of FakeWaha that the internals use. They are read through the fake on every use, never copied,
 * because tests read and reassign them (`fake.refuse = {...}`, `fake.plus = false`).
 */
export interface FakeState {
  url: string;
  sessions: Map<string, FakeSession>;
  messages: FakeWaMessage[];
  sent: FakeWaMessage[];
  deliveries: { url: string; event: string; status: number | null; error: string | null }[];
  existing: (phoneDigits: string) => boolean;
  plus: boolean;
  rawSendResponses: boolean;
  groups: Map<string, FakeGroup>;
  refuse: { reaction?: boolean; edit?: boolean; revoke?: boolean; group?: boolean };
}
export type HangOpts = { ms: number; sent: boolean; status?: number };
export type InboundOpts = { from: string; text: string; groupId?: string; participant?: string; replyTo?: string; media?: { mimetype: string; filename: string; data: Buffer } };
export type GroupChange = { kind: "subject"; subject: string; by: string } | { kind: "add" | "remove"; participant: string; by: string };
export type Json = Record<string, unknown>;
export type Reply = { status?: number; body?: unknown; bytes?: { type: string; data: Buffer } };
export interface Ctx {
  method: string;
  path: string;
  params: string[];
  query: URLSearchParams;
  body: Json;
}
export type Handler = (c: Ctx) => Promise<Reply> | Reply;
