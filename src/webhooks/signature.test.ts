import assert from "node:assert/strict";
import { describe, it } from "node:test";
// The reference verifier, independent of our code: what customers will run.
import { Webhook } from "standardwebhooks";
import { newWebhookSecret, signatureHeader } from "./signature.js";

/** A timestamp the verifier accepts: it rejects anything more than 5 minutes from its own clock. */
const nowSec = () => Math.floor(Date.now() / 1000);

function headers(msgId: string, timestampSec: number, signature: string): Record<string, string> {
  return { "webhook-id": msgId, "webhook-timestamp": String(timestampSec), "webhook-signature": signature };
}

describe("signatureHeader", () => {
  it("WH-T01: the Standard Webhooks test vector, exactly", () => {
    const header = signatureHeader(
      ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
      "msg_p5jXN8AQM9LWM0D4loKWxJek",
      1614265330,
      '{"test": 2432232314}',
    );
    assert.equal(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("signs the bytes: a Buffer body and the same text give the same signature", () => {
    const secret = newWebhookSecret();
    const text = '{"text":"héllo 👋"}';
    assert.equal(
      signatureHeader([secret], "evt_1", 1_700_000_000, Buffer.from(text, "utf8")),
      signatureHeader([secret], "evt_1", 1_700_000_000, text),
    );
  });

  it("WH-T05: two secrets give two v1 signatures, and standardwebhooks verifies with each", () => {
    const current = newWebhookSecret();
    const previous = newWebhookSecret();
    const msgId = "evt_01HZX3";
    const ts = nowSec();
    const body = JSON.stringify({ id: msgId, type: "message.received", data: { text: "hi ✓" } });
    const header = signatureHeader([current, previous], msgId, ts, Buffer.from(body));

    const parts = header.split(" ");
    assert.equal(parts.length, 2);
    for (const part of parts) assert.match(part, /^v1,[A-Za-z0-9+/]{43}=$/);
    // current first: receivers that only look at the first signature keep working after rotation
    assert.equal(parts[0], signatureHeader([current], msgId, ts, body));

    for (const secret of [current, previous]) {
      assert.deepEqual(new Webhook(secret).verify(body, headers(msgId, ts, header)), JSON.parse(body));
    }
    assert.throws(() => new Webhook(newWebhookSecret()).verify(body, headers(msgId, ts, header)), /No matching signature/);
  });

  it("a signature is bound to its id, timestamp and body (the verifier rejects any change)", () => {
    const secret = newWebhookSecret();
    const ts = nowSec();
    const body = '{"a":1}';
    const header = signatureHeader([secret], "evt_a", ts, body);
    const verifier = new Webhook(secret);
    assert.doesNotThrow(() => verifier.verify(body, headers("evt_a", ts, header)));
    assert.throws(() => verifier.verify('{"a":2}', headers("evt_a", ts, header)));
    assert.throws(() => verifier.verify(body, headers("evt_b", ts, header)));
    assert.throws(() => verifier.verify(body, headers("evt_a", ts + 1, header)));
  });

  it("refuses what would sign wrongly: no secret, a foreign or short secret, a dotted id, a fractional time", () => {
    const secret = newWebhookSecret();
    assert.throws(() => signatureHeader([], "evt_1", 1, "{}"));
    assert.throws(() => signatureHeader(["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "evt_1", 1, "{}"));
    assert.throws(() => signatureHeader(["whsec_c2hvcnQ="], "evt_1", 1, "{}"), /24/);
    assert.throws(() => signatureHeader(["whsec_not base64!!"], "evt_1", 1, "{}"));
    assert.throws(() => signatureHeader([secret], "evt.1", 1, "{}"));
    assert.throws(() => signatureHeader([secret], "", 1, "{}"));
    assert.throws(() => signatureHeader([secret], "evt_1", 1.5, "{}"));
    assert.throws(() => signatureHeader([secret], "evt_1", -1, "{}"));
  });
});

describe("newWebhookSecret (WH-T06)", () => {
  it("is whsec_ + base64 of at least 24 bytes (32), and unique", () => {
    const secrets = Array.from({ length: 1000 }, () => newWebhookSecret());
    for (const secret of secrets) {
      assert.match(secret, /^whsec_[A-Za-z0-9+/=]+$/);
      assert.equal(Buffer.from(secret.slice("whsec_".length), "base64").length, 32);
    }
    assert.equal(new Set(secrets).size, secrets.length);
  });
});
