/**
 * Standard Webhooks v1 signing (reliability.md §2.1, WH-R1/WH-R2): the `webhook-signature` header
 * is `v1,<base64 HMAC-SHA256>` per secret, space-separated, over `${msgId}.${timestamp}.${body}`.
 * Following the spec rather than inventing a scheme means customers can verify with the
 * standardwebhooks or svix libraries they already have.
 */
import { createHmac, randomBytes } from "node:crypto";

const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;
/** Standard Webhooks: secrets are 24 to 64 random bytes. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A new endpoint secret: "whsec_" + base64 of 32 random bytes. Shown to the customer once. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString("base64");
}

/** The HMAC key behind a `whsec_` secret. Throws on anything else: signing with a wrong key fails silently. */
function hmacKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : "";
  // Buffer.from(…, "base64") skips characters it does not know, so check the alphabet first.
  const key = BASE64.test(encoded) ? Buffer.from(encoded, "base64") : Buffer.alloc(0);
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new Error(`A webhook secret must be "${SECRET_PREFIX}" + base64 of ${MIN_SECRET_BYTES}–${MAX_SECRET_BYTES} bytes`);
  }
  return key;
}

/**
 * The `webhook-signature` header value for one attempt. `secrets` lists the current secret first,
 * then the previous one while a rotation overlaps (WH-R1), so a receiver holding either verifies.
 * `body` must be exactly the bytes sent: pass the Buffer that goes on the wire when there is one.
 */
export function signatureHeader(secrets: string[], msgId: string, timestampSec: number, body: string | Buffer): string {
  if (secrets.length === 0) throw new Error("signatureHeader needs at least one secret");
  // The signed content is dot-separated; a dot in the id would make two messages sign alike.
  if (msgId === "" || msgId.includes(".")) throw new Error("webhook-id must be non-empty and contain no '.'");
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) {
    throw new Error("webhook-timestamp must be whole Unix seconds");
  }
  const prefix = `${msgId}.${timestampSec}.`;
  return secrets
    .map((secret) => {
      const signature = createHmac("sha256", hmacKey(secret)).update(prefix).update(body).digest("base64");
      return `v1,${signature}`;
    })
    .join(" ");
}
