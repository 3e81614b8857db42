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
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? body : text).compile(schema));
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
