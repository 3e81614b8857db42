import { ApiError } from "../errors.js";
import { isUuid } from "../ids.js";

/**
 * `before` is an ISO timestamp (items strictly older) or an item id (items after that one in the
 * newest-first order: exact even when timestamps tie). Resolved here into a (time, id) bound.
 */
export type Cursor = { time: string; id: string | null } | null;

export async function resolveCursor(before: string | undefined, timeOfId: (id: string) => Promise<string | null | undefined>): Promise<Cursor> {
  if (before === undefined) return null;
  if (isUuid(before)) {
    const time = await timeOfId(before.toLowerCase());
    if (!time) throw new ApiError("invalid_request", "query.before is not the id of an item of this list.");
    return { time, id: before.toLowerCase() };
  }
  const ms = Date.parse(before);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(before) || Number.isNaN(ms)) {
    throw new ApiError("invalid_request", "query.before must be an ISO 8601 timestamp or an item id.");
  }
  return { time: new Date(ms).toISOString(), id: null };
}

/** Fetch `limit + 1` rows, return `limit` and whether there were more. */
export function page<T>(rows: T[], limit: number): { items: T[]; hasMore: boolean } {
  return { items: rows.slice(0, limit), hasMore: rows.length > limit };
}
