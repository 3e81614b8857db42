/**
 * The oracles every fuzz response is held to (FUZZ-P01…P03, P08).
 */
import assert from "node:assert/strict";
import type { LightMyRequestResponse } from "fastify";
import { ERRORS, type ErrorCode } from "../src/errors.js";
import { REQUEST_ID } from "./auth-contract.js";
import { openApiSchemas, type OpenApiDoc } from "./edge-support.js";
import { Classifier, IDEMPOTENCY_KEY_FORMAT, type Kind } from "./fuzz-classifier.js";
import { clip, describeRequest, type FuzzRequest } from "./fuzz-http.js";
import { resolver } from "./fuzz-openapi.js";

// ───────────────────────────── oracles ─────────────────────────────

/**
 * The only 5xx a correct server gives a well-formed request here (api.md §2): the sending number's
 * device is offline (503), or a synchronous device action was refused by the network (502
 * `*_failed`; the simulator plays iMessage's group rules, e.g. no removals below four members).
 */
const ALLOWED_5XX = new Set<ErrorCode>(["device_offline", ...(Object.keys(ERRORS) as ErrorCode[]).filter((c) => c.endsWith("_failed"))]);
/** Refusals only the framework's own validation gives: a request the document calls valid never gets one. */
const FRAMEWORK_REFUSAL = /^(A path parameter is too long\.|The URL is not valid\.|The body is not valid JSON\.|The JSON body is empty\.|(querystring|params|headers)\b|body(\.\S+)? (has an unknown field|is missing the required field|must be (string|integer|number|boolean|object|array|null)\b|must (NOT )?have (more|fewer)|must match format))/;
const ROUTE_MISSING = "There is no such route.";

export interface Verdict {
  status: number;
  /** The parsed JSON body, if any. */
  body: Record<string, unknown> | undefined;
  code: string | undefined;
}

/**
 * Holds one response to the document and the contract (FUZZ-P01…P03): never a 5xx (but 503
 * device_offline); X-Request-Id equal to the body's request_id; a documented status whose JSON
 * schema the body matches; error bodies exactly {error, message, request_id} with a code of
 * src/errors.ts and that code's status; Retry-After on 429 and 409 in-use, Allow on 405; and, for
 * requests the document calls invalid, a 4xx refusal, never an acceptance.
 */
export class Oracle {
  private readonly schemaAt: ReturnType<typeof openApiSchemas>;
  readonly classifier: Classifier;
  /** op id → status → count: what the run reached. */
  readonly seen = new Map<string, Map<number, number>>();

  constructor(doc: OpenApiDoc) {
    this.schemaAt = openApiSchemas(doc);
    this.classifier = new Classifier(resolver(doc));
  }

  /**
   * `routed: false` for a request no operation serves (an unsupported method): the envelope rules
   * hold, the operation's documented statuses do not apply.
   */
  check(req: FuzzRequest, res: LightMyRequestResponse, opts: { testOnlyLive?: boolean; kind?: Kind; routed?: boolean } = {}): Verdict {
    const where = () => `${describeRequest(req)}\n  → ${res.statusCode} ${clip(res.body, 600)}`;
    const { op } = req;
    const status = res.statusCode;
    const perOp = this.seen.get(op.id) ?? new Map<number, number>();
    perOp.set(status, (perOp.get(status) ?? 0) + 1);
    this.seen.set(op.id, perOp);

    const rid = res.headers["x-request-id"];
    assert.match(String(rid), REQUEST_ID, `X-Request-Id missing or malformed: ${where()}`);
    const ctype = String(res.headers["content-type"] ?? "");
    let body: Record<string, unknown> | undefined;
    if (ctype.startsWith("application/json") && req.method !== "HEAD") {
      try {
        body = JSON.parse(res.body) as Record<string, unknown>;
      } catch {
        assert.fail(`a JSON content type with a body that is not JSON: ${where()}`);
      }
      assert.equal(body?.request_id, rid, `body request_id differs from X-Request-Id: ${where()}`);
    }
    let code: string | undefined;
    if (status >= 400) {
      assert.ok(body, `an error without a JSON body: ${where()}`);
      assert.deepEqual(Object.keys(body), ["error", "message", "request_id"], `error body is not exactly {error, message, request_id}: ${where()}`);
      code = String(body.error);
      assert.ok(code in ERRORS, `error code ${code} is not in src/errors.ts: ${where()}`);
      assert.equal(ERRORS[code as ErrorCode].status, status, `${code} answered with ${status}, src/errors.ts says ${ERRORS[code as ErrorCode].status}: ${where()}`);
      assert.equal(typeof body.message, "string", where());
      assert.ok((body.message as string).length > 0, `empty error message: ${where()}`);
      if (status >= 500) assert.ok(!/at |\.ts|\.js|SQL|sqlite|postgres|Error:/i.test(body.message as string), `a 5xx message with internals: ${where()}`);
      if (status === 500) assert.equal(body.message, ERRORS.internal_error.message, where());
      if (status === 429 || code === "idempotency_key_in_use") assert.match(String(res.headers["retry-after"]), /^\d+$/, `no Retry-After: ${where()}`);
      if (status === 405) assert.ok(res.headers.allow, `405 without Allow: ${where()}`);
    }
    assert.ok(status < 500 || ALLOWED_5XX.has(code as ErrorCode), `5xx: ${where()}`);

    const routingMiss = (status === 404 && body?.message === ROUTE_MISSING) || opts.routed === false;
    if (!routingMiss) {
      const declared = op.responses[String(status)];
      assert.ok(declared, `status ${status} is not documented for ${op.id} (documented: ${Object.keys(op.responses).join(", ")}): ${where()}`);
      if (declared.json && req.method !== "HEAD") {
        assert.ok(ctype.startsWith("application/json"), `documented JSON, got content-type ${ctype}: ${where()}`);
        const validate = this.schemaAt("paths", op.path, op.method.toLowerCase(), "responses", String(status), "content", "application/json", "schema");
        assert.ok(validate(body), `response does not match its documented schema (${JSON.stringify(validate.errors?.slice(0, 3))}): ${where()}`);
      }
    }

    const verdict = opts.kind ? { kind: opts.kind, why: "" } : this.classifier.classify(req);
    if (verdict.kind === "invalid" && verdict.why === IDEMPOTENCY_KEY_FORMAT) {
      // The key is checked where it is claimed, in the handler, so a request with another fault
      // too may be refused for that one first; it is never served.
      assert.ok(status >= 400 && status < 500, `a malformed Idempotency-Key got ${status}: ${where()}`);
    } else if (verdict.kind === "valid" && code === "invalid_request") {
      assert.doesNotMatch(String(body?.message), FRAMEWORK_REFUSAL, `the server's validation refused a request the document calls valid: ${where()}`);
    } else if (verdict.kind === "invalid") {
      const allowed = new Set([400, 413, 415, ...(opts.testOnlyLive ? [403] : [])]);
      // A path segment that is empty or does not decode may fail routing itself.
      if (req.parts.rawPath) allowed.add(404);
      assert.ok(allowed.has(status), `an invalid request (${verdict.why}) got ${status}, not one of ${[...allowed].join("/")}: ${where()}`);
      const codes = new Set(["invalid_request", "payload_too_large", "unsupported_media_type", ...(opts.testOnlyLive ? ["forbidden"] : []), ...(req.parts.rawPath ? ["not_found"] : [])]);
      assert.ok(codes.has(code ?? ""), `an invalid request refused with ${code}: ${where()}`);
    }
    return { status, body, code };
  }
}
