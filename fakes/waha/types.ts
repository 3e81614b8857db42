/** The records the fake keeps per device, and the shapes its request plumbing passes between layers. */

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
