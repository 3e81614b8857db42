import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Message } from "../messages/schemas.js";
import { Webhook } from "../webhooks/schemas.js";
import { EVENT_TYPES } from "./catalog.js";

// docs/webhooks.md documents every event type with an example payload; it must match the catalog.
describe("docs/webhooks.md", () => {
  const doc = readFileSync(new URL("../../docs/webhooks.md", import.meta.url), "utf8");
  // Each event type is a "### `type`" heading; its section runs to the next heading of level ≤ 3.
  const headings = [...doc.matchAll(/^### `([^`]+)`[ \t]*$/gm)];
  const sections = headings.map((h) => {
    const start = (h.index ?? 0) + h[0].length;
    const rest = doc.slice(start);
    const end = rest.search(/^#{1,3} /m);
    return { type: h[1] ?? "", body: end === -1 ? rest : rest.slice(0, end) };
  });
  const documented = sections.map((s) => s.type);
  const catalog: readonly string[] = EVENT_TYPES;

  it("documents every type of EVENT_TYPES", () => {
    assert.deepEqual(catalog.filter((t) => !documented.includes(t)), [], "in src/events/catalog.ts but not in docs/webhooks.md");
  });

  it("documents no type that EVENT_TYPES lacks", () => {
    assert.deepEqual(documented.filter((t) => !catalog.includes(t)), [], "in docs/webhooks.md but not in src/events/catalog.ts");
  });

  it("documents each type once", () => {
    assert.equal(new Set(documented).size, documented.length);
  });

  for (const { type, body } of sections) {
    it(`${type}: every example is JSON, an event envelope of that type`, () => {
      const examples = [...body.matchAll(/^```json\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? "");
      assert.ok(examples.length > 0, `no \`\`\`json example under ${type}`);
      for (const text of examples) {
        const event = JSON.parse(text) as Record<string, unknown>;
        assert.deepEqual(Object.keys(event), ["id", "type", "created_at", "livemode", "data"]);
        assert.equal(event.type, type);
        assert.equal(typeof event.livemode, "boolean");
        assert.equal(typeof event.data, "object");
        // Message events carry the message object: its fields, in the documented order.
        if (type.startsWith("message.") && type !== "message.reaction") {
          assert.deepEqual(Object.keys(event.data as object), Object.keys(Message.properties));
        }
        // Webhook events carry the endpoint object, never its secret.
        if (type.startsWith("webhook.")) {
          assert.deepEqual(Object.keys(event.data as object), Object.keys(Webhook.properties).filter((k) => k !== "secret"));
        }
      }
    });
  }
});
