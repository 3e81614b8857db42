import type { SwaggerOptions } from "@fastify/swagger";
import type { Config } from "../config.js";

/** The OpenAPI document is generated from the route schemas; this is only its frame. */
export function openApiDocument(config: Config): SwaggerOptions {
  return {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "MsgBubbles API",
        version: "1",
        description:
          "One REST API and one webhook stream for iMessage, SMS and WhatsApp. Every response carries request_id (also in X-Request-Id); errors are { error, message, request_id }.",
      },
      servers: [{ url: config.PUBLIC_URL ?? `http://${config.HOST}:${config.PORT}` }],
      components: {
        securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "sk_live_… or sk_test_…" } },
      },
      security: [{ apiKey: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`),
    },
  };
}
