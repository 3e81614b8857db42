/**
 * The fuzzer's reading of the running app's own OpenAPI document (reliability.md §6,
 * FUZZ-P01…P08): its operations, and its local `$ref`s.
 */
import assert from "node:assert/strict";
import type { OpenApiDoc } from "./edge-support.js";

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

/** `#/components/schemas/X` of the document. */
export function resolver(doc: OpenApiDoc): (ref: string) => JsonSchema {
  return (ref) => {
    const m = /^#\/components\/schemas\/([\w-]+)$/.exec(ref);
    const s = m?.[1] ? doc.components?.schemas?.[m[1]] : undefined;
    if (!s) throw new Error(`fuzz-openapi: unresolvable $ref ${ref}`);
    return s as JsonSchema;
  };
}
