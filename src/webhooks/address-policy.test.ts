import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type AddressPolicy, isDeniedAddress, policyFromConfig, systemResolver } from "./address-policy.js";

const PUBLIC_ONLY: AddressPolicy = { allowPrivate: false, allowCidrs: [] };

/**
 * WH-T21: the must-block vectors of Svix (`is_allowed_test`, webhook_http_client.rs) and
 * smokescreen (`TestClassifyAddr` and the default-safety tests, default classification only),
 * duplicates removed, plus their must-allow controls. 41 + 10 = 51 cases.
 */
const MUST_BLOCK = [
  // Svix (from Rust's `is_global` docs)
  "10.254.0.0",
  "192.168.10.65",
  "172.16.10.65",
  "0.1.2.3",
  "0.0.0.0",
  "127.0.0.1",
  "169.254.45.1",
  "255.255.255.255",
  "192.0.2.255",
  "198.51.100.65",
  "203.0.113.6",
  "100.100.0.0",
  "192.0.0.0",
  "192.0.0.255",
  "250.10.20.30",
  "198.18.0.0",
  "::1",
  "::ffff:127.0.0.1",
  "::ffff:0.0.0.1",
  // smokescreen: private ranges (including the ones its test re-allows by configuration)
  "10.0.0.1",
  "10.0.1.1",
  "172.16.0.1",
  "192.168.0.1",
  "127.0.1.1",
  "127.255.255.255",
  // smokescreen: CGNAT 100.64.0.0/10
  "100.64.0.1",
  "100.64.0.100",
  "100.127.255.254",
  // smokescreen: EC2 metadata, multicast
  "169.254.169.254",
  "ff02:0:0:0:0:0:0:2",
  // smokescreen: IPv6 that embeds IPv4 (NAT64, 6to4, Teredo), even around public IPv4
  "64:ff9b::1",
  "64:ff9b::ac1c:5",
  "64:ff9b::c000:201",
  "64:ff9b::a00:1",
  "64:ff9b::808:808",
  "64:ff9b::ffff:ffff",
  "2002:c000:201::1",
  "2002:a00:1::1",
  "2002:808:808::1",
  "2001:0:4136:e378:8000:63bf:3fff:fdd2",
  "2001:0:1234:5678:9abc:def0:1234:5678",
];

const MUST_ALLOW = [
  // Svix
  "1.1.1.1",
  "0:0:0:ffff::1", // ffff in the 4th group: neither IPv4-mapped nor in ::/96
  "2001:4860:4860::8888",
  "::ffff:8.8.8.8", // the reason ::ffff:0:0/96 is not a rule: it would deny all of IPv4
  // smokescreen
  "8.8.8.8",
  "8.8.9.8",
  "100.63.255.254", // just below CGNAT
  "100.128.0.1", // just above CGNAT
  "2606:4700:4700::1111",
  "64:ff9c::1", // just outside NAT64 /96
];

describe("isDeniedAddress: Svix and smokescreen vectors (WH-T21)", () => {
  it("has the 51 cases, no duplicates", () => {
    assert.equal(MUST_BLOCK.length, 41);
    assert.equal(MUST_ALLOW.length, 10);
    assert.equal(new Set([...MUST_BLOCK, ...MUST_ALLOW]).size, 51);
  });

  for (const ip of MUST_BLOCK) {
    it(`denied: ${ip}`, () => assert.equal(isDeniedAddress(ip, PUBLIC_ONLY), true));
  }
  for (const ip of MUST_ALLOW) {
    it(`allowed: ${ip}`, () => assert.equal(isDeniedAddress(ip, PUBLIC_ONLY), false));
  }
});

describe("isDeniedAddress: edges of §2.4", () => {
  it("denied: IPv4-compatible ::7f00:1 (only ::/96 catches it) and the rest of the IPv6 list", () => {
    for (const ip of ["::7f00:1", "::", "100::1", "2001:db8::1", "3fff::1", "5f00::1", "fc00::1", "fd00:ec2::254"]) {
      assert.equal(isDeniedAddress(ip, PUBLIC_ONLY), true, ip);
    }
    for (const ip of ["fe80::1", "fec0::1", "ff02::1", "64:ff9b:1::1", "2001:1ff::1"]) {
      assert.equal(isDeniedAddress(ip, PUBLIC_ONLY), true, ip);
    }
  });

  it("allowed: neighbours just outside the IPv4 ranges", () => {
    for (const ip of ["11.0.0.1", "172.15.255.255", "172.32.0.1", "192.0.1.1", "198.17.255.255", "198.20.0.1", "223.255.255.255"]) {
      assert.equal(isDeniedAddress(ip, PUBLIC_ONLY), false, ip);
    }
    assert.equal(isDeniedAddress("2001:200::1", PUBLIC_ONLY), false, "just above 2001::/23");
  });

  it("denied: anything that is not a plain IP address", () => {
    for (const value of ["", "localhost", "example.com", "127.1", "2130706433", "[::1]", "fe80::1%eth0", "1.2.3.4/8"]) {
      assert.equal(isDeniedAddress(value, { allowPrivate: true, allowCidrs: ["0.0.0.0/0"] }), true, value);
    }
  });
});

describe("isDeniedAddress: operator policies", () => {
  it("allowCidrs 10.0.0.0/8 (WH-T20): 10.x allowed; metadata, loopback and other LANs still denied", () => {
    const policy = policyFromConfig({ WEBHOOK_ALLOW_PRIVATE: false, WEBHOOK_ALLOW_PRIVATE_CIDRS: "10.0.0.0/8" });
    assert.equal(isDeniedAddress("10.0.0.1", policy), false);
    assert.equal(isDeniedAddress("10.255.255.255", policy), false);
    assert.equal(isDeniedAddress("::ffff:10.1.2.3", policy), false);
    assert.equal(isDeniedAddress("169.254.169.254", policy), true);
    assert.equal(isDeniedAddress("127.0.0.1", policy), true);
    assert.equal(isDeniedAddress("192.168.1.1", policy), true);
  });

  it("allowCidrs cannot re-allow cloud metadata, even when it lists it", () => {
    const policy: AddressPolicy = { allowPrivate: false, allowCidrs: ["169.254.0.0/16", "fd00::/8", "0.0.0.0/0"] };
    assert.equal(isDeniedAddress("169.254.169.254", policy), true);
    assert.equal(isDeniedAddress("169.254.170.2", policy), true);
    assert.equal(isDeniedAddress("fd00:ec2::254", policy), true);
    assert.equal(isDeniedAddress("fd00:1::1", policy), false);
  });

  it("allowPrivate: loopback and LAN allowed; metadata denied in every spelling", () => {
    const policy: AddressPolicy = { allowPrivate: true, allowCidrs: [] };
    for (const ip of ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "fd12::1", "0.0.0.0"]) {
      assert.equal(isDeniedAddress(ip, policy), false, ip);
    }
    const metadata = [
      "169.254.169.254",
      "::ffff:169.254.169.254",
      "::a9fe:a9fe", // IPv4-compatible
      "64:ff9b::a9fe:a9fe", // NAT64
      "2002:a9fe:a9fe::1", // 6to4
      "fd00:ec2::254",
    ];
    for (const ip of metadata) assert.equal(isDeniedAddress(ip, policy), true, ip);
  });
});

describe("policyFromConfig", () => {
  it("splits, trims and keeps the ranges; empty means none", () => {
    assert.deepEqual(policyFromConfig({ WEBHOOK_ALLOW_PRIVATE: false, WEBHOOK_ALLOW_PRIVATE_CIDRS: "" }), PUBLIC_ONLY);
    assert.deepEqual(
      policyFromConfig({ WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_ALLOW_PRIVATE_CIDRS: " 10.0.0.0/8, fd12:3456::/48 ,," }),
      { allowPrivate: true, allowCidrs: ["10.0.0.0/8", "fd12:3456::/48"] },
    );
  });

  it("throws an Error naming the variable and the bad entry", () => {
    for (const bad of ["10.0.0.0", "10.0.0.0/33", "fd00::/129", "10.0.0/8", "lan/8", "10.0.0.0/8/8", "10.0.0.0/x", "10.0.0.0/-1"]) {
      assert.throws(
        () => policyFromConfig({ WEBHOOK_ALLOW_PRIVATE: false, WEBHOOK_ALLOW_PRIVATE_CIDRS: `192.168.0.0/16,${bad}` }),
        (err: unknown) =>
          err instanceof Error && err.message.includes("WEBHOOK_ALLOW_PRIVATE_CIDRS") && err.message.includes(`"${bad}"`),
        bad,
      );
    }
  });
});

describe("systemResolver", () => {
  it("returns every answer with a numeric family (numeric host: no DNS query leaves the machine)", async () => {
    assert.deepEqual(await systemResolver("127.0.0.1"), [{ address: "127.0.0.1", family: 4 }]);
    assert.deepEqual(await systemResolver("::1"), [{ address: "::1", family: 6 }]);
  });
});
