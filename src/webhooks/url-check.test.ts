import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ApiError } from "../errors.js";
import type { AddressPolicy, Resolver } from "./address-policy.js";
import { checkWebhookUrl } from "./url-check.js";

type Answer = { address: string; family: 4 | 6 };

const PUBLIC_ONLY: AddressPolicy = { allowPrivate: false, allowCidrs: [] };
const PUBLIC_IP = "93.184.216.34";

/**
 * A resolver that knows only the names it is given (no test reaches real DNS) and records what
 * it was asked, so tests can prove a name was denied before resolution.
 */
function fakeResolver(names: Record<string, Answer[] | NodeJS.ErrnoException> = {}): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    asked.push(hostname);
    const answer = names[hostname];
    if (answer === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return Object.assign(resolve, { asked });
}

const v4 = (address: string): Answer => ({ address, family: 4 });
const v6 = (address: string): Answer => ({ address, family: 6 });

const IPV4_IN_TEXT = /\d{1,3}(\.\d{1,3}){3}/;
const IPV6_IN_TEXT = /[0-9a-f]{0,4}:[0-9a-f]{0,4}:/i;

async function assertRejected(raw: string, resolve: Resolver = fakeResolver(), policy = PUBLIC_ONLY): Promise<ApiError> {
  const err = await checkWebhookUrl(raw, policy, resolve).then(
    () => assert.fail(`accepted ${JSON.stringify(raw)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiError, `not an ApiError for ${raw}: ${String(err)}`);
  assert.equal(err.code, "invalid_url", raw);
  assert.equal(err.status, 400);
  assert.doesNotMatch(err.message, IPV4_IN_TEXT, raw);
  assert.doesNotMatch(err.message, IPV6_IN_TEXT, raw);
  return err;
}

async function assertAccepted(raw: string, resolve: Resolver = fakeResolver(), policy = PUBLIC_ONLY): Promise<URL> {
  const url = await checkWebhookUrl(raw, policy, resolve);
  assert.ok(url instanceof URL);
  return url;
}

/** §2.7 rows that need no DNS: every IP spelling WHATWG turns into a denied address, and format errors. */
const NOT_PUBLIC = /not a public address/;

const REJECTED_WITHOUT_DNS: [row: number, reason: RegExp, inputs: string[]][] = [
  [1, NOT_PUBLIC, ["http://127.0.0.1/"]],
  [2, NOT_PUBLIC, ["http://127.1/"]],
  [3, NOT_PUBLIC, ["http://0/", "http://0.0.0.0/"]],
  [4, NOT_PUBLIC, ["http://2130706433/"]],
  [5, NOT_PUBLIC, ["http://0x7f000001/", "http://0x7f.0x0.0x0.0x1/"]],
  [6, NOT_PUBLIC, ["http://017700000001/", "http://0177.0.0.1/", "http://127.000.000.001/"]],
  [7, NOT_PUBLIC, ["http://①②⑦.⓪.⓪.①/"]],
  [8, NOT_PUBLIC, ["http://%31%32%37.0.0.1/"]],
  [9, NOT_PUBLIC, ["http://[::1]/", "http://[0:0:0:0:0:0:0:1]/", "http://[::]/"]],
  [10, NOT_PUBLIC, ["http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/"]],
  [11, NOT_PUBLIC, ["http://[::127.0.0.1]/"]],
  [12, NOT_PUBLIC, ["http://[::ffff:169.254.169.254]/"]],
  [13, NOT_PUBLIC, ["http://[64:ff9b::127.0.0.1]/", "http://[64:ff9b::8.8.8.8]/"]],
  [14, NOT_PUBLIC, ["http://[2002:7f00:1::1]/"]],
  [15, NOT_PUBLIC, ["http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"]],
  [16, NOT_PUBLIC, ["http://[fd00:ec2::254]/"]],
  [17, NOT_PUBLIC, ["http://[fe80::1]/", "http://[fec0::1]/", "http://[ff02::1]/"]],
  [18, /not a valid/, ["http://[fe80::1%25eth0]/"]],
  [19, NOT_PUBLIC, ["http://10.0.0.1/", "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.1.1/"]],
  [20, NOT_PUBLIC, ["http://169.254.169.254/latest/meta-data/", "http://169.254.170.2/v2/credentials"]],
  [21, NOT_PUBLIC, ["http://100.64.0.1/", "http://100.127.255.255/"]],
  [22, NOT_PUBLIC, ["http://192.0.0.8/", "http://192.0.2.1/", "http://198.51.100.1/", "http://203.0.113.1/"]],
  [23, NOT_PUBLIC, ["http://198.18.0.1/", "http://192.88.99.1/"]],
  [24, NOT_PUBLIC, ["http://224.0.0.1/", "http://239.255.255.250/", "http://240.0.0.1/", "http://255.255.255.255/"]],
  [25, /username or password/, ["http://evil.example@127.0.0.1/"]],
  [27, /http or https/, ["ftp://example.com/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_PING", "javascript:alert(1)", "data:text/plain,hi"]],
  [29, /local or internal name/, ["http://metadata.google.internal/", "http://METADATA.google.internal./", "http://metadata.amazonaws.com/"]],
  [
    34,
    /at most 2048|spaces or control/,
    [
      `https://example.com/${"a".repeat(2048)}`,
      "http://example.com/a b",
      " http://example.com/",
      "http://exa\nmple.com/",
      "http://example.com/\t",
      "http://example.com/\u0000",
      "http://example.com/\u007f",
    ],
  ],
  [0, /not a valid|spaces or control/, ["", "not a url", "example.com/hook", "//example.com/", "http://", "http://exa mple.com/"]],
];

describe("checkWebhookUrl: §2.7 rejections (WH-T13)", () => {
  for (const [row, reason, inputs] of REJECTED_WITHOUT_DNS) {
    it(`400 invalid_url: row ${row || "format"}, no DNS query made`, async () => {
      const resolve = fakeResolver({ "example.com": [v4(PUBLIC_IP)] });
      for (const raw of inputs) assert.match((await assertRejected(raw, resolve)).message, reason, raw);
      assert.deepEqual(resolve.asked, []);
    });
  }

  it("400 invalid_url: row 26, credentials in the URL even when the host is public", async () => {
    const resolve = fakeResolver({ "evil.example": [v4(PUBLIC_IP)], "example.com": [v4(PUBLIC_IP)] });
    await assertRejected("http://127.0.0.1:80@evil.example/", resolve);
    await assertRejected("http://user:pass@example.com/", resolve);
    await assertRejected("https://user@example.com/", resolve);
    await assertRejected("https://:pass@example.com/", resolve);
  });

  it("400 invalid_url: row 28, localhost names are denied by name before resolution", async () => {
    const resolve = fakeResolver({ localhost: [v4("127.0.0.1")], "foo.localhost": [v4("127.0.0.1")] });
    for (const raw of ["http://localhost/", "http://LOCALHOST./", "http://foo.localhost/", "http://db.internal/"]) {
      await assertRejected(raw, resolve);
    }
    assert.deepEqual(resolve.asked, []);
  });

  it("400 invalid_url: row 30, a name that resolves to loopback; the message names no address", async () => {
    const resolve = fakeResolver({ "127.0.0.1.nip.test": [v4("127.0.0.1")], "imds.test": [v4("169.254.169.254")] });
    const err = await assertRejected("http://127.0.0.1.nip.test/", resolve);
    assert.equal(err.message, "url host resolves to a non-public address.");
    await assertRejected("https://imds.test/", resolve);
  });

  it("400 invalid_url: row 31, mixed answer (public A, ::1 AAAA) in either order", async () => {
    await assertRejected("https://mixed.test/", fakeResolver({ "mixed.test": [v4(PUBLIC_IP), v6("::1")] }));
    await assertRejected("https://mixed.test/", fakeResolver({ "mixed.test": [v6("::1"), v4(PUBLIC_IP)] }));
    await assertRejected(
      "https://mixed.test/",
      fakeResolver({ "mixed.test": [v4(PUBLIC_IP), v6("2606:4700:4700::1111"), v4("10.0.0.1")] }),
    );
  });

  it("400 invalid_url: row 32, NXDOMAIN or no answer at all", async () => {
    await assertRejected("https://typo.test/", fakeResolver());
    await assertRejected("https://empty.test/", fakeResolver({ "empty.test": [] }));
  });

  it("400 invalid_url: row 33, the WHATWG host (example.com) is what gets checked", async () => {
    const privateExample = fakeResolver({ "example.com": [v4("10.1.1.1")] });
    await assertRejected("http://example.com#@127.0.0.1/", privateExample);
    await assertRejected("http://example.com\\@127.0.0.1/", privateExample);
    const publicExample = fakeResolver({ "example.com": [v4(PUBLIC_IP)] });
    assert.equal((await assertAccepted("http://example.com#@127.0.0.1/", publicExample)).hostname, "example.com");
    assert.equal((await assertAccepted("http://example.com\\@127.0.0.1/", publicExample)).hostname, "example.com");
    assert.deepEqual(publicExample.asked, ["example.com", "example.com"]);
  });

  it("accepted: DNS itself failing (EAI_AGAIN) is not the customer's fault (§9 decision 6); NXDOMAIN still is a typo", async () => {
    const down = Object.assign(new Error("getaddrinfo EAI_AGAIN hooks.test"), { code: "EAI_AGAIN" });
    assert.equal((await checkWebhookUrl("https://hooks.test/x", PUBLIC_ONLY, fakeResolver({ "hooks.test": down }))).href, "https://hooks.test/x");
    const missing = Object.assign(new Error("getaddrinfo ENOTFOUND hooks.test"), { code: "ENOTFOUND" });
    await assertRejected("https://hooks.test/x", fakeResolver({ "hooks.test": missing }));
    // Names and literals that are refused without asking DNS stay refused while it is down.
    await assertRejected("http://169.254.169.254/", fakeResolver({}));
    await assertRejected("http://metadata.google.internal/", fakeResolver({ "metadata.google.internal": down }));
  });
});

describe("checkWebhookUrl: must-accept controls (WH-T14)", () => {
  const CONTROLS: [literalUrl: string, answer: Answer][] = [
    ["http://8.8.8.8/", v4("8.8.8.8")],
    ["http://1.1.1.1/", v4("1.1.1.1")],
    ["http://[::ffff:8.8.8.8]/", v6("::ffff:8.8.8.8")],
    ["http://[2606:4700:4700::1111]/", v6("2606:4700:4700::1111")],
    ["http://172.32.0.1/", v4("172.32.0.1")],
    ["http://100.128.0.1/", v4("100.128.0.1")],
    ["http://11.0.0.1/", v4("11.0.0.1")],
    ["http://192.0.1.1/", v4("192.0.1.1")],
    ["http://198.20.0.1/", v4("198.20.0.1")],
  ];

  for (const [literalUrl, answer] of CONTROLS) {
    it(`accepted: ${answer.address} as a literal and as a resolved name`, async () => {
      await assertAccepted(literalUrl);
      await assertAccepted("https://control.test/hook", fakeResolver({ "control.test": [answer] }));
    });
  }

  it("accepted: public.test → 93.184.216.34, returning the parsed URL", async () => {
    const url = await assertAccepted(
      "https://Public.Test:8443/hooks/in?x=1",
      fakeResolver({ "public.test": [v4(PUBLIC_IP), v6("2606:2800:220:1::1")] }),
    );
    assert.equal(url.href, "https://public.test:8443/hooks/in?x=1");
  });

  it("accepted: exactly 2048 characters", async () => {
    const base = "https://public.test/";
    await assertAccepted(base + "a".repeat(2048 - base.length), fakeResolver({ "public.test": [v4(PUBLIC_IP)] }));
  });
});

describe("checkWebhookUrl: operator policies", () => {
  it("allowCidrs 10.0.0.0/8 (WH-T20): 10.x accepted; metadata and loopback still rejected", async () => {
    const policy: AddressPolicy = { allowPrivate: false, allowCidrs: ["10.0.0.0/8"] };
    const resolve = fakeResolver({ "hooks.corp.internal": [v4("10.2.3.4")], "sneaky.test": [v4("10.0.0.1"), v4("127.0.0.1")] });
    await assertAccepted("http://10.0.0.1/", resolve, policy);
    await assertAccepted("http://hooks.corp.internal/", resolve, policy);
    await assertRejected("http://169.254.169.254/latest/meta-data/", resolve, policy);
    await assertRejected("http://127.0.0.1/", resolve, policy);
    await assertRejected("http://192.168.1.1/", resolve, policy);
    await assertRejected("http://sneaky.test/", resolve, policy);
    await assertRejected("http://metadata.google.internal/", resolve, policy);
  });

  it("allowPrivate: loopback and localhost accepted; metadata by address or name rejected", async () => {
    const policy: AddressPolicy = { allowPrivate: true, allowCidrs: [] };
    const resolve = fakeResolver({ localhost: [v4("127.0.0.1"), v6("::1")], "imds.test": [v4("169.254.169.254")] });
    await assertAccepted("http://127.0.0.1:3000/hook", resolve, policy);
    await assertAccepted("http://localhost:3000/hook", resolve, policy);
    await assertAccepted("http://[::1]:3000/hook", resolve, policy);
    await assertRejected("http://169.254.169.254/", resolve, policy);
    await assertRejected("http://[fd00:ec2::254]/", resolve, policy);
    await assertRejected("http://imds.test/", resolve, policy);
    await assertRejected("http://metadata.google.internal/", resolve, policy);
    await assertRejected("gopher://127.0.0.1:6379/_PING", resolve, policy);
  });
});
