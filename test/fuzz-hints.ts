/**
 * Field hints (handles, ids from the world, webhook URLs, times near the clock) are offered
 * beside the schema's own values, never instead of them, so requests get past the business
 * checks often enough to reach the code behind them.
 */
import fc from "fast-check";
import type { Mode } from "../src/db/schema.js";
import { TAPBACKS } from "../src/messages/schemas.js";
import { type Generation, WEIRD_STRINGS } from "./fuzz-arbitraries.js";
import type { Operation } from "./fuzz-openapi.js";
import { A_NUMBERS, B_NUMBERS, RECIPIENTS, type Resources, type World } from "./fuzz-world.js";

// ───────────────────────────── hints ─────────────────────────────

/** A pick from `xs` as it is when the value is generated: the pools grow (and shrink) as the fuzzer creates and deletes. */
const live = <T>(xs: T[], none: T): fc.Arbitrary<T> => fc.nat().map((i) => (xs.length ? (xs[i % xs.length] as T) : none));

const MISSING_ID = "01900000-0000-7000-8000-000000000000";

const pickWeighted = <T>(...parts: [number, T[]][]): fc.Arbitrary<T> | undefined => {
  const arbs = parts.filter(([, xs]) => xs.length > 0).map(([weight, xs]) => ({ weight, arbitrary: live(xs, xs[0] as T) }));
  return arbs.length ? fc.oneof(...arbs) : undefined;
};

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
