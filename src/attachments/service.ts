import type { AddressInfo } from "node:net";
import type { DialectAdapter } from "kysely";
import type { Clock } from "../clock.js";
import type { Config } from "../config.js";
import type { Db, Tx } from "../db/client.js";
import { type AttachmentStorage, storageFromConfig } from "./storage.js";
import { AttachmentUrls, loadUrlSecret } from "./urls.js";

/** The app's attachment pieces: where the bytes live, how URLs are signed, and the settings. */
export interface AttachmentService {
  storage: AttachmentStorage;
  urls: AttachmentUrls;
  config: Config;
  clock: Clock;
}

export interface AttachmentServiceDeps {
  db: Db;
  clock: Clock;
  config: Config;
  /** The server's listening address once it listens (null before): the URL base without PUBLIC_URL. */
  address: () => AddressInfo | string | null;
  storage?: AttachmentStorage;
}

/**
 * Builds the service (loading or creating the URL-signing key) and binds it to the database, so
 * that code deep in the engine can sign attachment URLs too (below).
 */
export async function createAttachmentService(deps: AttachmentServiceDeps): Promise<AttachmentService> {
  const { config, clock } = deps;
  const secret = await loadUrlSecret(deps.db, config.ATTACHMENT_URL_SECRET, clock);
  const service: AttachmentService = {
    storage: deps.storage ?? storageFromConfig(config),
    urls: new AttachmentUrls({
      secret,
      clock,
      baseUrl: () => baseUrl(config, deps.address()),
      responseTtlSeconds: config.ATTACHMENT_URL_TTL_SECONDS,
      eventTtlSeconds: Math.round(config.ATTACHMENT_EVENT_URL_TTL_HOURS * 3600),
    }),
    config,
    clock,
  };
  bound.set(deps.db.kysely.getExecutor().adapter, service);
  return service;
}

/** PUBLIC_URL when set; else the address the server listens on; else HOST:PORT from the settings. */
function baseUrl(config: Config, address: AddressInfo | string | null): string {
  if (config.PUBLIC_URL) return config.PUBLIC_URL.replace(/\/+$/, "");
  if (address && typeof address === "object") {
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `http://${host === "0.0.0.0" || host === "[::]" ? "127.0.0.1" : host}:${address.port}`;
  }
  return `http://${config.HOST}:${config.PORT}`;
}

/*
 * Message objects carry attachment objects with signed URLs, and they are built in places whose
 * signatures belong to the engine (the dispatcher's outcomes, device ingest, message actions) and
 * only hold a query handle. Rather than thread the signer through all of them, the app binds its
 * service to its database, and those places find it from the handle they already have: a
 * transaction shares its database's dialect adapter (db/prepared.ts keys its cache the same
 * way). Apps on one database share its signing key and settings, so which one bound last does
 * not matter.
 */
const bound = new WeakMap<DialectAdapter, AttachmentService>();

/** The attachment service of the app on this database (or transaction). */
export function attachmentServiceOf(db: Tx): AttachmentService {
  const service = bound.get(db.getExecutor().adapter);
  if (!service) throw new Error("no attachment service is bound to this database (createApp binds one)");
  return service;
}
