/**
 * Near-valid requests (FUZZ-P02/P08): one field, the body, the query, a path parameter, the
 * content type or the Idempotency-Key of a valid request made wrong.
 */
import fc from "fast-check";
import { type Generation, num, WEIRD_STRINGS } from "./fuzz-arbitraries.js";
import { clip, encode, type RequestParts } from "./fuzz-http.js";
import type { JsonSchema, Operation } from "./fuzz-openapi.js";

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
export const JSON_TYPES = new Set(["application/json", "application/json; charset=utf-8"]);
export const NOT_JSON = new Set(CONTENT_TYPES.slice(0, 6));

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
