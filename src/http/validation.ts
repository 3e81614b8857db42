import { Ajv, type ErrorObject } from "ajv";
import addFormats from "ajv-formats";
import type { FastifyInstance } from "fastify";

/**
 * Two validators. JSON bodies are checked strictly: no type coercion ("5" is not a number), no
 * silently removed fields — an unknown field is an error (api.md §1). Query strings, path params
 * and headers arrive as text, so there numbers and booleans are coerced from their text form.
 */
function makeAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    coerceTypes: coerce ? "array" : false,
    removeAdditional: false,
    useDefaults: true,
    allErrors: false,
    strict: false,
    // `strict: false` also turns strictNumbers off, which lets 1e400 (Infinity) pass as an
    // integer and then serialise as null. Non-finite numbers are never valid input.
    strictNumbers: true,
  });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

export function installValidators(app: FastifyInstance): void {
  const body = makeAjv(false);
  const text = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart, url }) => {
    const validate = (httpPart === "body" ? body : text).compile(schema);
    // The API's own routes; device webhooks (/ingest) take their payloads as the device sends them.
    if (!url.startsWith("/v1/")) return validate;
    const checked = Object.assign(
      (data: unknown): boolean => {
        const bad = validate(data) ? unstorable(data, "") : null;
        checked.errors = bad ? [{ keyword: "unstorable", schemaPath: "", params: {}, ...bad }] : validate.errors;
        return !checked.errors;
      },
      { errors: null as ErrorObject[] | null | undefined },
    );
    return checked;
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point
const UNSTORABLE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What the schemas cannot say, checked once they pass (so the value's depth is bounded): no text
 * holds a NUL or an unpaired surrogate — PostgreSQL refuses NUL in text (a 500), and neither
 * survives UTF-8 storage unchanged, so the stored text would differ from the answer — and no
 * number is infinite: ajv coerces the query text "Infinity" or "1e400" to Infinity and then skips
 * its own finiteness check, so `limit=1e400` reached SQL as LIMIT Infinity.
 */
function unstorable(value: unknown, path: string): { instancePath: string; message: string } | null {
  if (typeof value === "string") return UNSTORABLE_TEXT.test(value) ? { instancePath: path, message: "must not contain NUL characters or unpaired surrogates" } : null;
  if (typeof value === "number") return Number.isFinite(value) ? null : { instancePath: path, message: "must be a finite number" };
  if (value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value)) {
    // A webhook url has its own, stricter check (webhooks/url-check.ts): control characters in it
    // are 400 invalid_url, as the SSRF table requires, and it is stored only in its parsed form.
    if (k === "url" && path === "") continue;
    const bad = unstorable(k, path) ?? unstorable(v, `${path}/${k}`);
    if (bad) return bad;
  }
  return null;
}

/** A validation failure as one sentence naming the field, e.g. `body.to must be string`. */
export function describeValidation(errors: ErrorObject[] | readonly { instancePath?: string; message?: string; keyword?: string; params?: Record<string, unknown> }[], context: string | undefined): string {
  const e = errors[0];
  if (!e) return "The request failed validation.";
  const where = [context ?? "request", ...(e.instancePath ?? "").split("/").filter(Boolean)].join(".");
  const params = (e.params ?? {}) as Record<string, unknown>;
  switch (e.keyword) {
    case "additionalProperties":
      return `${where} has an unknown field '${String(params.additionalProperty)}'.`;
    case "required":
      return `${where} is missing the required field '${String(params.missingProperty)}'.`;
    case "enum":
      return `${where} must be one of: ${(params.allowedValues as unknown[] | undefined)?.join(", ") ?? "the allowed values"}.`;
    default:
      return `${where} ${e.message ?? "is invalid"}.`;
  }
}
