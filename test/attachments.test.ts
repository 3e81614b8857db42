/**
 * Attachments, the resource itself (api.md §5 Attachments): multipart uploads and their limits,
 * type detection from the bytes, signed download URLs, presigned uploads, idempotency, expiry.
 * Sending with attachments is in attachments-send.test.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { uuidv7 } from "../src/ids.js";
import { runMaintenance } from "../src/maintenance.js";
import { type AttachmentsTest, attachmentsApp, attachmentsOf, type Attachment, png } from "./attachment-support.js";
import { dialectName } from "./helpers.js";
import { ANYONE, assertError, FROM, ISO_MS, SEC } from "./messaging-helpers.js";

const ATTACHMENT_FIELDS = ["id", "filename", "mime_type", "size_bytes", "url", "message_id", "created_at"];
const HOUR = 3_600 * SEC;

async function rowCount(a: AttachmentsTest): Promise<number> {
  return (await a.t.db.kysely.selectFrom("attachments").select("id").execute()).length;
}

describe(`POST /v1/attachments (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp({ config: { ATTACHMENT_MAX_FILE_BYTES: 1000, ATTACHMENT_MAX_REQUEST_BYTES: 2500 } });
  });
  after(() => a.close());

  it("201 with an array of attachment objects: documented fields in order, unclaimed, a signed URL serving the bytes", async () => {
    const bytes = await png();
    const res = await a.upload([{ filename: "dot.png", type: "image/png", data: bytes }]);
    assert.equal(res.statusCode, 201, res.body);
    const [att] = res.json().data as Attachment[];
    assert.ok(att);
    assert.deepEqual(Object.keys(att), ATTACHMENT_FIELDS);
    assert.match(att.id, /^[0-9a-f-]{36}$/);
    assert.equal(att.filename, "dot.png");
    assert.equal(att.mime_type, "image/png");
    assert.equal(att.size_bytes, bytes.length);
    assert.equal(att.message_id, null);
    assert.match(att.created_at, ISO_MS);
    assert.match(att.url, new RegExp(`/v1/attachments/${att.id}/content\\?expires=\\d+&signature=[A-Za-z0-9_-]+$`));
    const got = await a.signed(att.url);
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers["content-type"], "image/png");
    assert.equal(got.headers["x-content-type-options"], "nosniff");
    assert.equal(got.headers["content-length"], String(bytes.length));
    assert.ok(Buffer.compare(got.rawPayload, bytes) === 0);
  });

  it("1–10 file parts: 10 are stored in order; 11, none, or a non-file field are 400 invalid_request and store nothing", async () => {
    const before = await rowCount(a);
    const files = Array.from({ length: 10 }, (_, i) => ({ filename: `f${i}.txt`, type: "text/plain", data: Buffer.from(`file ${i}`) }));
    const ten = await a.upload(files);
    assert.equal(ten.statusCode, 201, ten.body);
    assert.deepEqual((ten.json().data as Attachment[]).map((x) => x.filename), files.map((f) => f.filename));
    const stored = (await a.storedFiles()).length;

    const eleven = await a.upload([...files, { filename: "f10.txt", data: Buffer.from("one too many") }]);
    assertError(eleven, 400, "invalid_request", "11 files");
    assert.match(eleven.json().message, /at most 10/);
    assertError(await a.upload([], { fields: { note: "no files" } }), 400, "invalid_request", "a field only");
    assertError(await a.upload([]), 400, "invalid_request", "no parts");
    assertError(await a.upload([{ filename: "ok.txt", data: Buffer.from("ok") }], { fields: { extra: "x" } }), 400, "invalid_request", "file plus field");
    assert.equal(await rowCount(a), before + 10);
    assert.equal((await a.storedFiles()).length, stored, "refused uploads leave no bytes behind");
  });

  it("413 payload_too_large over the per-file limit (the limit itself is fine); partial files removed", async () => {
    const rows = await rowCount(a);
    const stored = (await a.storedFiles()).length;
    const exact = await a.upload([{ filename: "exact.bin", data: randomBytes(1000) }]);
    assert.equal(exact.statusCode, 201, exact.body);
    const res = await a.upload([{ filename: "big.bin", data: randomBytes(1001) }]);
    assertError(res, 413, "payload_too_large");
    assert.match(res.json().message, /1000 bytes/);
    assert.equal(await rowCount(a), rows + 1);
    assert.equal((await a.storedFiles()).length, stored + 1);
    assert.deepEqual(await readdir(join(a.dir, "tmp")), [], "no temporary file is left");
  });

  it("413 payload_too_large over the per-request limit, even when each file is within its own; earlier files removed", async () => {
    const rows = await rowCount(a);
    const stored = (await a.storedFiles()).length;
    const three = [1, 2, 3].map((i) => ({ filename: `part${i}.bin`, data: randomBytes(900) }));
    const res = await a.upload(three);
    assertError(res, 413, "payload_too_large");
    assert.match(res.json().message, /2500 bytes per request/);
    assert.equal(await rowCount(a), rows);
    assert.equal((await a.storedFiles()).length, stored);
    const two = await a.upload(three.slice(0, 2));
    assert.equal(two.statusCode, 201, two.body);
  });

  it("415 unsupported_media_type for a body that is not multipart", async () => {
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/attachments", { file: "x" }), 415, "unsupported_media_type");
  });
});

describe(`MIME type detection (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp();
  });
  after(() => a.close());

  const typeOf = async (filename: string, type: string, data: Buffer) => (await a.uploadOne({ filename, type, data })).mime_type;

  it("the bytes decide, not the name or the declared type: a PNG named .txt sent as text/plain is image/png", async () => {
    assert.equal(await typeOf("notes.txt", "text/plain", await png()), "image/png");
  });

  it("text keeps an inert declared text type; active or unknown ones become text/plain", async () => {
    assert.equal(await typeOf("list.csv", "text/csv", Buffer.from("a,b\n1,2\n")), "text/csv");
    assert.equal(await typeOf("card.vcf", "text/vcard", Buffer.from("BEGIN:VCARD\r\nFN:Ann\r\nEND:VCARD\r\n")), "text/vcard");
    assert.equal(await typeOf("page.html", "text/html", Buffer.from("<script>alert(1)</script>")), "text/plain");
    assert.equal(await typeOf("x.svg", "image/svg+xml", Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>')), "text/plain");
    assert.equal(await typeOf("héllo.txt", "application/octet-stream", Buffer.from("héllo wörld")), "text/plain");
  });

  it("unknown binary is application/octet-stream, whatever it claims to be", async () => {
    assert.equal(await typeOf("photo.jpg", "image/jpeg", Buffer.concat([Buffer.from([0, 1, 2, 3]), randomBytes(200)])), "application/octet-stream");
  });

  it("415 unsupported_media_type for an executable, even named .jpg; empty files are 400", async () => {
    const exe = Buffer.concat([Buffer.from("MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff", "latin1"), Buffer.alloc(200)]);
    assertError(await a.upload([{ filename: "cat.jpg", type: "image/jpeg", data: exe }]), 415, "unsupported_media_type");
    const elf = Buffer.concat([Buffer.from("\x7fELF\x02\x01\x01\0", "latin1"), Buffer.alloc(200)]);
    assertError(await a.upload([{ filename: "tool", data: elf }]), 415, "unsupported_media_type");
    assertError(await a.upload([{ filename: "empty.txt", data: Buffer.alloc(0) }]), 400, "invalid_request");
    // Refused files leave no bytes: one stored object per recorded attachment.
    assert.equal((await a.storedFiles()).length, await rowCount(a));
  });

  it("a file name is stored without any path and without control characters", async () => {
    const att = await a.uploadOne({ filename: "../../etc/pass\u0007wd", data: Buffer.from("hello") });
    assert.equal(att.filename, "passwd");
  });
});

describe(`GET /v1/attachments/:id and signed URLs (${dialectName})`, () => {
  let a: AttachmentsTest;
  let att: Attachment;
  before(async () => {
    a = await attachmentsApp({ config: { ATTACHMENT_URL_TTL_SECONDS: 600 } });
    att = await a.uploadOne({ filename: "dot.png", data: await png() });
  });
  after(() => a.close());

  it("200 with the object and a fresh signed URL; 404, byte-identical, for another account's, the other mode's and a missing id", async () => {
    const res = await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${att.id}`);
    assert.equal(res.statusCode, 200, res.body);
    const got = res.json().data as Attachment;
    assert.deepEqual({ ...got, url: "" }, { ...att, url: "" });
    assert.equal((await a.signed(got.url)).statusCode, 200);
    const bodies = await Promise.all(
      [
        [a.other.testKey, att.id],
        [a.acct.liveKey, att.id],
        [a.acct.testKey, uuidv7()],
      ].map(async ([key, id]) => {
        const r = await a.t.call(key as string, "GET", `/v1/attachments/${id}`);
        assertError(r, 404, "not_found");
        return r.body.replace(/req_[0-9a-f]+/, "");
      }),
    );
    assert.equal(new Set(bodies).size, 1);
  });

  it("403 invalid_signature for a tampered signature, a signature moved to another id, or a changed expiry; 400 without one", async () => {
    const url = new URL(att.url);
    const sig = url.searchParams.get("signature") ?? "";
    const flipped = `${sig.slice(0, -1)}${sig.endsWith("A") ? "B" : "A"}`;
    assertError(await a.signed(att.url.replace(sig, flipped)), 403, "invalid_signature", "tampered signature");
    // The last character of a 32-byte signature carries two unused bits: a spelling that differs
    // only there decodes to the same bytes, and must still be refused (regression).
    const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const sameBytes = `${sig.slice(0, -1)}${B64URL[B64URL.indexOf(sig.slice(-1)) ^ 1]}`;
    assert.deepEqual(Buffer.from(sameBytes, "base64url"), Buffer.from(sig, "base64url"));
    assertError(await a.signed(att.url.replace(sig, sameBytes)), 403, "invalid_signature", "non-canonical signature");
    const other = await a.uploadOne({ filename: "other.txt", data: Buffer.from("other") });
    assertError(await a.signed(att.url.replace(att.id, other.id)), 403, "invalid_signature", "another id");
    const later = String(Number(url.searchParams.get("expires")) + 3600);
    assertError(await a.signed(att.url.replace(/expires=\d+/, `expires=${later}`)), 403, "invalid_signature", "longer expiry");
    assertError(await a.signed(`${url.origin}${url.pathname}`), 400, "invalid_request", "no signature");
    assertError(await a.signed(att.url, "PUT", Buffer.from("overwrite")), 403, "invalid_signature", "a download URL used to upload");
  });

  it("403 invalid_signature once expired (TTL from the settings); a fresh GET gives a working URL again", async () => {
    const res = await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${att.id}`);
    const url = (res.json().data as Attachment).url;
    a.t.clock.advance(599 * SEC);
    assert.equal((await a.signed(url)).statusCode, 200);
    a.t.clock.advance(2 * SEC);
    const expired = assertError(await a.signed(url), 403, "invalid_signature");
    assert.match(expired.message, /expired/);
    const fresh = (await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${att.id}`)).json().data as Attachment;
    assert.equal((await a.signed(fresh.url)).statusCode, 200);
  });

  it("the signed URL names PUBLIC_URL when it is set", async () => {
    const b = await attachmentsApp({ config: { PUBLIC_URL: "https://api.example.com/" } });
    try {
      const x = await b.uploadOne({ filename: "a.txt", data: Buffer.from("a") });
      assert.ok(x.url.startsWith(`https://api.example.com/v1/attachments/${x.id}/content?`), x.url);
    } finally {
      await b.close();
    }
  });
});

describe(`POST /v1/attachments/presign (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp({ config: { ATTACHMENT_MAX_FILE_BYTES: 5000, ATTACHMENT_URL_TTL_SECONDS: 900 } });
  });
  after(() => a.close());

  const presign = async (body: Record<string, unknown> = { filename: "photo.jpg", content_type: "image/jpeg" }) => {
    const res = await a.t.call(a.acct.testKey, "POST", "/v1/attachments/presign", body);
    assert.equal(res.statusCode, 201, res.body);
    return res.json().data as { id: string; upload_url: string; method: string; headers: Record<string, string> };
  };

  it("round trip: 201 {id, upload_url, method, headers}; not claimable until the bytes arrive; PUT sniffs them; then claimable", async () => {
    const p = await presign();
    assert.deepEqual(Object.keys(p), ["id", "upload_url", "method", "headers"]);
    assert.equal(p.method, "PUT");
    assert.deepEqual(p.headers, { "content-type": "image/jpeg" });
    const pending = (await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${p.id}`)).json().data as Attachment;
    assert.equal(pending.size_bytes, 0);
    assertError(await a.signed(pending.url), 409, "conflict", "download before upload");
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, attachment_ids: [p.id] }), 400, "invalid_attachments", "claim before upload");

    const bytes = await png(16, 16);
    const put = await a.signed(p.upload_url, "PUT", bytes, { "content-type": "image/jpeg" });
    assert.equal(put.statusCode, 200, put.body);
    const uploaded = put.json().data as Attachment;
    assert.equal(uploaded.mime_type, "image/png", "the bytes decide");
    assert.equal(uploaded.size_bytes, bytes.length);
    assert.equal(uploaded.filename, "photo.jpg");
    const served = await a.signed(uploaded.url);
    assert.equal(served.statusCode, 200);
    assert.ok(Buffer.compare(served.rawPayload, bytes) === 0);

    assertError(await a.signed(p.upload_url, "PUT", Buffer.from("again")), 409, "conflict", "second PUT");
    const msg = await a.send({ to: ANYONE, from_handle: FROM, attachment_ids: [p.id] });
    assert.equal(attachmentsOf(msg)[0]?.id, p.id);
  });

  it("the PUT takes any body type raw, JSON included (no parser reads it)", async () => {
    const p = await presign({ filename: "data.json", content_type: "application/json" });
    const put = await a.signed(p.upload_url, "PUT", Buffer.from('{"a":1}'), { "content-type": "application/json" });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal((put.json().data as Attachment).mime_type, "text/plain");
  });

  it("403 invalid_signature for an expired or tampered upload URL; 413 over the file limit (stays pending, retry works)", async () => {
    const p = await presign();
    const sig = new URL(p.upload_url).searchParams.get("signature") ?? "";
    assertError(await a.signed(p.upload_url.replace(sig, sig.split("").reverse().join("")), "PUT", Buffer.from("x")), 403, "invalid_signature");
    assertError(await a.signed(p.upload_url, "PUT", randomBytes(5001)), 413, "payload_too_large");
    // Without a Content-Length (a chunked body), the stream itself is cut off at the limit.
    const u = new URL(p.upload_url);
    const streamed = await a.t.app.inject({ method: "PUT", url: u.pathname + u.search, payload: Readable.from([randomBytes(3000), randomBytes(3000)]) });
    assertError(streamed, 413, "payload_too_large", "chunked");
    assert.equal((await a.t.db.kysely.selectFrom("attachments").select("state").where("id", "=", p.id).executeTakeFirstOrThrow()).state, "pending");
    assert.deepEqual(await readdir(join(a.dir, "tmp")), []);
    a.t.clock.advance(901 * SEC);
    assertError(await a.signed(p.upload_url, "PUT", Buffer.from("late")), 403, "invalid_signature");
    // A replay of the presign (same key) hands out a fresh upload URL for the same attachment.
    const key = { "idempotency-key": "presign-1" };
    const first = await a.t.call(a.acct.testKey, "POST", "/v1/attachments/presign", { filename: "a.txt", content_type: "text/plain" }, key);
    assert.equal(first.statusCode, 201);
    const replay = await a.t.call(a.acct.testKey, "POST", "/v1/attachments/presign", { filename: "a.txt", content_type: "text/plain" }, key);
    assert.equal(replay.statusCode, 200);
    assert.equal(replay.headers["idempotent-replayed"], "true");
    assert.equal(replay.json().data.id, first.json().data.id);
    assert.equal((await a.signed(replay.json().data.upload_url, "PUT", Buffer.from("hello"))).statusCode, 200);
  });

  it("400 invalid_request for a malformed content_type, an unknown field or a missing filename", async () => {
    for (const body of [{ filename: "a", content_type: "nope" }, { filename: "a", content_type: "text/plain", size: 1 }, { content_type: "text/plain" }]) {
      assertError(await a.t.call(a.acct.testKey, "POST", "/v1/attachments/presign", body), 400, "invalid_request", JSON.stringify(body));
    }
  });
});

describe(`Idempotency-Key on uploads (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp();
  });
  after(() => a.close());

  it("a replayed upload answers 200 with the same attachments, in order, and stores nothing twice", async () => {
    const files = [
      { filename: "a.txt", data: Buffer.from("alpha") },
      { filename: "b.png", data: await png() },
    ];
    const headers = { "idempotency-key": "upload-1" };
    const first = await a.upload(files, { headers });
    assert.equal(first.statusCode, 201, first.body);
    const stored = (await a.storedFiles()).length;
    const again = await a.upload(files, { headers });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.headers["idempotent-replayed"], "true");
    assert.deepEqual((again.json().data as Attachment[]).map((x) => x.id), (first.json().data as Attachment[]).map((x) => x.id));
    assert.equal((await a.storedFiles()).length, stored);
    // The same key on another route is a different request.
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/attachments/presign", { filename: "a", content_type: "text/plain" }, headers), 422, "idempotency_key_reused");
  });

  it("a refused upload does not burn its key", async () => {
    const headers = { "idempotency-key": "upload-2" };
    assertError(await a.upload([{ filename: "empty", data: Buffer.alloc(0) }], { headers }), 400, "invalid_request");
    assert.equal((await a.upload([{ filename: "ok.txt", data: Buffer.from("ok") }], { headers })).statusCode, 201);
  });
});

describe(`expiry of unclaimed uploads (${dialectName})`, () => {
  let a: AttachmentsTest;
  before(async () => {
    a = await attachmentsApp();
  });
  after(() => a.close());

  it("after 24 h an unclaimed upload is removed — row and bytes — by maintenance; a claimed one stays", async () => {
    const loose = await a.uploadOne({ filename: "loose.txt", data: Buffer.from("nobody wants me") });
    const kept = await a.uploadOne({ filename: "kept.txt", data: Buffer.from("I am sent") });
    const presigned = (await a.t.call(a.acct.testKey, "POST", "/v1/attachments/presign", { filename: "never.txt", content_type: "text/plain" })).json().data;
    await a.send({ to: ANYONE, from_handle: FROM, attachment_ids: [kept.id] });
    assert.equal((await a.storedFiles()).length, 2);

    a.t.clock.advance(24 * HOUR - SEC);
    assert.equal((await runMaintenance(a.t.db, a.t.clock, a.t.config)).attachments, 0);
    assert.equal((await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${loose.id}`)).statusCode, 200);

    a.t.clock.advance(2 * SEC);
    // Past expiry but not yet reaped: it can no longer be claimed.
    assertError(await a.t.call(a.acct.testKey, "POST", "/v1/messages", { to: ANYONE, from_handle: FROM, attachment_ids: [loose.id] }), 400, "invalid_attachments");
    assert.equal((await runMaintenance(a.t.db, a.t.clock, a.t.config)).attachments, 2);
    assertError(await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${loose.id}`), 404, "not_found");
    assertError(await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${presigned.id}`), 404, "not_found");
    assert.equal((await a.storedFiles()).length, 1, "the loose upload's bytes are gone; the claimed one's stay");
    const stillThere = (await a.t.call(a.acct.testKey, "GET", `/v1/attachments/${kept.id}`)).json().data as Attachment;
    assert.equal((await a.signed(stillThere.url)).statusCode, 200);
  });

  it("the expiry is a setting (ATTACHMENT_EXPIRY_HOURS)", async () => {
    const b = await attachmentsApp({ config: { ATTACHMENT_EXPIRY_HOURS: 1 } });
    try {
      await b.uploadOne({ filename: "short.txt", data: Buffer.from("short-lived") });
      b.t.clock.advance(HOUR + SEC);
      assert.equal((await runMaintenance(b.t.db, b.t.clock, b.t.config)).attachments, 1);
      assert.deepEqual(await b.storedFiles(), []);
    } finally {
      await b.close();
    }
  });
});
