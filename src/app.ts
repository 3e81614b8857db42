import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import type { Db } from "./db/client.js";
import * as health from "./health/routes.js";
import { authenticate } from "./http/auth.js";
import { ErrorBody } from "./http/envelope.js";
import { Attachment, Message } from "./messages/schemas.js";
import { Chat } from "./chats/schemas.js";
import { clientErrors, frameworkErrors, installErrorHandling } from "./http/error-handler.js";
import { Idempotency } from "./http/idempotency.js";
import { installMetrics } from "./http/metrics.js";
import { openApiDocument } from "./http/openapi.js";
import { DatabaseRateLimiter, MemoryRateLimiter, type RateLimiter } from "./http/rate-limiter.js";
import { installValidators } from "./http/validation.js";
import { ApiError } from "./errors.js";
import { requestId } from "./ids.js";
import * as numbers from "./numbers/routes.js";
import * as messages from "./messages/routes.js";
import * as chats from "./chats/routes.js";
import * as lookup from "./lookup/routes.js";
import * as testHelpers from "./test-helpers/routes.js";
import { Backends } from "./backends/registry.js";
import { SimulatorBackend } from "./backends/simulator.js";
import { BlueBubblesBackend } from "./backends/bluebubbles/backend.js";
import { WahaBackend } from "./backends/waha/backend.js";
import { Dispatcher } from "./dispatch/dispatcher.js";
import * as webhooks from "./webhooks/routes.js";
import * as attachments from "./attachments/routes.js";
import { type AttachmentService, createAttachmentService } from "./attachments/service.js";
import { Webhook, WebhookDelivery } from "./webhooks/schemas.js";
import { policyFromConfig, type Resolver, systemResolver } from "./webhooks/address-policy.js";
import { checkWebhookUrl } from "./webhooks/url-check.js";
import { WebhookWorker } from "./webhooks/worker.js";
import { DeviceMonitor } from "./backends/monitor.js";
import * as ingest from "./backends/ingest-route.js";

export interface AppDeps {
  config: Config;
  db: Db;
  clock?: Clock;
  /** Defaults to in-memory on SQLite (one process) and the database on PostgreSQL (a cluster). */
  limiter?: RateLimiter;
  /** Pino options or false; tests pass a capturing stream. */
  logger?: FastifyServerOptions["logger"];
  /** Device back-ends; defaults to the simulator for everything. */
  backends?: Backends;
  /** Extra routes under /v1, registered with the same hooks (tests use this for test-only routes). */
  extraRoutes?: (v1: FastifyInstance, services: Services) => void;
  /** DNS for webhook URLs, at registration and at delivery; tests inject answers (no internet). */
  webhookResolver?: Resolver;
  /** Jitter source of the webhook retry schedule; tests pin it. */
  webhookRandom?: () => number;
}

/** What routes get besides the database: shared, per-app pieces. */
export interface Services {
  db: Db;
  clock: Clock;
  config: Config;
  idempotency: Idempotency;
  backends: Backends;
  /** The outbound engine; serve starts its loop, tests drive it with tick()/runUntilIdle(). */
  dispatcher: Dispatcher;
  /** The webhook delivery worker; serve starts its loop, tests drive it with tick()/runUntilIdle(). */
  webhooks: WebhookWorker;
  /** Registration-time check of a webhook URL (400 invalid_url); resolves with the app's resolver. */
  checkWebhookUrl(raw: string): Promise<URL>;
  /** Attachment storage, signed URLs and upload/media settings (src/attachments). */
  attachments: AttachmentService;
  /** Health checks, webhook subscription and polling of real devices; serve starts it, tests tick() it. */
  devices: DeviceMonitor;
}

const NO_QUERY = { type: "object", properties: {}, additionalProperties: false } as const;
const KEY_IN_URL = /sk_(live|test)_[0-9A-Za-z]+/g;
/** Other credentials that travel in URLs: device ingest secrets, attachment URL signatures. */
const SECRET_IN_URL = /([?&](?:secret|signature)=)[^&#]*/gi;

/**
 * Builds the app without listening (cli/serve.ts listens). Order of the edges, per request:
 * request id → body size limit → auth + per-key rate limit (onRequest, /v1 only) → parse and
 * schema validation → idempotency claim (inside the route) → handler → one error handler.
 */
export async function createApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, db } = deps;
  const clock = deps.clock ?? systemClock;
  const custom = typeof deps.logger === "object" && deps.logger !== null ? deps.logger : {};
  const app = Fastify({
    logger:
      deps.logger === false
        ? false
        : {
            level: config.LOG_LEVEL,
            ...custom,
            // Keys belong in the Authorization header, but a client may still put one in a URL;
            // the log never shows it, whatever logger options are passed (reliability.md SEC-T06).
            serializers: {
              ...("serializers" in custom ? custom.serializers : {}),
              req: (req) => ({ method: req.method, url: String(req.url).replace(KEY_IN_URL, "sk_$1_[redacted]").replace(SECRET_IN_URL, "$1[redacted]"), remoteAddress: req.ip }),
            },
          },
    genReqId: requestId,
    requestIdHeader: false,
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Path parameters include handles: an email of up to 254 characters, percent-encoded (up to
    // three bytes each); the router's default of 100 refused valid ones.
    routerOptions: { maxParamLength: 1024 },
    trustProxy: config.TRUST_PROXY,
    // Slow-loris: a client that trickles headers or a body is cut off. Node checks the deadlines
    // every connectionsCheckingInterval (30 s by default, which would let a slow client stay up
    // to 30 s past its deadline); headers can never take longer than the whole request.
    connectionTimeout: 0,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    http: {
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      headersTimeout: Math.min(config.HEADERS_TIMEOUT_MS, config.REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: Math.min(1_000, Math.ceil(config.HEADERS_TIMEOUT_MS / 4)),
    },
    // While closing we answer 503 unavailable ourselves (below), in the documented shape.
    return503OnClosing: false,
    frameworkErrors,
    clientErrorHandler: clientErrors,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  // JSON routes take JSON only: a text/plain body is 415, not a string the schema then refuses.
  app.removeContentTypeParser("text/plain");
  installValidators(app);
  installErrorHandling(app);
  const metrics = installMetrics(app);
  // Shared schemas live on the root instance: a plugin that adds its own gets a fresh schema
  // controller, which would drop the validator compilers installed above.
  for (const schema of [ErrorBody, Attachment, Message, Chat, Webhook, WebhookDelivery]) app.addSchema(schema);
  // Unknown query parameters are rejected like unknown body fields: a route without its own
  // query schema accepts none.
  app.addHook("onRoute", (route) => {
    if (route.url.startsWith("/docs")) return;
    if (route.schema?.querystring === undefined) route.schema = { ...route.schema, querystring: NO_QUERY };
    // Answers the framework gives before any handler, so every route's document lists them: 400
    // for a query (or URL) it refuses; and where a body is read (never on GET), 413 over
    // BODY_LIMIT_BYTES and 415 for a body that is not JSON.
    const response = route.schema.response as Record<string, unknown> | undefined;
    if (response) {
      const readsBody = [route.method].flat().some((m) => m !== "GET" && m !== "HEAD");
      const error = { $ref: "Error" };
      route.schema = { ...route.schema, response: { 400: error, ...(readsBody ? { 413: error, 415: error } : {}), ...response } };
    }
  });
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  // A callback hook, not an async one: it runs on every request, and the promise costs more
  // than the work.
  app.addHook("onRequest", (req, reply, done) => {
    reply.header("x-request-id", req.id);
    // Every answer is typed exactly (JSON, or a download's sniffed type): browsers must not guess.
    reply.header("x-content-type-options", "nosniff");
    if (closing) {
      reply.header("connection", "close");
      done(new ApiError("unavailable", "The server is shutting down. Retry shortly."));
      return;
    }
    done();
  });

  await app.register(swagger, openApiDocument(config));
  await app.register(swaggerUi, { routePrefix: "/docs" });

  const backends =
    deps.backends ??
    new Backends(new SimulatorBackend(db, clock, { deliveryMs: config.SIMULATOR_DELIVERY_MS, readMs: config.SIMULATOR_READ_MS }), {
      bluebubbles: new BlueBubblesBackend({ config, clock }),
      waha: new WahaBackend({ config, clock }),
    });
  const webhookPolicy = policyFromConfig(config);
  const webhookResolver = deps.webhookResolver ?? systemResolver;
  const services: Services = {
    db,
    clock,
    config,
    backends,
    dispatcher: new Dispatcher({ db, clock, config, backends, log: app.log }),
    webhooks: new WebhookWorker({ db, clock, config, policy: webhookPolicy, resolve: webhookResolver, random: deps.webhookRandom, log: app.log, metrics }),
    checkWebhookUrl: (raw) => checkWebhookUrl(raw, webhookPolicy, webhookResolver),
    idempotency: new Idempotency({
      db,
      clock,
      ttlHours: config.IDEMPOTENCY_TTL_HOURS,
      waitMs: config.IDEMPOTENCY_WAIT_MS,
      required: config.IDEMPOTENCY_REQUIRED,
    }),
    attachments: await createAttachmentService({ db, clock, config, address: () => app.server.address() }),
    devices: undefined as unknown as DeviceMonitor, // set just below: it needs the other services
  };
  services.devices = new DeviceMonitor({ db, clock, config, backends, log: app.log, tools: (n) => ingest.ingestTools(services, n) });
  const limiter = deps.limiter ?? (db.dialect === "postgres" ? new DatabaseRateLimiter(db) : new MemoryRateLimiter());

  health.register(app, { db, metrics });
  app.get("/v1/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  await app.register(
    async (v1) => {
      v1.addHook(
        "onRequest",
        authenticate({
          db,
          clock,
          limiter,
          rateLimitPerMinute: config.RATE_LIMIT_PER_MINUTE,
          authFailuresPerMinute: config.AUTH_FAILURE_LIMIT_PER_MINUTE,
        }),
      );
      numbers.register(v1, services);
      messages.register(v1, services);
      chats.register(v1, services);
      lookup.register(v1, services);
      webhooks.register(v1, services);
      attachments.register(v1, services);
      testHelpers.register(v1, services);
      deps.extraRoutes?.(v1, services);
    },
    { prefix: "/v1" },
  );
  // Signed attachment URLs: beside /v1's key check, since the signature is their authority.
  attachments.registerSigned(app, services);
  // Device webhooks: authenticated by the secret in their URL (and WAHA's HMAC), not an API key.
  ingest.register(app, services);
  app.decorate("services", services);
  // Attempts in flight finish and are recorded before the database goes away (each is bounded
  // by WEBHOOK_TIMEOUT_MS); the agent's sockets are closed.
  app.addHook("onClose", async () => {
    await services.devices.stop();
    await services.webhooks.stop();
  });
  return app;
}

declare module "fastify" {
  interface FastifyInstance {
    /** The app's shared pieces (serve starts services.dispatcher; tests drive it). */
    services: Services;
  }
}
