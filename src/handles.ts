import { parsePhoneNumberFromString } from "libphonenumber-js/max";

/**
 * Handles are E.164 phone numbers or iMessage emails (api.md §1). Phones get libphonenumber's
 * *possible number* check (country code exists, length fits) and not the strict *valid number*
 * check, which rejects the 555 numbers the docs and the simulator use.
 */
const EMAIL_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const E164_RE = /^\+[1-9]\d{1,14}$/;

export type HandleKind = "phone" | "email";

type Normalised = { handle: string; kind: HandleKind } | null;

// Parsing a phone number with full metadata costs tens of microseconds and the same handles come
// back on every send: results are memoised (a pure function), in a map cleared when it is full.
const memo = new Map<string, Normalised>();

/** The normalised handle, or null when it is neither a possible E.164 number nor an email. */
export function normaliseHandle(input: string): Normalised {
  const hit = memo.get(input);
  if (hit !== undefined) return hit;
  const result = parse(input);
  if (memo.size >= 50_000) memo.clear();
  memo.set(input, result);
  return result;
}

function parse(input: string): Normalised {
  const s = input.trim();
  if (E164_RE.test(s)) {
    const p = parsePhoneNumberFromString(s);
    if (p?.isPossible()) return { handle: p.number, kind: "phone" };
    return null;
  }
  if (s.length <= 254 && EMAIL_RE.test(s)) return { handle: s.toLowerCase(), kind: "email" };
  return null;
}

export function isPhoneHandle(input: string): boolean {
  return normaliseHandle(input)?.kind === "phone";
}
