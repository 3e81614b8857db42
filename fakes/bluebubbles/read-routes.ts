// ---- routes: reading --------------------------------------------------------------------------------
import { badRequest, notFound, ok, serverError } from "./envelopes.js";
import { str } from "./http-io.js";
import type { Mac } from "./mac.js";
import { parseWith, serialize, shapeFromWith } from "./serializers.js";
import type { Ctx, FakeMessage, Reply } from "./types.js";

export function getMessage(mac: Mac, c: Ctx): Reply {
  const m = mac.db.findMessage(c.params[0] ?? "");
  if (!m) throw notFound("Message does not exist!");
  return ok("Success", serialize(mac.db, m, shapeFromWith(parseWith(c.query.with))));
}

/** `POST /message/query` (§1.3): filters on dateCreated only (>= after, < before), like `getMessages`. */
export function query(mac: Mac, c: Ctx): Reply {
  const b = c.body;
  const offset = b.offset === undefined ? 0 : Number(b.offset);
  const limit = b.limit === undefined ? 100 : Number(b.limit);
  const sort = b.sort === undefined ? "DESC" : b.sort;
  if (!Number.isInteger(offset) || offset < 0) throw badRequest("The offset must be at least 0.");
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest("The limit must be between 1 and 1000.");
  if (sort !== "ASC" && sort !== "DESC") throw badRequest("The selected sort is invalid.");
  for (const k of ["after", "before"] as const) if (b[k] !== undefined && !Number.isFinite(Number(b[k]))) throw badRequest(`The ${k} must be a number.`);
  if (b.where !== undefined && !Array.isArray(b.where)) throw badRequest("The where must be an array.");
  let rows = mac.state.messages;
  const chatGuid = str(b.chatGuid);
  if (chatGuid) {
    const chat = mac.db.findChat(chatGuid);
    if (!chat) return ok(`No chat found with GUID: ${chatGuid}`, []);
    rows = rows.filter((m) => m.chatGuid === chat.guid);
  }
  if (b.after !== undefined) rows = rows.filter((m) => m.dateCreated >= Number(b.after));
  if (b.before !== undefined) rows = rows.filter((m) => m.dateCreated < Number(b.before));
  for (const w of (b.where as unknown[] | undefined) ?? []) rows = rows.filter(whereFilter(mac, w));
  const sorted = [...rows].sort((x, y) => x.dateCreated - y.dateCreated || mac.db.rowId(x) - mac.db.rowId(y));
  if (sort === "DESC") sorted.reverse();
  const page = sorted.slice(offset, offset + limit);
  const shape = shapeFromWith(Array.isArray(b.with) ? b.with.map(String) : parseWith(str(b.with)));
  const data = page.map((m) => serialize(mac.db, m, shape));
  return ok("Successfully fetched messages!", data, { offset, limit, total: rows.length, count: data.length });
}

/** The `where:[{statement, args}]` clauses a connector uses: `message.<column> <op> :arg` (or `IN (:...arg)`). */
function whereFilter(mac: Mac, w: unknown): (m: FakeMessage) => boolean {
  const clause = (w ?? {}) as { statement?: unknown; args?: Record<string, unknown> };
  const stmt = str(clause.statement) ?? "";
  const p = /^\s*(?:message\.)?(\w+)\s*(==|=|!=|<>|>=|<=|>|<|IN|LIKE)\s*(?:\(\s*:\.\.\.(\w+)\s*\)|:(\w+))\s*$/i.exec(stmt);
  const column = p?.[1] ?? "";
  const columns: Record<string, (m: FakeMessage) => unknown> = {
    guid: (m) => m.guid, ROWID: (m) => mac.db.rowId(m), text: (m) => m.text, is_from_me: (m) => (m.isFromMe ? 1 : 0),
    associated_message_guid: (m) => m.associatedMessageGuid, error: (m) => m.error,
  };
  const get = columns[column];
  if (!p || !get) throw serverError(`SQLITE_ERROR: statement not supported by the fake: ${stmt}`);
  const op = (p[2] ?? "").toUpperCase();
  const arg = clause.args?.[p[3] ?? p[4] ?? ""];
  return (m) => {
    const v = get(m) as string | number | null;
    if (op === "IN") return Array.isArray(arg) && arg.includes(v);
    if (op === "LIKE") return likeRegex(String(arg)).test(String(v ?? ""));
    const a = arg as string | number;
    if (op === "=" || op === "==") return v === a;
    if (op === "!=" || op === "<>") return v !== a;
    if (v === null) return false;
    return op === ">" ? v > a : op === ">=" ? v >= a : op === "<" ? v < a : v <= a;
  };
}

function likeRegex(pattern: string): RegExp {
  const body = pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/%/g, ".*").replace(/_/g, ".");
  return new RegExp(`^${body}$`, "is");
}

export function download(mac: Mac, c: Ctx): Reply {
  const guid = c.params[0] ?? "";
  for (const m of mac.state.messages) for (const a of m.attachments) if (a.guid === guid) return { file: a };
  throw notFound("Attachment does not exist!");
}
