/**
 * Every request is classified against the document itself (ajv over the same schemas, with the
 * server's coercion rules for query and path): `valid`, `invalid`, or `unknown` where the
 * document cannot say (an unusual but JSON content type, a body on a route that takes none).
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { type FuzzRequest, wellFormed } from "./fuzz-http.js";
import { JSON_TYPES, NOT_JSON } from "./fuzz-mutations.js";
import type { JsonSchema, Operation } from "./fuzz-openapi.js";

// ───────────────────────────── classification ─────────────────────────────

export type Kind = "valid" | "invalid" | "unknown";
export const IDEMPOTENCY_KEY_FORMAT = "Idempotency-Key is not 1–255 printable ASCII (api.md §4)";
const UNSTORABLE = "a NUL or an unpaired surrogate in a text field";

const parsedOrNull = (text: string): unknown => {
  try {
    return JSON.parse(text.replace(/^\ufeff/, ""));
  } catch {
    return null;
  }
};

/** Text no database stores as sent (http/validation.ts refuses it): a NUL, an unpaired surrogate. */
function hasUnstorableText(v: unknown, depth = 0): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point
  if (typeof v === "string") return /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(v);
  if (v === null || typeof v !== "object" || depth > 50) return false;
  return Object.entries(v).some(([k, x]) => hasUnstorableText(k) || hasUnstorableText(x, depth + 1));
}

/** What the document says of a request: valid, invalid, or unknown. */
export class Classifier {
  private readonly bodyAjv = makeAjv(false);
  private readonly textAjv = makeAjv(true);
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(private readonly resolve: (ref: string) => JsonSchema) {}

  classify(req: FuzzRequest): { kind: Kind; why: string } {
    const { op, parts } = req;
    const reasons: { kind: Kind; why: string }[] = [];
    const pathValues: string[] = [];
    // Path parameters: a segment that is empty or does not decode is a routing matter.
    for (const p of op.params.filter((x) => x.in === "path")) {
      const rawSeg = parts.rawPath?.[p.name];
      let value = parts.path[p.name] === undefined ? undefined : wellFormed(parts.path[p.name] as string);
      if (rawSeg !== undefined) {
        try {
          value = decodeURIComponent(rawSeg);
        } catch {
          value = undefined;
        }
        if (!value) {
          reasons.push({ kind: "invalid", why: `path.${p.name} is ${JSON.stringify(rawSeg)}` });
          continue;
        }
      }
      if (value !== undefined) pathValues.push(value);
      const v = this.validator(`path:${op.id}:${p.name}`, p.schema, true);
      if (!v(value)) reasons.push({ kind: "invalid", why: `path.${p.name} ${this.text(v)}` });
    }
    // Query: the server parses it (repeated names become arrays) and coerces text to the schema.
    const query: Record<string, unknown> = {};
    const search = new URL(`http://x${req.url}`).searchParams;
    for (const k of new Set(search.keys())) {
      const all = search.getAll(k);
      // Defined, not assigned: `?__proto__=` must stay a (refused) field, as the server sees it.
      Object.defineProperty(query, k, { value: all.length > 1 ? all : all[0], enumerable: true, configurable: true, writable: true });
    }
    const qv = this.validator(`query:${op.id}`, querySchema(op), true);
    if (!qv(query)) reasons.push({ kind: "invalid", why: `query ${this.text(qv)}` });
    // ajv's text coercion turns "Infinity" and "1e400" into Infinity and then skips its bounds:
    // for the document, an integer of at most 100 is never infinite.
    else if (Object.values(query).some((v) => typeof v === "number" && !Number.isFinite(v))) reasons.push({ kind: "invalid", why: "query: an infinite number" });
    // Body.
    const ct = req.headers["content-type"];
    if (op.body?.contentType === "application/json") {
      if (req.payload === undefined) {
        if (op.body.required) {
          // The document marks every body required; a route whose schema admits null takes none.
          const nullable = this.validator(`body:${op.id}`, op.body.schema, false)(null);
          reasons.push({ kind: nullable ? "unknown" : "invalid", why: "no body" });
        }
      } else if (ct === undefined || NOT_JSON.has(ct)) reasons.push({ kind: "invalid", why: `content type ${ct ?? "none"}` });
      else {
        if (!JSON_TYPES.has(ct)) reasons.push({ kind: "unknown", why: `content type ${ct}` });
        reasons.push(this.jsonBody(op, String(req.payload)));
      }
    } else if (op.body?.contentType === "multipart/form-data") {
      if (!parts.multipart) reasons.push({ kind: "invalid", why: `not multipart (${ct ?? "none"})` });
      else {
        // Cut short: the close delimiter (--boundary--) is missing; what follows it is optional.
        const boundary = /boundary=(\S+)/.exec(parts.multipart.headers["content-type"] ?? "")?.[1] ?? "";
        if (!parts.multipart.payload.toString("latin1").includes(`--${boundary}--`)) reasons.push({ kind: "invalid", why: "a multipart body cut short" });
      }
    } else if (req.payload !== undefined && op.method !== "GET") reasons.push({ kind: "unknown", why: "a body on a route that takes none" });
    // Headers.
    const key = req.headers["idempotency-key"];
    if (key !== undefined && op.method === "POST") {
      const bare = key.length >= 2 && key.startsWith('"') && key.endsWith('"') ? key.slice(1, -1) : key;
      if (!/^[\x21-\x7e]{1,255}$/.test(bare)) reasons.push({ kind: "invalid", why: IDEMPOTENCY_KEY_FORMAT });
    }
    // The server's one rule beyond the schemas (http/validation.ts): no NUL, no unpaired surrogate.
    const body = req.payload !== undefined && typeof req.payload === "string" ? parsedOrNull(req.payload) : null;
    // A webhook url is left to its own check (400 invalid_url), like the server does.
    const bodyTexts = body && typeof body === "object" && !Array.isArray(body) ? Object.entries(body).filter(([k]) => k !== "url").map(([, v]) => v) : [body];
    const texts = [...pathValues, ...Object.values(query), ...bodyTexts];
    if (texts.some(hasUnstorableText)) reasons.push({ kind: "invalid", why: UNSTORABLE });
    const invalid = reasons.find((r) => r.kind === "invalid");
    if (invalid) return invalid;
    return reasons.find((r) => r.kind === "unknown") ?? { kind: "valid", why: "" };
  }

  private jsonBody(op: Operation, text: string): { kind: Kind; why: string } {
    if (text === "") return { kind: "invalid", why: "empty JSON body" };
    let parsed: unknown;
    try {
      // A leading byte order mark is ignored, as RFC 8259 §8.1 allows (secure-json-parse does).
      parsed = JSON.parse(text.replace(/^\ufeff/, ""));
    } catch {
      return { kind: "invalid", why: "malformed JSON" };
    }
    // Fastify refuses prototype poisoning outright (secure-json-parse), before any schema.
    if (/"__proto__"\s*:/.test(text) || /"constructor"\s*:\s*\{[^}]*"prototype"\s*:/.test(text)) return { kind: "invalid", why: "prototype poisoning" };
    if (!op.body) return { kind: "unknown", why: "body" };
    const v = this.validator(`body:${op.id}`, op.body.schema, false);
    return v(parsed) ? { kind: "valid", why: "" } : { kind: "invalid", why: `body ${this.text(v)}` };
  }

  private validator(key: string, schema: JsonSchema, text: boolean): ValidateFunction {
    let v = this.cache.get(key);
    if (!v) {
      v = (text ? this.textAjv : this.bodyAjv).compile(resolveRefs(schema, this.resolve));
      this.cache.set(key, v);
    }
    return v;
  }

  private text(v: ValidateFunction): string {
    const e = v.errors?.[0];
    return e ? `${e.instancePath || "(root)"} ${e.message ?? ""}` : "invalid";
  }
}

function querySchema(op: Operation): JsonSchema {
  const qs = op.params.filter((p) => p.in === "query");
  return {
    type: "object",
    properties: Object.fromEntries(qs.map((p) => [p.name, p.schema])),
    required: qs.filter((p) => p.required).map((p) => p.name),
    additionalProperties: false,
  };
}

/** The server's validators (http/validation.ts): strict numbers, no coercion of bodies, coercion of text. */
function makeAjv(coerce: boolean): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, strictNumbers: true, allErrors: false, coerceTypes: coerce ? "array" : false, useDefaults: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv;
}

/** Inlines local $refs (request schemas are small and acyclic). */
function resolveRefs(schema: unknown, resolve: (ref: string) => JsonSchema): JsonSchema {
  const walk = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(walk);
    if (!s || typeof s !== "object") return s;
    const o = s as Record<string, unknown>;
    if (typeof o.$ref === "string") return walk(resolve(o.$ref));
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, k === "enum" || k === "const" || k === "default" ? v : walk(v)]));
  };
  return walk(schema) as JsonSchema;
}
