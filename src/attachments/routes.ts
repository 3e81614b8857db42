import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifySchemaCompiler } from "fastify";
import { type Static, Type } from "typebox";
import type { Services } from "../app.js";
import { Envelope, commonErrors, ok } from "../http/envelope.js";
import type { Scope } from "../messages/store.js";
import { openDownload } from "./download.js";
import { createPresigned, presignedOf } from "./presign.js";
import { AttachmentParams, Presigned, PresignIn, SignedQuery } from "./schemas.js";
import { getAttachment, toAttachment } from "./store.js";
import { receivePresigned, uploadFiles } from "./upload.js";

const AttachmentRef = Type.Ref("Attachment");
const UploadBody = Type.Object(
  { file: Type.Array(Type.String({ format: "binary" }), { minItems: 1, maxItems: 10, description: "1–10 file parts (any field name)." }) },
  { description: "multipart/form-data: file parts only." },
);
const errors = { ...commonErrors, 404: Type.Ref("Error"), 409: Type.Ref("Error"), 413: Type.Ref("Error"), 415: Type.Ref("Error"), 422: Type.Ref("Error") };
const signedErrors = { 400: Type.Ref("Error"), 403: Type.Ref("Error"), 404: Type.Ref("Error"), 409: Type.Ref("Error"), 413: Type.Ref("Error"), 415: Type.Ref("Error"), 500: Type.Ref("Error"), 503: Type.Ref("Error") };

/** The API-key routes, under /v1 (api.md §5 Attachments). */
export function register(v1: FastifyInstance, s: Services): void {
  const scope = (req: { auth: Scope }): Scope => ({ accountId: req.auth.accountId, mode: req.auth.mode });

  // Multipart parsing only where uploads are accepted: its own plugin scope, no other route sees it.
  v1.register(async (uploads) => {
    await uploads.register(multipart);
    uploads.post(
      "/attachments",
      {
        // The body is a stream the handler reads part by part (upload.ts checks it); its schema
        // below is for the OpenAPI document only, so nothing validates it against a parsed body.
        // The query is validated as on every route (it takes no fields).
        validatorCompiler: (part) => (part.httpPart === "body" ? () => true : (uploads.validatorCompiler as FastifySchemaCompiler<unknown>)(part)),
        schema: {
          tags: ["attachments"],
          summary: "Upload 1–10 files (multipart/form-data)",
          consumes: ["multipart/form-data"],
          body: UploadBody,
          response: { 200: Envelope(Type.Array(AttachmentRef)), 201: Envelope(Type.Array(AttachmentRef)), ...errors },
        },
      },
      async (req, reply) => ok(req, await uploadFiles(s, req, reply, scope(req))),
    );
  });

  v1.post<{ Body: PresignIn }>(
    "/attachments/presign",
    { schema: { tags: ["attachments"], summary: "Get a signed URL to PUT one file to", body: PresignIn, response: { 200: Envelope(Presigned), 201: Envelope(Presigned), ...errors } } },
    async (req, reply) => {
      const sc = scope(req);
      const data = await s.idempotency.create(req, reply, {
        resourceType: "attachment",
        status: 201,
        create: async (trx) => {
          const row = await createPresigned(trx, s.attachments, sc, req.body);
          return { id: row.id, body: presignedOf(s.attachments, row) };
        },
        load: async (db, id) => presignedOf(s.attachments, await getAttachment(db, sc, id)),
      });
      return ok(req, data);
    },
  );

  v1.get<{ Params: Static<typeof AttachmentParams> }>(
    "/attachments/:id",
    { schema: { tags: ["attachments"], summary: "Get an attachment, with a fresh signed URL", params: AttachmentParams, response: { 200: Envelope(AttachmentRef), ...errors } } },
    async (req) => ok(req, toAttachment(await getAttachment(s.db.kysely, scope(req), req.params.id), s.attachments.urls, "response")),
  );
}

/**
 * The signed-URL routes: no API key — the URL's signature is the authority (urls.ts). Registered
 * beside /v1, not inside it, so the key check does not run; they share the path space
 * /v1/attachments/:id/content.
 */
export function registerSigned(app: FastifyInstance, s: Services): void {
  app.register(async (signed) => {
    // A presigned PUT carries the file as its raw body, of any type: no parser may read it (not
    // even JSON's); the handler streams the request itself.
    signed.removeAllContentTypeParsers();
    signed.addContentTypeParser("*", (_req, _payload, done) => done(null));

    signed.get<{ Params: Static<typeof AttachmentParams>; Querystring: SignedQuery }>(
      "/v1/attachments/:id/content",
      {
        exposeHeadRoute: false,
        schema: {
          tags: ["attachments"],
          summary: "Download an attachment's bytes (signed URL, no API key)",
          security: [],
          params: AttachmentParams,
          querystring: SignedQuery,
          // A stream is sent as it is (never serialised); `null` documents a body that is not JSON.
          response: { 200: { description: "The file's bytes, with its stored type as Content-Type.", type: "null" }, ...signedErrors },
        },
      },
      async (req, reply) => {
        s.attachments.urls.verify("GET", req.params.id, req.query.expires, req.query.signature);
        const file = await openDownload(s.db, s.attachments, req.params.id, Number(req.query.expires));
        return reply.headers(file.headers).send(file.stream);
      },
    );

    signed.put<{ Params: Static<typeof AttachmentParams>; Querystring: SignedQuery }>(
      "/v1/attachments/:id/content",
      {
        schema: {
          tags: ["attachments"],
          summary: "Upload the bytes of a presigned attachment (signed URL, no API key)",
          security: [],
          params: AttachmentParams,
          querystring: SignedQuery,
          response: { 200: Envelope(AttachmentRef), ...signedErrors },
        },
      },
      async (req) => {
        s.attachments.urls.verify("PUT", req.params.id, req.query.expires, req.query.signature);
        const length = req.headers["content-length"] === undefined ? null : Number(req.headers["content-length"]);
        const row = await receivePresigned(s, req.params.id.toLowerCase(), req.raw, Number.isFinite(length) ? length : null);
        return ok(req, toAttachment(row, s.attachments.urls, "response"));
      },
    );
  });
}
