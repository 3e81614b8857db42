/** Helpers for edge.test.ts: the OpenAPI document as a validator, a database dump, log capture. */
import { Writable } from "node:stream";
import addFormats from "ajv-formats";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { sql } from "kysely";
import type { Db } from "../src/db/client.js";
import { buildTestApp, type TestApp, type TestAppOptions } from "./helpers.js";

export interface OpenApiDoc {
  openapi: string;
  info: { title: unknown; version: unknown };
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
  components?: { schemas?: Record<string, unknown> };
}

export async function openApiDoc(t: TestApp): Promise<OpenApiDoc> {
  const res = await t.call(null, "GET", "/v1/openapi.json");
  if (res.statusCode !== 200) throw new Error(`GET /v1/openapi.json: ${res.statusCode}`);
  return JSON.parse(res.body) as OpenApiDoc;
}

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

/**
 * The document loaded into a JSON Schema 2020-12 validator (OpenAPI 3.1's dialect), so its
 * `#/components/...` references resolve; `schemaAt` compiles one JSON schema of it.
 */
export function openApiSchemas(doc: OpenApiDoc): (...path: string[]) => ValidateFunction {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema(doc as object, "openapi.json");
  return (...path) => {
    const v = ajv.getSchema(`openapi.json#/${pointer(...path)}`);
    if (!v) throw new Error(`no schema at ${path.join(" ")}`);
    return v;
  };
}

/** A validator for one documented JSON response, e.g. ("/v1/numbers", "get", "200"). */
export async function openApiValidator(t: TestApp, path: string, method: string, status: string): Promise<ValidateFunction> {
  return openApiSchemas(await openApiDoc(t))("paths", path, method, "responses", status, "content", "application/json", "schema");
}

/** Every row of every table as JSON text, keyed by table name. */
export async function tableDump(db: Db): Promise<string> {
  const names =
    db.dialect === "sqlite"
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db.kysely)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(db.kysely);
  const dump: Record<string, unknown[]> = {};
  for (const { name } of names.rows) dump[name] = (await sql`select * from ${sql.table(name)}`.execute(db.kysely)).rows;
  return JSON.stringify(dump);
}

/**
 * Boots the app with a trace-level pino logger writing into memory, runs `requests`, closes the
 * app, and returns every log line.
 */
export async function captureLogs(opts: TestAppOptions, requests: (t: TestApp) => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const t = await buildTestApp({ ...opts, logger: { level: "trace", stream } });
  try {
    await requests(t);
  } finally {
    await t.close();
  }
  return lines;
}
