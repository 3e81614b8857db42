/**
 * Requests generated from the running app's own OpenAPI document (reliability.md §6,
 * FUZZ-P01…P08): a small JSON Schema → fast-check converter, and the valid parts of a request.
 *
 * - The converter supports exactly the keywords the document uses (type and type arrays, enum,
 *   const, anyOf/oneOf, $ref, format uuid/date-time, min/maxLength, pattern, minimum/maximum,
 *   items, min/maxItems, uniqueItems, properties, required, additionalProperties, propertyNames,
 *   maxProperties); anything else throws, so a new schema feature never goes silently ungenerated.
 * - The multipart body of POST /v1/attachments is not generated from its schema (a `binary`
 *   array): valid requests send one small file; its mutations (fuzz-mutations.ts) are content
 *   types, malformed multipart and bodies cut short.
 */
import fc from "fast-check";
import { multipart } from "./attachment-support.js";
import type { RequestParts } from "./fuzz-http.js";
import type { JsonSchema, Operation } from "./fuzz-openapi.js";

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
export const WEIRD_STRINGS = [
  "", " ", "\u0000", "a\u0000b", "\ud800", "x\udfffy", "\u202eevil", "\u200b", "\ufeff", "Ｆｕｌｌ", "😀👍🏽👨‍👩‍👧", "e\u0301",
  "null", "undefined", "true", "0", "-0", "-1", "1e400", "Infinity", "-Infinity", "NaN", "0x10", "١٢٣",
  "__proto__", "constructor", "prototype", "%00", "%zz", "%2e%2e%2f", "../../etc/passwd", "' OR '1'='1' --", "<script>x</script>",
  "{{7*7}}", "$\u007bjndi:x}", "\r\n", "\t", "\\", '"', "sk_test_0000", "+", "@", "+1", "+15555550123", "a@b.co",
];

/** Code points, as ajv counts string lengths. */
const codePoints = (s: string): number => [...s].length;

export const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

export function arbitraryFor(schema: JsonSchema, g: Generation, name = ""): fc.Arbitrary<unknown> {
  const own = schemaArbitrary(schema, g, name);
  const hinted = g.hint?.(name, schema);
  return hinted ? fc.oneof({ arbitrary: hinted, weight: 4 }, { arbitrary: own, weight: 1 }) : own;
}

function schemaArbitrary(schema: JsonSchema, g: Generation, name: string): fc.Arbitrary<unknown> {
  for (const k of Object.keys(schema)) {
    if (!KEYWORDS.has(k)) throw new Error(`fuzz-arbitraries: unsupported JSON Schema keyword '${k}' at ${name || "(root)"}`);
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
  throw new Error(`fuzz-arbitraries: no type at ${name || "(root)"}: ${JSON.stringify(schema)}`);
}

function stringArbitrary(s: JsonSchema, name: string): fc.Arbitrary<string> {
  const min = num(s.minLength) ?? 0;
  const max = num(s.maxLength) ?? 20_000;
  const fits = (x: string) => codePoints(x) >= min && codePoints(x) <= max;
  if (s.format === "uuid") return fc.oneof({ arbitrary: fc.uuid(), weight: 9 }, { arbitrary: fc.uuid().map((u) => u.toUpperCase()), weight: 1 });
  if (s.format === "date-time") return isoTime(Date.UTC(1970, 0, 1), Date.UTC(2100, 0, 1));
  if (s.format !== undefined) throw new Error(`fuzz-arbitraries: unsupported string format '${String(s.format)}' at ${name}`);
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
  if (!s.items || typeof s.items !== "object") throw new Error(`fuzz-arbitraries: array without items at ${name}`);
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
  } else if (op.body) throw new Error(`fuzz-arbitraries: ${op.id}: request content type ${op.body.contentType} is not supported`);
  return fc.tuple(path, query, body).map(([p, q, b]) => ({ path: p as Record<string, string>, query: q, ...b }));
}
