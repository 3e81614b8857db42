// `npm run fake:bluebubbles`: the BlueBubbles fake on PORT (default 1234) with PASSWORD (default
// fake-password), for trying the `bluebubbles` back-end by hand. Runs until Ctrl-C.
import { FakeBlueBubbles } from "./server.js";

const port = Number(process.env.PORT ?? 1234);
const fake = new FakeBlueBubbles({ password: process.env.PASSWORD ?? "fake-password" });
fake.log = (line) => console.log(line);
const url = await fake.start(port);
const q = `password=${encodeURIComponent(fake.password)}`;
const json = `-H "Content-Type: application/json"`;

console.log(`Fake BlueBubbles Server listening on ${url}
  password: ${fake.password}

Point the bluebubbles back-end at ${url} with that password, then:

  # an inbound message from a contact (fires new-message to the registered webhooks)
  curl -s -X POST "${url}/fake/receive?${q}" ${json} -d '{"from":"+15555550123","text":"Hi there"}'

  # the newest messages, to find a GUID
  curl -s -X POST "${url}/api/v1/message/query?${q}" ${json} -d '{"limit":5,"with":["chats"]}'

  # mark an outbound message delivered / read (fires updated-message)
  curl -s -X POST "${url}/fake/deliver/<GUID>?${q}"
  curl -s -X POST "${url}/fake/read/<GUID>?${q}"

  # registered webhooks
  curl -s "${url}/api/v1/webhook?${q}"
`);

process.once("SIGINT", () => {
  void fake.stop().then(() => process.exit(0));
});
