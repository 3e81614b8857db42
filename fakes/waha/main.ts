/**
 * `npm run fake:waha`: a fake WAHA (NOWEB) on PORT (default 3000) with one WORKING session, for trying the WhatsApp
 * back-end by hand. Env: PORT, WAHA_API_KEY (default fake-key), SESSION (default "default"), ME (default 15550009999@c.us).
 * Two extra routes, behind the same X-Api-Key, simulate the phone's side:
 *   POST /fake/receive {from, text}  → an inbound message (fires `message` and `message.any`)
 *   POST /fake/ack {id, ack}         → an ack for a sent message (fires `message.ack`, or `message.ack.group`)
 */
import { FakeWaha } from "./server.js";

const port = Number(process.env.PORT ?? 3000);
const apiKey = process.env.WAHA_API_KEY ?? "fake-key";
const session = process.env.SESSION ?? "default";
const me = process.env.ME ?? "15550009999@c.us";

const fake = new FakeWaha({ apiKey });
fake.addSession(session, { status: "WORKING", me });

fake.addRoute("POST", "/fake/receive", async (body) => {
  if (typeof body.from !== "string" || typeof body.text !== "string") throw new Error("from and text are required");
  const msg = await fake.receive(session, { from: body.from, text: body.text });
  return { id: msg.id, chatId: msg.chatId };
});
fake.addRoute("POST", "/fake/ack", async (body) => {
  if (typeof body.id !== "string" || typeof body.ack !== "number") throw new Error("id (string) and ack (-1..4) are required");
  await fake.ack(session, body.id, body.ack);
  return { ok: true };
});

const url = await fake.start(port);
const h = `-H 'X-Api-Key: ${apiKey}' -H 'Content-Type: application/json'`;
console.log(`Fake WAHA (NOWEB, tier ${fake.plus ? "PLUS" : "CORE"}) listening on ${url}
  API key:  ${apiKey}   (header X-Api-Key)
  session:  ${session}  WORKING as ${me}

Register a webhook:
  curl -X PUT ${url}/api/sessions/${session} ${h} -d '{"config":{"webhooks":[{"url":"http://127.0.0.1:8080/hook","events":["*"],"hmac":{"key":"secret"}}]}}'
Send a message:
  curl -X POST ${url}/api/sendText ${h} -d '{"session":"${session}","chatId":"15551234567@c.us","text":"hi"}'
Simulate an inbound message, then an ack for a sent one:
  curl -X POST ${url}/fake/receive ${h} -d '{"from":"15551234567","text":"hello"}'
  curl -X POST ${url}/fake/ack ${h} -d '{"id":"true_15551234567@c.us_3EB0…","ack":3}'
Ctrl-C to stop.`);

process.once("SIGINT", () => {
  void fake.stop().then(() => process.exit(0));
});
