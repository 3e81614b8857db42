import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { iso, type Clock } from "../clock.js";
import type { Db } from "../db/client.js";
import { ApiError } from "../errors.js";

/** What a signed URL lets its holder do: read the bytes, or upload them (a presigned PUT). */
export type UrlAction = "GET" | "PUT";

/** Who a download URL is for: an API response (short-lived) or a webhook payload (outlives the retry schedule). */
export type UrlPurpose = "response" | "event";

export interface UrlOptions {
  secret: Buffer;
  clock: Clock;
  /** This server's address as clients reach it, without a trailing slash; read at signing time. */
  baseUrl: () => string;
  responseTtlSeconds: number;
  eventTtlSeconds: number;
}

/**
 * Signed attachment URLs: `<base>/v1/attachments/:id/content?expires=<unix s>&signature=<b64url>`,
 * HMAC-SHA256 over (action, id, expiry) with a server secret. They carry their own authority — no
 * API key — so they can be handed to a webhook receiver, a browser or a device back-end (WAHA
 * fetches media by URL). Altered or expired → 403 invalid_signature.
 */
export class AttachmentUrls {
  constructor(private readonly opts: UrlOptions) {}

  /** A download URL valid for the purpose's lifetime. */
  download(id: string, purpose: UrlPurpose): string {
    const ttl = purpose === "event" ? this.opts.eventTtlSeconds : this.opts.responseTtlSeconds;
    return this.url("GET", id, ttl).url;
  }

  /** A presigned upload URL and when it stops working. */
  upload(id: string): { url: string; expiresAt: string } {
    return this.url("PUT", id, this.opts.responseTtlSeconds);
  }

  /** Throws 403 invalid_signature unless `signature` is ours for (action, id, expires) and not expired. */
  verify(action: UrlAction, id: string, expires: string, signature: string): void {
    const expected = this.sign(action, id, expires);
    const given = Buffer.from(signature, "base64url");
    // Node's decoder ignores a final character's unused bits and stray characters: only the one
    // canonical spelling of the signature is accepted, so a URL cannot be altered and still pass.
    if (given.toString("base64url") !== signature || given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ApiError("invalid_signature", "The signature of this URL does not match.");
    }
    if (Number(expires) * 1000 <= this.opts.clock.now()) {
      throw new ApiError("invalid_signature", "This signed URL has expired. Get a fresh one with GET /v1/attachments/:id.");
    }
  }

  private url(action: UrlAction, id: string, ttlSeconds: number): { url: string; expiresAt: string } {
    const expiresMs = (Math.floor(this.opts.clock.now() / 1000) + ttlSeconds) * 1000;
    const expires = String(expiresMs / 1000);
    const signature = this.sign(action, id, expires).toString("base64url");
    return { url: `${this.opts.baseUrl()}/v1/attachments/${id}/content?expires=${expires}&signature=${signature}`, expiresAt: iso(expiresMs) };
  }

  private sign(action: UrlAction, id: string, expires: string): Buffer {
    return createHmac("sha256", this.opts.secret).update(`${action}\n${id.toLowerCase()}\n${expires}`).digest();
  }
}

const SECRET_NAME = "attachment_urls";

/**
 * The URL-signing key: the configured one, else one generated on first start and kept in the
 * database — every process of a cluster then signs and verifies alike, with nothing to copy.
 * Racing first starts both insert-or-ignore and then read the one row that won.
 */
export async function loadUrlSecret(db: Db, configured: string | undefined, clock: Clock): Promise<Buffer> {
  if (configured) return Buffer.from(configured, "utf8");
  await db.kysely
    .insertInto("server_secrets")
    .values({ name: SECRET_NAME, secret: randomBytes(32).toString("base64url"), created_at: iso(clock.now()) })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  const row = await db.kysely.selectFrom("server_secrets").select("secret").where("name", "=", SECRET_NAME).executeTakeFirstOrThrow();
  return Buffer.from(row.secret, "base64url");
}
