/**
 * Fuzzing from the running app's own OpenAPI document (reliability.md §6, FUZZ-P01…P08): a small
 * JSON Schema → fast-check converter, near-valid mutations of the requests it generates, the
 * oracles every response is held to, and a seeded "world" (two accounts × two modes with messages,
 * chats, webhooks, deliveries and attachments) whose ids the generators draw on.
 *
 * - The converter supports exactly the keywords the document uses (type and type arrays, enum,
 *   const, anyOf/oneOf, $ref, format uuid/date-time, min/maxLength, pattern, minimum/maximum,
 *   items, min/maxItems, uniqueItems, properties, required, additionalProperties, propertyNames,
 *   maxProperties); anything else throws, so a new schema feature never goes silently ungenerated.
 * - Field hints (handles, ids from the world, webhook URLs, times near the clock) are offered
 *   beside the schema's own values, never instead of them, so requests get past the business
 *   checks often enough to reach the code behind them.
 * - Every request is classified against the document itself (ajv over the same schemas, with the
 *   server's coercion rules for query and path): `valid`, `invalid`, or `unknown` where the
 *   document cannot say (an unusual but JSON content type, a body on a route that takes none).
 * - The multipart body of POST /v1/attachments is not generated from its schema (a `binary`
 *   array): valid requests send one small file; its mutations are content types, malformed
 *   multipart and bodies cut short.
 */
import assert from "node:assert/strict";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { SIM } from "../src/backends/simulator.js";
import type { Mode } from "../src/db/schema.js";
import { ERRORS, type ErrorCode } from "../src/errors.js";
import { TAPBACKS } from "../src/messages/schemas.js";
import type { Resolver } from "../src/webhooks/address-policy.js";
import { multipart } from "./attachment-support.js";
import { REQUEST_ID } from "./auth-contract.js";
import { openApiSchemas, type OpenApiDoc } from "./edge-support.js";
import type { SeededAccount, TestApp } from "./helpers.js";
import { elapse } from "./messaging-helpers.js";

// ───────────────────────────── the document ─────────────────────────────

export type JsonSchema = { readonly [k: string]: unknown };

interface RawOperation {
  tags?: string[];
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean; schema: JsonSchema }[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>;
}

export interface Param {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: JsonSchema;
}

export interface Operation {
  /** "POST /v1/messages/{id}/retry" */
  id: string;
  method: string;
  /** The document's path template, e.g. /v1/messages/{id}. */
  path: string;
  params: Param[];
  body: { contentType: string; schema: JsonSchema; required: boolean } | null;
  /** Documented statuses; `json` when that status documents a JSON body. */
  responses: Record<string, { json: boolean }>;
  /** The document says an API key is needed (its global `security`, unless the operation clears it). */
  keyed: boolean;
  /** A test helper: live keys get 403 before anything else (api.md §5 Test helpers). */
  testOnly: boolean;
}

const METHODS = ["get", "put", "post", "patch", "delete"] as const;

/** Every operation of the document, in document order. */
export function operationsOf(doc: OpenApiDoc): Operation[] {
  const rawDoc = doc as unknown as { security?: unknown[]; paths: Record<string, Record<string, RawOperation>> };
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(rawDoc.paths)) {
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const content = op.requestBody?.content ?? {};
      const [contentType, media] = Object.entries(content)[0] ?? [];
      const params = (op.parameters ?? []).map((p) => {
        assert.ok(p.in === "path" || p.in === "query", `${m} ${path}: parameter in ${p.in} is not supported by the fuzzer`);
        return { name: p.name, in: p.in, required: p.required === true, schema: p.schema } as Param;
      });
      out.push({
        id: `${m.toUpperCase()} ${path}`,
        method: m.toUpperCase(),
        path,
        params,
        body: contentType && media ? { contentType, schema: media.schema, required: op.requestBody?.required === true } : null,
        responses: Object.fromEntries(Object.entries(op.responses ?? {}).map(([s, r]) => [s, { json: r.content?.["application/json"] !== undefined }])),
        keyed: (op.security ?? rawDoc.security ?? []).length > 0,
        testOnly: (op.tags ?? []).includes("test helpers"),
      });
    }
  }
  return out;
}

// ───────────────────────────── schema → arbitrary ─────────────────────────────

const KEYWORDS = new Set([
  "type", "enum", "const", "anyOf", "oneOf", "$ref", "$id", "format", "minLength", "maxLength", "pattern", "minimum", "maximum",
  "items", "minItems", "maxItems", "uniqueItems", "properties", "required", "additionalProperties", "propertyNames",
  "maxProperties", "default", "description", "title",
]);

export interface Generation {
  /** A local `#/components/...` reference. */
  resolve(ref: string): JsonSchema;
  /**
   * Domain values for a field, offered beside the schema's own. `name` is the field's dotted path
   * in the body (`message.text`, `addresses[]`, `metadata.*`), or `path.<p>` / `query.<p>`.
   */
  hint?(name: string, schema: JsonSchema): fc.Arbitrary<unknown> | undefined;
}

/** Strings a parser or a database may choke on; drawn beside ordinary ones. */
const WEIRD_STRINGS = [
  "", " ", "\u0000", "a\u0000b", "\ud800", "x\udfffy", "\u202eevil", "\u200b", "\ufeff", "Ｆｕｌｌ", "😀👍🏽👨‍👩‍👧", "e\u0301",
  "null", "undefined", "true", "0", "-0", "-1", "1e400", "Infinity", "-Infinity", "NaN", "0x10", "١٢٣",
  "__proto__", "constructor", "prototype", "%00", "%zz", "%2e%2e%2f", "../../etc/passwd", "' OR '1'='1' --", "<script>x</script>",
  "{{7*7}}", "$\u007bjndi:x}", "\r\n", "\t", "\\", '"', "sk_test_0000", "+", "@", "+1", "+15555550123", "a@b.co",
];

/** Code points, as ajv counts string lengths. */
const codePoints = (s: string): number => [...s].length;

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

export function arbitraryFor(schema: JsonSchema, g: Generation, name = ""): fc.Arbitrary<unknown> {
  const own = schemaArbitrary(schema, g, name);
  const hinted = g.hint?.(name, schema);
  return hinted ? fc.oneof({ arbitrary: hinted, weight: 4 }, { arbitrary: own, weight: 1 }) : own;
}

function schemaArbitrary(schema: JsonSchema, g: Generation, name: string): fc.Arbitrary<unknown> {
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k)) throw new Error(`fuzz-support: unsupported JSON Schema keyword '${k}' at ${name || "(root)"}`);
  }
  if (typeof schema.$ref === "string") return arbitraryFor(g.resolve(schema.$ref), g, name);
  if ("const" in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const alternatives = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (alternatives) return fc.oneof(...alternatives.map((s) => arbitraryFor(s, g, name)));
  const type = schema.type;
  if (Array.isArray(type)) return fc.oneof(...(type as string[]).map((t) => schemaArbitrary({ ...schema, type: t }, g, name)));
  switch (type) {
    case "string":
      return stringArbitrary(schema, name);
    case "integer":
      return fc.integer({ min: num(schema.minimum) ?? -(2 ** 31), max: num(schema.maximum) ?? 2 ** 31 });
    case "number":
      return fc.double({ min: num(schema.minimum) ?? -1e9, max: num(schema.maximum) ?? 1e9, noNaN: true, noDefaultInfinity: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      return arrayArbitrary(schema, g, name);
    case "object":
      return objectArbitrary(schema, g, name);
  }
  throw new Error(`fuzz-support: no type at ${name || "(root)"}: ${JSON.stringify(schema)}`);
}

function stringArbitrary(s: JsonSchema, name: string): fc.Arbitrary<string> {
  const min = num(s.minLength) ?? 0;
  const max = num(s.maxLength) ?? 20_000;
  const fits = (x: string) => codePoints(x) >= min && codePoints(x) <= max;
  if (s.format === "uuid") return fc.oneof({ arbitrary: fc.uuid(), weight: 9 }, { arbitrary: fc.uuid().map((u) => u.toUpperCase()), weight: 1 });
  if (s.format === "date-time") return isoTime(Date.UTC(1970, 0, 1), Date.UTC(2100, 0, 1));
  if (s.format !== undefined) throw new Error(`fuzz-support: unsupported string format '${String(s.format)}' at ${name}`);
  if (typeof s.pattern === "string") return fc.stringMatching(new RegExp(s.pattern)).filter(fits);
  const small = Math.min(max, min + 24);
  const weird = WEIRD_STRINGS.filter(fits);
  const boundaries = [...new Set([min, Math.max(min, 1), max])].filter((n) => n <= 10_000 && n >= min && n <= max);
  return fc.oneof(
    { weight: 6, arbitrary: fc.string({ minLength: min, maxLength: small, unit: "grapheme-ascii" }) },
    { weight: 3, arbitrary: fc.string({ minLength: min, maxLength: small, unit: "binary" }) },
    ...(weird.length ? [{ weight: 1, arbitrary: fc.constantFrom(...weird) }] : []),
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...boundaries), fc.constantFrom("x", "é", "😀")).map(([n, c]) => c.repeat(n)) },
  );
}

function isoTime(minMs: number, maxMs: number): fc.Arbitrary<string> {
  return fc.integer({ min: minMs, max: maxMs }).map((ms) => new Date(ms).toISOString());
}

function arrayArbitrary(s: JsonSchema, g: Generation, name: string): fc.Arbitrary<unknown[]> {
  if (!s.items || typeof s.items !== "object") throw new Error(`fuzz-support: array without items at ${name}`);
  const items = arbitraryFor(s.items as JsonSchema, g, `${name}[]`);
  const minLength = num(s.minItems) ?? 0;
  const maxLength = Math.min(num(s.maxItems) ?? 8, minLength + 6);
  return s.uniqueItems === true ? fc.uniqueArray(items, { minLength, maxLength, selector: (v) => JSON.stringify(v) }) : fc.array(items, { minLength, maxLength });
}

function objectArbitrary(s: JsonSchema, g: Generation, name: string): fc.Arbitrary<Record<string, unknown>> {
  const props = (s.properties ?? {}) as Record<string, JsonSchema>;
  const required = (s.required ?? []) as string[];
  const at = (k: string) => (name ? `${name}.${k}` : k);
  const record = fc.record(Object.fromEntries(Object.entries(props).map(([k, sub]) => [k, arbitraryFor(sub, g, at(k))])), { requiredKeys: required });
  const extra = s.additionalProperties;
  if (extra === undefined || extra === false || extra === true) return record;
  const names = (s.propertyNames ?? {}) as JsonSchema;
  const keys = stringArbitrary({ type: "string", ...names }, at("(key)"));
  const maxKeys = Math.min(num(s.maxProperties) ?? 5, 5);
  return fc
    .tuple(record, fc.dictionary(keys, arbitraryFor(extra as JsonSchema, g, at("*")), { maxKeys, noNullPrototype: true }))
    .map(([known, more]) => ({ ...more, ...known }));
}

// ───────────────────────────── requests ─────────────────────────────

/** A request as parts; `body` undefined = no body. */
export interface RequestParts {
  path: Record<string, string>;
  query: Record<string, unknown>;
  body?: unknown;
  /** Raw body text replacing the JSON of `body` (malformed JSON, 1e400, duplicate keys, deep nesting). */
  raw?: string;
  /** A multipart body (POST /v1/attachments). */
  multipart?: { payload: Buffer; headers: Record<string, string> };
  /** Overrides the content type (null: send none). */
  contentType?: string | null;
  /** Path segments written into the URL as they are, not encoded (`%zz`, an empty segment). */
  rawPath?: Record<string, string>;
  /** Query text appended as it is. */
  rawQuery?: string;
  headers?: Record<string, string>;
}

export type Kind = "valid" | "invalid" | "unknown";

export interface FuzzRequest {
  op: Operation;
  parts: RequestParts;
  /** "valid", or the mutation that made it ("body.to: wrong type"). */
  mutation: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** Valid parts of a request to `op`, from the document and the hints. */
export function validParts(op: Operation, g: Generation): fc.Arbitrary<RequestParts> {
  const perParam = fc.record(
    Object.fromEntries(op.params.filter((p) => p.in === "path").map((p) => [p.name, arbitraryFor(p.schema, g, `path.${p.name}`).map(String)])),
  );
  // Parameters that only make sense together (a webhook and one of its deliveries) come as a whole.
  const together = g.hint?.("path", {}) as fc.Arbitrary<Record<string, string>> | undefined;
  const path = together ? fc.oneof({ weight: 3, arbitrary: together }, { weight: 1, arbitrary: perParam }) : perParam;
  const queryParams = op.params.filter((p) => p.in === "query");
  const query = fc.record(Object.fromEntries(queryParams.map((p) => [p.name, arbitraryFor(p.schema, g, `query.${p.name}`)])), {
    requiredKeys: queryParams.filter((p) => p.required).map((p) => p.name),
  });
  let body: fc.Arbitrary<Pick<RequestParts, "body" | "multipart">> = fc.constant({});
  if (op.body?.contentType === "application/json") body = arbitraryFor(op.body.schema, g).map((b) => ({ body: b }));
  else if (op.body?.contentType === "multipart/form-data") {
    body = fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.constantFrom("note.txt", "a.png", "x", "ü.bin"), fc.constantFrom("text/plain", "image/png", "application/octet-stream"))
      .map(([bytes, filename, type]) => ({ multipart: multipart([{ filename, type, data: Buffer.from(bytes) }]) }));
  } else if (op.body) throw new Error(`fuzz-support: ${op.id}: request content type ${op.body.contentType} is not supported`);
  return fc.tuple(path, query, body).map(([p, q, b]) => ({ path: p as Record<string, string>, query: q, ...b }));
}

/** Builds the HTTP request (URL, headers, payload) from its parts. */
export function toRequest(op: Operation, parts: RequestParts, mutation: string, auth: Record<string, string>): FuzzRequest {
  let url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => parts.rawPath?.[name] ?? encode(parts.path[name] ?? ""));
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(parts.query)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) qs.append(k, typeof one === "string" ? one : JSON.stringify(one));
  }
  const query = [qs.toString(), parts.rawQuery ?? ""].filter(Boolean).join("&");
  if (query) url += `?${query}`;
  const headers: Record<string, string> = { ...auth, ...parts.headers };
  let payload: string | Buffer | undefined;
  if (parts.multipart) {
    payload = parts.multipart.payload;
    Object.assign(headers, parts.multipart.headers);
  } else if (parts.raw !== undefined) payload = parts.raw;
  else if (parts.body !== undefined) payload = JSON.stringify(parts.body);
  if (payload !== undefined && !parts.multipart) headers["content-type"] = "application/json";
  if (parts.contentType === null) delete headers["content-type"];
  else if (parts.contentType !== undefined) headers["content-type"] = parts.contentType;
  return { op, parts, mutation, method: op.method, url, headers, ...(payload === undefined ? {} : { payload }) };
}

/** encodeURIComponent, with lone surrogates (which no URL can carry) as U+FFFD. */
const wellFormed = (s: string): string => s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
const encode = (s: string): string => encodeURIComponent(wellFormed(s));

/** A request that gets no answer within this long (of real time) fails: the server hangs on it. */
const ANSWER_WITHIN_MS = 10_000;

export async function send(t: TestApp, req: FuzzRequest): Promise<LightMyRequestResponse> {
  const m = req.method as "GET";
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `no answer within ${ANSWER_WITHIN_MS} ms: ${describeRequest(req)}` })), ANSWER_WITHIN_MS);
  });
  try {
    return await Promise.race([t.app.inject({ method: m, url: req.url, headers: req.headers, ...(req.payload === undefined ? {} : { payload: req.payload }) }), hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** A one-line description of a request, for failure messages. */
export function describeRequest(req: FuzzRequest): string {
  const body = req.payload === undefined ? "" : ` body=${Buffer.isBuffer(req.payload) ? `<${req.payload.length} bytes multipart>` : clip(req.payload, 300)}`;
  const ct = req.headers["content-type"] === undefined ? "" : ` content-type=${JSON.stringify(req.headers["content-type"])}`;
  return `${req.method} ${clip(req.url, 300)} [${req.mutation}]${ct}${body}`;
}

export const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);

// ───────────────────────────── mutations ─────────────────────────────

/** A placeholder value replaced by raw JSON text after serialisation. */
const RAW = "\u0001FUZZ-RAW\u0001";
const RAW_JSON = JSON.stringify(RAW);

type Loc = (string | number)[];

/** Locations in a body: the root, every property (two levels deep), the first item of arrays. */
function locations(schema: JsonSchema, g: Generation, depth = 0, at: Loc = []): { loc: Loc; schema: JsonSchema }[] {
  const s = typeof schema.$ref === "string" ? g.resolve(schema.$ref) : schema;
  const out = [{ loc: at, schema: s }];
  if (depth >= 2) return out;
  for (const [k, sub] of Object.entries((s.properties ?? {}) as Record<string, JsonSchema>)) out.push(...locations(sub, g, depth + 1, [...at, k]));
  if (s.items && typeof s.items === "object") out.push(...locations(s.items as JsonSchema, g, depth + 1, [...at, 0]));
  return out;
}

const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

/** Sets `value` at `loc`, creating objects/arrays on the way; returns the new root. */
function setAt(root: unknown, loc: Loc, value: unknown): unknown {
  if (loc.length === 0) return value;
  const [head, ...rest] = loc as [string | number, ...Loc];
  const container: Record<string | number, unknown> =
    typeof head === "number" ? (Array.isArray(root) ? [...root] : []) as unknown as Record<number, unknown> : root && typeof root === "object" && !Array.isArray(root) ? { ...(root as object) } : {};
  container[head] = setAt(container[head], rest, value);
  return container;
}

function getAt(root: unknown, loc: Loc): unknown {
  let v = root;
  for (const k of loc) v = v && typeof v === "object" ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

const deepArray = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;

/** Content types for a JSON route: non-JSON ones (expected 415) and JSON spellings (the document cannot say). */
const CONTENT_TYPES = [
  "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream",
  "application/merge-patch+json", "text/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json; charset=latin1", "application/json;;",
];
/** The content types that are the document's own `application/json`. */
const JSON_TYPES = new Set(["application/json", "application/json; charset=utf-8"]);
const NOT_JSON = new Set(CONTENT_TYPES.slice(0, 6));

type MutationArb = fc.Arbitrary<{ name: string; apply(p: RequestParts): RequestParts }>;

/** One mutation of a request to `op`: one field (or the body, the query, a path parameter, a header) made wrong. */
export function mutation(op: Operation, g: Generation): MutationArb {
  const muts: MutationArb[] = [];
  if (op.body?.contentType === "application/json") {
    const locs = locations(op.body.schema, g);
    const valueMutation = fc.tuple(fc.constantFrom(...locs), fc.nat(), fc.constantFrom(...WEIRD_STRINGS)).map(([{ loc, schema }, n, weird]) => {
      const label = loc.length ? `body.${loc.join(".")}` : "body";
      const choices = valueMutationsFor(schema, loc, n, weird);
      const pick = choices[n % choices.length] as (typeof choices)[number];
      return { name: `${label}: ${pick.name}`, apply: pick.apply };
    });
    const whole = fc.constantFrom<{ name: string; apply(p: RequestParts): RequestParts }>(
      { name: "body: malformed JSON", apply: (p) => ({ ...p, raw: JSON.stringify(p.body ?? {}).slice(0, -1) }) },
      { name: "body: empty", apply: (p) => ({ ...p, raw: "" }) },
      { name: "body: none", apply: (p) => ({ ...p, body: undefined, raw: undefined }) },
      { name: "body: an array", apply: (p) => ({ ...p, body: [p.body] }) },
      { name: "body: a string", apply: (p) => ({ ...p, body: "x" }) },
      { name: "body: a number", apply: (p) => ({ ...p, raw: "42" }) },
      { name: "body: deep nesting (10,000 arrays)", apply: (p) => ({ ...p, raw: deepArray(10_000) }) },
      { name: "body: over the body limit (1.2 MB)", apply: (p) => ({ ...p, body: { pad: "x".repeat(1_200_000) } }) },
      { name: "body: BOM before the JSON", apply: (p) => ({ ...p, raw: `\ufeff${JSON.stringify(p.body ?? {})}` }) },
    );
    const contentType = fc.constantFrom(...CONTENT_TYPES).map((ct) => ({ name: `content-type: ${ct}`, apply: (p: RequestParts) => ({ ...p, contentType: ct }) }));
    const noContentType = fc.constant({ name: "content-type: none", apply: (p: RequestParts) => ({ ...p, contentType: null }) });
    muts.push(valueMutation, valueMutation, valueMutation, whole, contentType, noContentType);
  } else if (op.body?.contentType === "multipart/form-data") {
    muts.push(
      fc.integer({ min: 1, max: 400 }).map((cut) => ({
        name: `multipart body cut after ${cut} bytes`,
        apply: (p: RequestParts) => (p.multipart ? { ...p, multipart: { ...p.multipart, payload: p.multipart.payload.subarray(0, Math.min(cut, p.multipart.payload.length - 1)) } } : p),
      })),
    );
    muts.push(
      fc.constantFrom(...["application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=nope"]).map((ct) => ({
        name: `multipart content-type: ${ct}`,
        apply: (p: RequestParts) => ({ ...p, multipart: undefined, raw: ct === "application/json" ? "{}" : "--x--", contentType: ct }),
      })),
    );
  } else if (op.method !== "GET") {
    muts.push(fc.constant({ name: "a JSON body on a route that takes none", apply: (p: RequestParts) => ({ ...p, body: { x: 1 } }) }));
  }
  const query = op.params.filter((p) => p.in === "query");
  muts.push(
    fc.tuple(fc.constantFrom("x", "api_key", "__proto__", "limit[]", ""), fc.constantFrom(...WEIRD_STRINGS)).map(([k, v]) => ({
      name: `query: unknown parameter ${JSON.stringify(k)}`,
      apply: (p: RequestParts) => ({ ...p, rawQuery: `${encode(k || "=")}=${encode(v)}` }),
    })),
  );
  if (query.length) {
    muts.push(
      fc.tuple(fc.constantFrom(...query), fc.constantFrom<unknown>(...WEIRD_STRINGS, 0, 101, -1, 1.5, 1e21, "1e1", ["1", "2"], "x".repeat(5000))).map(([q, v]) => ({
        name: `query.${q.name} = ${clip(JSON.stringify(v), 40)}`,
        apply: (p: RequestParts) => ({ ...p, query: { ...p.query, [q.name]: v } }),
      })),
    );
    const required = query.filter((q) => q.required);
    if (required.length) {
      muts.push(
        fc.constantFrom(...required).map((q) => ({
          name: `query.${q.name}: missing`,
          apply: (p: RequestParts) => ({ ...p, query: { ...p.query, [q.name]: undefined } }),
        })),
      );
    }
  }
  const pathParams = op.params.filter((p) => p.in === "path");
  if (pathParams.length) {
    muts.push(
      fc.tuple(fc.constantFrom(...pathParams), fc.uuid(), fc.constantFrom(...WEIRD_STRINGS, "x".repeat(101), "x".repeat(400))).chain(([pp, uuid, weird]) =>
        fc.constantFrom(
          { name: `path.${pp.name}: ${clip(JSON.stringify(weird), 30)}`, apply: (p: RequestParts) => ({ ...p, path: { ...p.path, [pp.name]: weird } }) },
          { name: `path.${pp.name}: urn:uuid: form`, apply: (p: RequestParts) => ({ ...p, path: { ...p.path, [pp.name]: `urn:uuid:${uuid}` } }) },
          { name: `path.${pp.name}: raw %zz`, apply: (p: RequestParts) => ({ ...p, rawPath: { [pp.name]: "%zz" } }) },
          { name: `path.${pp.name}: empty`, apply: (p: RequestParts) => ({ ...p, rawPath: { [pp.name]: "" } }) },
          { name: `path.${pp.name}: %00`, apply: (p: RequestParts) => ({ ...p, rawPath: { [pp.name]: "%00" } }) },
        ),
      ),
    );
  }
  if (op.method === "POST" && op.keyed) {
    muts.push(
      // Malformed keys (400), and two well-formed spellings: RFC 8941's quoted form and 255 characters.
      fc.constantFrom("", " ", "x".repeat(256), "tab\there", "é", '""', '"', "a b", '"quoted-key"', "k".repeat(255)).map((k) => ({
        name: `Idempotency-Key: ${JSON.stringify(k)}`,
        apply: (p: RequestParts) => ({ ...p, headers: { ...p.headers, "idempotency-key": k } }),
      })),
    );
  }
  return fc.oneof(...muts);
}

/** The mutations of one value at `loc`, given its schema. */
function valueMutationsFor(schema: JsonSchema, loc: Loc, n: number, weird: string): { name: string; apply(p: RequestParts): RequestParts }[] {
  const set = (value: unknown) => (p: RequestParts) => ({ ...p, body: setAt(clone(p.body), loc, value) });
  const raw = (text: string) => (p: RequestParts) => ({ ...p, raw: JSON.stringify(setAt(clone(p.body), loc, RAW)).replace(RAW_JSON, text) });
  const out: { name: string; apply(p: RequestParts): RequestParts }[] = [
    { name: "null", apply: set(null) },
    { name: "wrong type (number)", apply: set(n % 7 === 0 ? -0.5 : 12345) },
    { name: "wrong type (boolean)", apply: set(true) },
    { name: "wrong type (array)", apply: set([]) },
    { name: "wrong type (object)", apply: set({}) },
    { name: "wrong type (string)", apply: set("a string") },
    { name: `unicode/odd string ${JSON.stringify(weird)}`, apply: set(weird) },
    { name: "Infinity-like string", apply: set(["Infinity", "-Infinity", "NaN", "1e400", "-0"][n % 5]) },
    { name: "raw 1e400", apply: raw("1e400") },
    { name: "raw -1e400", apply: raw("-1e400") },
    { name: "deep nesting (10,000 arrays)", apply: raw(deepArray(10_000)) },
    { name: "deep nesting (2,000 objects)", apply: raw(deepObject(2_000)) },
    { name: "huge string (200,000 chars)", apply: set("y".repeat(200_000)) },
  ];
  const type = schema.type;
  const maxLength = num(schema.maxLength);
  const minLength = num(schema.minLength);
  if (maxLength !== undefined) out.push({ name: `too long (${maxLength + 1})`, apply: set("z".repeat(maxLength + 1)) });
  if (minLength !== undefined && minLength > 0) out.push({ name: `too short (${minLength - 1})`, apply: set("z".repeat(minLength - 1)) });
  if (Array.isArray(schema.enum)) out.push({ name: "not in the enum", apply: set(`${String(schema.enum[n % schema.enum.length])}X`) });
  if (schema.format === "uuid") out.push({ name: "not a uuid", apply: set("0190a1d1-254c-7001-81bf-3a5f75b01c6") });
  if (schema.format === "date-time") out.push({ name: "not a date-time", apply: set(["2026-02-30T00:00:00Z", "2026-01-01", "yesterday", "2026-01-01T00:00:00"][n % 4]) });
  const maxItems = num(schema.maxItems);
  const minItems = num(schema.minItems);
  if (type === "array" && maxItems !== undefined) {
    out.push({ name: `too many items (${maxItems + 1})`, apply: (p) => ({ ...p, body: setAt(clone(p.body), loc, Array.from({ length: maxItems + 1 }, (_v, i) => getAt(p.body, [...loc, 0]) ?? `item${i}`)) }) });
  }
  if (type === "array" && minItems !== undefined && minItems > 0) out.push({ name: "too few items", apply: set([]) });
  if (schema.uniqueItems === true) out.push({ name: "duplicate items", apply: (p) => ({ ...p, body: setAt(clone(p.body), loc, [getAt(p.body, [...loc, 0]) ?? "a", getAt(p.body, [...loc, 0]) ?? "a"]) }) });
  const objectLike = type === "object" || (Array.isArray(type) && type.includes("object"));
  if (objectLike) {
    out.push({ name: "extra property", apply: (p) => ({ ...p, body: setAt(clone(p.body), [...loc, ["x_fuzz", "", "constructor", "toString", "hasOwnProperty"][n % 5] as string], 1) }) });
    out.push({ name: "__proto__ key", apply: raw(`{"__proto__":{"polluted":true}}`) });
    out.push({ name: "constructor.prototype key", apply: raw(`{"constructor":{"prototype":{"polluted":true}}}`) });
    const required = (schema.required ?? []) as string[];
    for (const r of required) {
      out.push({
        name: `missing required '${r}'`,
        apply: (p) => {
          const obj = getAt(p.body, loc);
          const rest = obj && typeof obj === "object" && !Array.isArray(obj) ? Object.fromEntries(Object.entries(obj).filter(([k]) => k !== r)) : {};
          return { ...p, body: setAt(clone(p.body), loc, rest) };
        },
      });
    }
    out.push({
      name: "duplicate key",
      apply: (p) => {
        const obj = getAt(p.body, loc);
        const first = obj && typeof obj === "object" && !Array.isArray(obj) ? Object.keys(obj)[0] : undefined;
        if (first === undefined) return { ...p, raw: JSON.stringify(setAt(clone(p.body), loc, RAW)).replace(RAW_JSON, '{"a":1,"a":2}') };
        const text = JSON.stringify({ [first]: 12345, ...(obj as object) });
        return { ...p, raw: JSON.stringify(setAt(clone(p.body), loc, RAW)).replace(RAW_JSON, text.replace("{", `{${JSON.stringify(first)}:12345,`).replace(`,${JSON.stringify(first)}:12345`, "")) };
      },
    });
  }
  return out;
}

// ───────────────────────────── classification ─────────────────────────────

const IDEMPOTENCY_KEY_FORMAT = "Idempotency-Key is not 1–255 printable ASCII (api.md §4)";
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

/** `#/components/schemas/X` of the document. */
export function resolver(doc: OpenApiDoc): (ref: string) => JsonSchema {
  return (ref) => {
    const m = /^#\/components\/schemas\/([\w-]+)$/.exec(ref);
    const s = m?.[1] ? doc.components?.schemas?.[m[1]] : undefined;
    if (!s) throw new Error(`fuzz-support: unresolvable $ref ${ref}`);
    return s as JsonSchema;
  };
}

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

// ───────────────────────────── the world ─────────────────────────────

export interface Resources {
  message: string[];
  failedMessage: string[];
  chat: string[];
  group: string[];
  webhook: string[];
  delivery: string[];
  attachment: string[];
  /** Uploaded and not yet used by a message. */
  freeAttachment: string[];
  participant: string[];
  /** Deliveries with their webhook: { id, delivery_id }. */
  hookDelivery: { id: string; delivery_id: string }[];
  /** Signed URL queries (expires, signature) of the attachments. */
  signed: { id: string; expires: string; signature: string }[];
}

const emptyResources = (): Resources => ({
  message: [], failedMessage: [], chat: [], group: [], webhook: [], delivery: [], attachment: [], freeAttachment: [], participant: [], hookDelivery: [], signed: [],
});

export interface Owner {
  acct: SeededAccount;
  mode: Mode;
  key: string;
  numbers: string[];
  res: Resources;
}

export interface World {
  t: TestApp;
  a: SeededAccount;
  b: SeededAccount;
  /** Account A's test and live sides: the fuzzer's callers. */
  own: Record<Mode, Owner>;
  /** Account B (both modes): resources no A key may see, and that nothing mutates. */
  foreign: Owner[];
  /** Lower-cased ids of B's resources, and of A's in each mode. */
  idsOf(owners: Owner[]): Set<string>;
}

const A_NUMBERS = ["+15557770101", "+15557770102"];
const B_NUMBERS = ["+15557770201"];
/** Recipients: the simulator's scripted ones and an ordinary iMessage user. */
const RECIPIENTS = [SIM.smsOnly, SIM.fails, SIM.neverDelivered, SIM.echoes, SIM.reactsLove, SIM.typesThenReplies, "+15557779999", "bob@example.com"];

/**
 * Webhook DNS for the fuzz apps (tests never reach the internet): `*.example.com` resolves to a
 * public address, `*.example.net` to a private one (refused), anything else does not resolve.
 * Nothing is ever delivered: the webhook worker is not run.
 */
export const fuzzResolver: Resolver = async (hostname) => {
  if (hostname === "example.com" || hostname.endsWith(".example.com")) return [{ address: "93.184.215.14", family: 4 }];
  if (hostname.endsWith(".example.net")) return [{ address: "10.1.2.3", family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
};

async function ok2xx(res: LightMyRequestResponse, what: string): Promise<Record<string, unknown>> {
  assert.ok(res.statusCode >= 200 && res.statusCode < 300, `seeding ${what}: ${res.statusCode} ${res.body}`);
  return (res.json() as { data: Record<string, unknown> }).data;
}

/** Gives an owner (account, mode) messages in several states, a 1:1 chat and a group, a webhook with a delivery, and attachments. */
async function seedOwner(t: TestApp, o: Owner): Promise<void> {
  const from = o.numbers[0] as string;
  const sendTo = async (to: string, text: string) => {
    const m = await ok2xx(await t.call(o.key, "POST", "/v1/messages", { from_handle: from, to, text }), `a message to ${to}`);
    o.res.message.push(String(m.id));
    if (!o.res.chat.includes(String(m.conversation_id))) o.res.chat.push(String(m.conversation_id));
    return m;
  };
  await sendTo("+15557779999", "hello");
  await sendTo(SIM.smsOnly, "sms");
  o.res.failedMessage.push(String((await sendTo(SIM.fails, "fails")).id));
  await sendTo(SIM.neverDelivered, "pending");
  const queuedLater = await ok2xx(await t.call(o.key, "POST", "/v1/messages", { from_handle: from, to: "+15557779998", text: "later", send_at: new Date(t.clock.now() + 86_400_000).toISOString() }), "a scheduled message");
  o.res.message.push(String(queuedLater.id));
  const members = ["+15557778881", "+15557778882"];
  const group = await ok2xx(await t.call(o.key, "POST", "/v1/chats", { from_handle: from, addresses: members, message: { text: "group hi" }, title: "Fuzz group" }), "a group");
  o.res.group.push(String(group.id));
  o.res.chat.push(String(group.id));
  o.res.participant.push(...members);
  const hook = await ok2xx(await t.call(o.key, "POST", "/v1/webhooks", { url: "https://hooks.example.com/fuzz" }), "a webhook");
  o.res.webhook.push(String(hook.id));
  const delivery = await ok2xx(await t.call(o.key, "POST", `/v1/webhooks/${hook.id}/test`, {}), "a test delivery");
  o.res.delivery.push(String(delivery.id));
  o.res.hookDelivery.push({ id: String(hook.id), delivery_id: String(delivery.id) });
  for (const name of ["a.txt", "b.txt", "c.txt"]) {
    const body = multipart([{ filename: name, type: "text/plain", data: Buffer.from(`file ${name}`) }]);
    const res = await t.app.inject({ method: "POST", url: "/v1/attachments", headers: { authorization: `Bearer ${o.key}`, ...body.headers }, payload: body.payload });
    const [att] = (await ok2xx(res, "an attachment")) as unknown as { id: string; url: string }[];
    assert.ok(att);
    o.res.attachment.push(att.id);
    o.res.freeAttachment.push(att.id);
    const u = new URL(att.url);
    o.res.signed.push({ id: att.id, expires: u.searchParams.get("expires") ?? "", signature: u.searchParams.get("signature") ?? "" });
  }
  const presigned = await ok2xx(await t.call(o.key, "POST", "/v1/attachments/presign", { filename: "p.bin", content_type: "application/octet-stream" }), "a presigned attachment");
  o.res.attachment.push(String(presigned.id));
  if (o.mode === "test") {
    const inbound = await ok2xx(await t.call(o.key, "POST", "/v1/test_helpers/inbound", { from_handle: from, remote_handle: "+15557776666", text: "hi there" }), "an inbound message");
    o.res.message.push(String(inbound.id));
    o.res.chat.push(String(inbound.conversation_id));
  }
}

/** Accounts A and B with numbers, and resources on each side (both modes); time moved on so messages reach their states. */
export async function seedWorld(t: TestApp): Promise<World> {
  const a = await t.seedAccount("Fuzz A");
  const b = await t.seedAccount("Fuzz B");
  await t.addNumber(a.id, A_NUMBERS[0] as string, "imessage,sms");
  await t.addNumber(a.id, A_NUMBERS[1] as string, "whatsapp");
  await t.addNumber(b.id, B_NUMBERS[0] as string, "imessage,sms");
  const owner = (acct: SeededAccount, mode: Mode, numbers: string[]): Owner => ({ acct, mode, key: mode === "test" ? acct.testKey : acct.liveKey, numbers, res: emptyResources() });
  const own = { test: owner(a, "test", A_NUMBERS), live: owner(a, "live", A_NUMBERS) };
  const foreign = [owner(b, "test", B_NUMBERS), owner(b, "live", B_NUMBERS)];
  for (const o of [own.test, own.live, ...foreign]) await seedOwner(t, o);
  await elapse(t, 10_000, 1_000);
  return {
    t,
    a,
    b,
    own,
    foreign,
    idsOf(owners) {
      const ids = new Set<string>();
      for (const o of owners) {
        for (const kind of ["message", "chat", "webhook", "delivery", "attachment"] as const) for (const v of o.res[kind]) ids.add(v.toLowerCase());
      }
      return ids;
    },
  };
}

// ───────────────────────────── hints ─────────────────────────────

/** A pick from `xs` as it is when the value is generated: the pools grow (and shrink) as the fuzzer creates and deletes. */
const live = <T>(xs: T[], none: T): fc.Arbitrary<T> => fc.nat().map((i) => (xs.length ? (xs[i % xs.length] as T) : none));

const MISSING_ID = "01900000-0000-7000-8000-000000000000";

const pickWeighted = <T>(...parts: [number, T[]][]): fc.Arbitrary<T> | undefined => {
  const arbs = parts.filter(([, xs]) => xs.length > 0).map(([weight, xs]) => ({ weight, arbitrary: live(xs, xs[0] as T) }));
  return arbs.length ? fc.oneof(...arbs) : undefined;
};

/** Adds what a successful request created to the caller's pools (and takes out a deleted webhook). */
export function track(w: World, mode: Mode, opId: string, path: Record<string, string>, data: unknown): void {
  const res = w.own[mode].res;
  const one = (data ?? {}) as { id?: string; conversation_id?: string };
  const push = (xs: string[], v: string | undefined) => {
    if (v && !xs.includes(v)) xs.push(v);
  };
  switch (opId) {
    case "POST /v1/messages":
    case "POST /v1/test_helpers/inbound":
      push(res.message, one.id);
      push(res.chat, one.conversation_id);
      break;
    case "POST /v1/chats":
      push(res.group, one.id);
      push(res.chat, one.id);
      break;
    case "POST /v1/webhooks":
      push(res.webhook, one.id);
      break;
    case "DELETE /v1/webhooks/{id}": {
      const i = res.webhook.indexOf(String(path.id).toLowerCase());
      if (i >= 0) res.webhook.splice(i, 1);
      break;
    }
    case "POST /v1/webhooks/{id}/test":
      push(res.delivery, one.id);
      if (one.id && path.id) res.hookDelivery.push({ id: path.id, delivery_id: one.id });
      break;
    case "POST /v1/attachments/presign":
      push(res.attachment, one.id);
      break;
    case "POST /v1/attachments":
      for (const a of Array.isArray(data) ? (data as { id: string }[]) : []) {
        push(res.attachment, a.id);
        push(res.freeAttachment, a.id);
      }
      break;
  }
}

/** Mostly absent (undefined), else `arb` (or the schema's own values, when `arb` is undefined). */
function rarely(arb: fc.Arbitrary<unknown> | undefined): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, ...(arb ? [{ weight: 1, arbitrary: arb }] : []));
}

/** The kind of resource a path's `{id}` names. */
function resourceOfPath(path: string): keyof Resources | null {
  const m = /^\/v1\/(messages|chats|webhooks|attachments)\/\{id\}/.exec(path);
  if (!m) return null;
  return ({ messages: "message", chats: "chat", webhooks: "webhook", attachments: "attachment" } as const)[m[1] as "messages"];
}

/**
 * Domain values for a caller in `mode`: mostly its own ids, sometimes the other side's (B's, or
 * A's other mode) or none at all; its numbers and the simulator's recipients; URLs that pass, and
 * some that are refused; times near the injected clock.
 */
export function hintsFor(w: World, mode: Mode, op: Operation): NonNullable<Generation["hint"]> {
  const me = w.own[mode].res;
  const others = [...w.foreign, w.own[mode === "test" ? "live" : "test"]];
  const other = (k: keyof Resources) => others.flatMap((o) => o.res[k] as string[]);
  const ids = (k: keyof Resources) => fc.oneof({ weight: 6, arbitrary: live(me[k] as string[], MISSING_ID) }, ...(other(k).length ? [{ weight: 2, arbitrary: fc.constantFrom(...other(k)) }] : []));
  const now = () => w.t.clock.now();
  const handles = pickWeighted([5, RECIPIENTS], [1, ["+1555", "5555550123", "+44 20 7946 0958", "+999999999999999", "tel:+15555550123", "a@", "someone@example.com"]]);
  const text = fc.oneof(fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }), fc.constantFrom(...WEIRD_STRINGS.filter((s) => s.length > 0)));
  // The body's schema has no required fields (to/from_handle or conversation_id, text or
  // attachments are rules of the handler); a typical send, with at most one extra, gets past them.
  const typicalSend = (): fc.Arbitrary<unknown> | undefined => {
    const extras = fc.oneof(
      fc.constant({}),
      fc.record({ send_at: fc.integer({ min: -60_000, max: 3 * 86_400_000 }).map((d) => new Date(now() + d).toISOString()) }),
      fc.record({ attachment_ids: live(me.freeAttachment, MISSING_ID).map((a) => [a]) }),
      fc.record({ reply_to: live(me.message, MISSING_ID) }),
      fc.record({ effect: fc.constantFrom("slam", "confetti") }),
      fc.record({ channel: fc.constantFrom("imessage", "sms", "whatsapp") }),
      fc.record({ metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ maxLength: 500 }), { maxKeys: 20 }) }),
    );
    const base = { from_handle: fc.constantFrom(...A_NUMBERS), to: handles ?? fc.constant("+15557779999"), text };
    return fc.tuple(fc.record(base), extras).map(([b, e]) => ({ ...b, ...e }));
  };
  return (name, schema) => {
    switch (name) {
      case "":
        if (op.id === "POST /v1/messages") return typicalSend();
        if (op.id === "POST /v1/test_helpers/inbound") return fc.record({ from_handle: fc.constantFrom(...A_NUMBERS), remote_handle: handles ?? fc.constant("+15557776666"), text });
        if (op.id === "POST /v1/chats") {
          // Ordinary iMessage users (the simulator refuses its SMS-only and failing recipients in a group).
          const member = fc.integer({ min: 0, max: 9999 }).map((n) => `+1555666${String(n).padStart(4, "0")}`);
          return fc.record({ from_handle: fc.constant(A_NUMBERS[0] as string), addresses: fc.uniqueArray(member, { minLength: 2, maxLength: 5 }), message: fc.record({ text }) });
        }
        if (op.id === "POST /v1/test_helpers/group_changes") {
          return fc.oneof(
            fc.record({ conversation_id: live(me.group, MISSING_ID), type: fc.constant("renamed"), title: fc.option(fc.constantFrom("New name", "😀"), { nil: null }) }),
            fc.record({ conversation_id: live(me.group, MISSING_ID), type: fc.constantFrom("participant_added", "participant_removed"), handle: live(me.participant, "+15557778881") }),
          );
        }
        return undefined;
      case "path":
        if (op.id === "POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry") return me.hookDelivery.length ? live(me.hookDelivery, me.hookDelivery[0] as { id: string; delivery_id: string }) : undefined;
        if (op.id === "POST /v1/messages/{id}/retry") return fc.record({ id: live(me.failedMessage, MISSING_ID) });
        return undefined;
      case "path.id": {
        const kind = resourceOfPath(op.path);
        return kind ? ids(kind) : undefined;
      }
      case "path.delivery_id":
        return ids("delivery");
      case "path.handle":
        return op.path.includes("/participants/") ? pickWeighted([4, me.participant], [1, RECIPIENTS]) : pickWeighted([4, A_NUMBERS], [1, B_NUMBERS]);
      case "from_handle":
        return pickWeighted([8, A_NUMBERS], [1, B_NUMBERS], [1, ["+15557770999"]]);
      case "to":
      case "remote_handle":
      case "handle":
      case "by":
      case "addresses[]":
      case "query.handle":
        return handles;
      case "query.from_handle":
        return pickWeighted([8, A_NUMBERS], [1, B_NUMBERS]);
      // Optional fields that make most sends fail when combined at random are left out more often
      // than not (JSON drops an undefined value).
      case "conversation_id":
        return rarely(ids("chat"));
      case "channel":
      case "effect":
      case "metadata":
      case "voice_memo":
        return rarely(undefined);
      case "query.conversation_id":
        return ids("chat");
      case "reply_to":
        return rarely(ids("message"));
      case "attachment_ids":
        return rarely(undefined);
      case "attachment_ids[]":
        return fc.oneof({ weight: 6, arbitrary: live(me.freeAttachment, MISSING_ID) }, { weight: 3, arbitrary: ids("attachment") });
      case "url": {
        // Mostly URLs that pass (so endpoints exist to act on), sometimes ones that are refused.
        const passes = fc.constantFrom("https://hooks.example.com/in", "http://hooks.example.com:8080/p?q=1", "https://HOOKS.example.com/%7Efuzz", "https://93.184.215.14/x", "https://hooks.example.com/ü");
        const refused = fc.constantFrom(
          "https://a.example.net/private", "http://127.0.0.1/x", "http://[::1]/", "http://169.254.169.254/latest", "ftp://hooks.example.com/",
          "https://user:pw@hooks.example.com/", "https://nowhere.invalid/", "https://localhost/", "//hooks.example.com/", "https://hooks.example.com/\u0000",
        );
        const url = fc.oneof({ weight: 3, arbitrary: passes }, { weight: 1, arbitrary: refused });
        return op.method === "PATCH" ? rarely(url) : url;
      }
      case "send_at":
        return rarely(fc.integer({ min: -3_600_000, max: 31 * 86_400_000 }).map((d) => new Date(now() + d).toISOString()));
      case "query.before":
        return fc.oneof(
          fc.integer({ min: -86_400_000, max: 86_400_000 }).map((d) => new Date(now() + d).toISOString()),
          ...[ids("message"), ids("chat"), ids("webhook"), ids("delivery")].filter((x): x is fc.Arbitrary<string> => x !== undefined),
        );
      case "reaction":
        return fc.constantFrom(...TAPBACKS, "👍", "❤️", "🇫🇷", "👍🏽", "love ", "LOVE", "a");
      case "query.expires":
      case "query.signature": {
        const signed = [...me.signed, ...others.flatMap((o) => o.res.signed)];
        return signed.length ? fc.constantFrom(...signed.map((s) => (name === "query.expires" ? s.expires : s.signature))) : undefined;
      }
      case "filename":
        return fc.constantFrom("photo.jpg", "note.txt", "../../etc/passwd", "a\u0000b.png", "😀.gif", "x".repeat(255));
      case "content_type":
        return fc.constantFrom("image/png", "text/plain; charset=utf-8", "application/octet-stream", "application/x-msdownload", "video/mp4");
      case "title":
      case "message.title":
        return typeof schema.type === "string" ? fc.constantFrom("Team", "😀 group", "x".repeat(100)) : undefined;
    }
    return undefined;
  };
}

/** Every id in the world (lower case) that the caller in `mode` must not see. */
export function foreignIds(w: World, mode: Mode): Set<string> {
  return w.idsOf([...w.foreign, w.own[mode === "test" ? "live" : "test"]]);
}
