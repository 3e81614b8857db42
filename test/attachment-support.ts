/**
 * Shared pieces of the attachment tests: an app whose attachment storage is a fresh temp folder,
 * multipart bodies built by hand (light-my-request takes a Buffer payload; no extra dependency),
 * calls through signed URLs (no API key), and images made with sharp.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import sharp from "sharp";
import type { Attachment } from "../src/attachments/schemas.js";
import type { TestApp, TestAppOptions } from "./helpers.js";
import { type Messaging, messagingApp } from "./messaging-helpers.js";

export type { Attachment };

export interface FilePart {
  filename?: string;
  type?: string;
  data: Buffer;
  /** The form field name (default "file"). */
  field?: string;
}

/** A multipart/form-data body: file parts, then plain fields. */
export function multipart(files: FilePart[], fields: Record<string, string> = {}): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----msgbubbles${randomBytes(8).toString("hex")}`;
  const chunks: Buffer[] = [];
  for (const f of files) {
    const name = f.filename === undefined ? "" : `; filename="${f.filename}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.field ?? "file"}"${name}\r\nContent-Type: ${f.type ?? "application/octet-stream"}\r\n\r\n`));
    chunks.push(f.data, Buffer.from("\r\n"));
  }
  for (const [k, v] of Object.entries(fields)) chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { "content-type": `multipart/form-data; boundary=${boundary}` } };
}

export interface AttachmentsTest extends Messaging {
  /** The folder the app stores attachment bytes in. */
  dir: string;
  /** POST /v1/attachments with the account's test key (or `key`). */
  upload(files: FilePart[], opts?: { key?: string; headers?: Record<string, string>; fields?: Record<string, string> }): Promise<LightMyRequestResponse>;
  /** Uploads one file and returns its attachment object (asserts 201). */
  uploadOne(file: FilePart, key?: string): Promise<Attachment>;
  /** A request to a signed URL: no API key, only the URL's path and query. */
  signed(url: string, method?: "GET" | "PUT", body?: Buffer, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** Every stored object file (not temporaries). */
  storedFiles(): Promise<string[]>;
}

/** A messaging app (account FROM, other account OTHER_FROM) whose attachments live in a temp folder. */
export async function attachmentsApp(opts: TestAppOptions = {}): Promise<AttachmentsTest> {
  const dir = await mkdtemp(join(tmpdir(), "mb-attachments-"));
  const m = await messagingApp({ ...opts, config: { ATTACHMENTS_DIR: dir, ...opts.config } });
  const t = m.t;
  const upload: AttachmentsTest["upload"] = (files, o = {}) => {
    const body = multipart(files, o.fields);
    return t.app.inject({ method: "POST", url: "/v1/attachments", headers: { authorization: `Bearer ${o.key ?? m.acct.testKey}`, ...body.headers, ...o.headers }, payload: body.payload });
  };
  return {
    ...m,
    dir,
    upload,
    async uploadOne(file, key) {
      const res = await upload([file], key ? { key } : {});
      assert.equal(res.statusCode, 201, res.body);
      const data = res.json().data as Attachment[];
      assert.equal(data.length, 1);
      return data[0] as Attachment;
    },
    signed(url, method = "GET", body, headers = {}) {
      const u = new URL(url);
      return t.app.inject({ method, url: u.pathname + u.search, headers, ...(body ? { payload: body } : {}) });
    },
    async storedFiles() {
      return listFiles(join(dir, "objects"));
    },
    async close() {
      await m.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name))));
    else out.push(e.name);
  }
  return out;
}

/** A small real PNG. */
export async function png(width = 8, height = 8): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
}

/** A PNG of random noise: incompressible, so it is large for its size in pixels. */
export async function noisyPng(width: number, height: number): Promise<Buffer> {
  return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

/** The first bytes of an MP4 (an `ftyp` box of brand isom), padded to `size` bytes. */
export function mp4(size: number): Buffer {
  const head = Buffer.from([0, 0, 0, 0x18, 0x66, 0x74, 0x79, 0x70, 0x69, 0x73, 0x6f, 0x6d, 0, 0, 0x02, 0, 0x69, 0x73, 0x6f, 0x6d, 0x69, 0x73, 0x6f, 0x32]);
  return Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
}

/** The first Ogg page of an Opus stream (how voice notes are encoded), padded to `size` bytes. */
export function opus(size: number): Buffer {
  // 27-byte page header (capture pattern, version, "first page" flag, zeroed positions), one
  // segment of 19 bytes, then the OpusHead packet.
  const head = Buffer.concat([Buffer.from("OggS"), Buffer.from([0, 2]), Buffer.alloc(20), Buffer.from([1, 19]), Buffer.from("OpusHead"), Buffer.from([1, 1])]);
  return Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
}

/** A message object's attachments, typed (the message schema embeds them by $ref). */
export function attachmentsOf(message: { attachments: unknown[] }): Attachment[] {
  return message.attachments as Attachment[];
}

/** The account's simulator media history for one message. */
export async function mediaOf(t: TestApp, messageId: string) {
  return t.db.kysely.selectFrom("simulator_attachments").selectAll().where("message_id", "=", messageId).orderBy("position").execute();
}
