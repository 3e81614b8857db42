// Reading request bodies (JSON or multipart) and writing replies, as the raw node:http server needs.
import type http from "node:http";
import { badRequest } from "./envelopes.js";
import type { Json, Reply, Upload } from "./types.js";

export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function parseBody(contentType: string | undefined, raw: Buffer): { body: Json; files: Record<string, Upload>; logged: unknown } {
  const type = contentType ?? "";
  if (type.startsWith("multipart/form-data")) {
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(type);
    const { fields, files } = parseMultipart(raw, boundary?.[1] ?? boundary?.[2] ?? "");
    const logged: Json = { ...fields };
    for (const [k, f] of Object.entries(files)) logged[k] = { filename: f.filename, mimeType: f.mimeType, size: f.data.length };
    return { body: fields, files, logged };
  }
  if (raw.length === 0) return { body: {}, files: {}, logged: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw badRequest("Invalid JSON body");
  }
  const body = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Json) : {};
  return { body, files: {}, logged: parsed };
}

/** A minimal multipart/form-data reader: split on the boundary, headers up to the blank line, content to the next CRLF--boundary. */
function parseMultipart(raw: Buffer, boundary: string): { fields: Record<string, string>; files: Record<string, Upload> } {
  const fields: Record<string, string> = {};
  const files: Record<string, Upload> = {};
  if (!boundary) throw badRequest("Missing multipart boundary");
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = raw.indexOf(delimiter);
  while (pos !== -1) {
    const start = pos + delimiter.length;
    if (raw.subarray(start, start + 2).toString() === "--") break;
    const next = raw.indexOf(Buffer.from(`\r\n--${boundary}`), start);
    if (next === -1) break;
    const part = raw.subarray(start + 2, next);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd !== -1) {
      const head = part.subarray(0, headerEnd).toString("utf8");
      const content = part.subarray(headerEnd + 4);
      const name = /\bname="([^"]*)"/i.exec(head)?.[1];
      const filename = /\bfilename="([^"]*)"/i.exec(head)?.[1];
      const mimeType = /content-type:\s*([^\r\n;]+)/i.exec(head)?.[1]?.trim() ?? "application/octet-stream";
      if (name !== undefined && filename !== undefined) files[name] = { filename, mimeType, data: Buffer.from(content) };
      else if (name !== undefined) fields[name] = content.toString("utf8");
    }
    pos = next + 2;
  }
  return { fields, files };
}

export function send(res: http.ServerResponse, reply: Reply): void {
  if (res.destroyed || res.writableEnded) return;
  if ("file" in reply) {
    const a = reply.file;
    res.writeHead(200, {
      "Content-Type": a.mimeType, "Content-Length": a.bytes.length,
      "Content-Disposition": `attachment; filename="${a.transferName.replace(/[^\x20-\x7e]|["\\]/g, "_")}"`,
    });
    res.end(a.bytes);
    return;
  }
  const text = JSON.stringify(reply.json);
  res.writeHead(Number(reply.json.status ?? 200), { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}
