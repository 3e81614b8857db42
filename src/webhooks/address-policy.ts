/**
 * Which IP addresses a customer webhook may reach (reliability.md §2.4), and the resolver that
 * turns a hostname into every address it answers with.
 *
 * One rule decides every address, wherever it comes from: an IP literal in a registered URL, a DNS
 * answer at registration, a DNS answer at delivery (agent.ts) and the peer of a connected socket.
 * Node's BlockList does the matching; it parses the address itself, so no string tricks here.
 */
import { promises as dns } from "node:dns";
import { BlockList, isIP } from "node:net";

export interface AddressPolicy {
  /** WEBHOOK_ALLOW_PRIVATE: every address is allowed except cloud metadata (local development). */
  allowPrivate: boolean;
  /** WEBHOOK_ALLOW_PRIVATE_CIDRS: ranges re-allowed although denied; cloud metadata stays denied. */
  allowCidrs: string[];
}

/** Every A and AAAA answer for a hostname, in resolver order. */
export type Resolver = (hostname: string) => Promise<{ address: string; family: 4 | 6 }[]>;

/**
 * getaddrinfo through libuv, as the rest of the process resolves (honours /etc/hosts).
 * `verbatim` keeps the resolver's order; every answer is checked anyway, so order only matters
 * for which address is tried first.
 */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** §2.4, IANA special-purpose IPv4 ranges. */
const DENIED_IPV4 = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

/**
 * §2.4, IPv6. Deliberately WITHOUT ::ffff:0:0/96: BlockList treats an IPv4-mapped address and its
 * IPv4 address as the same, in both directions, so that rule would deny every IPv4 address, while
 * the IPv4 rules above already deny ::ffff:127.0.0.1 and friends. ::/96 covers the deprecated
 * IPv4-compatible form (::7f00:1), which the IPv4 rules do not match.
 */
const DENIED_IPV6 = [
  "::/96",
  "64:ff9b::/96",
  "64:ff9b:1::/48",
  "100::/64",
  "2001::/23",
  "2001:db8::/32",
  "2002::/16",
  "3fff::/20",
  "5f00::/16",
  "fc00::/7",
  "fe80::/10",
  "fec0::/10",
  "ff00::/8",
];

/**
 * Cloud metadata (credentials live there): denied whatever the operator allows. Besides the two
 * documented ranges, the IPv6 forms that carry 169.254.0.0/16 inside them (IPv4-compatible, NAT64
 * and 6to4) are listed here too, so that allowing private targets cannot reach metadata through a
 * translator. IPv4-mapped ::ffff:169.254.x.x is already matched by the IPv4 rule.
 */
const CLOUD_METADATA = ["169.254.0.0/16", "fd00:ec2::/32", "::a9fe:0/112", "64:ff9b::a9fe:0/112", "2002:a9fe::/32"];

interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

function parseCidr(text: string): Cidr | null {
  const [address = "", prefixText, ...rest] = text.split("/");
  const version = isIP(address);
  if (version === 0 || prefixText === undefined || rest.length > 0 || !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > (version === 4 ? 32 : 128)) return null;
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (!cidr) throw new Error(`Not a CIDR range: "${text}"`);
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return list;
}

const denied = blockListOf([...DENIED_IPV4, ...DENIED_IPV6]);
const cloudMetadata = blockListOf(CLOUD_METADATA);

/**
 * Compiled allow lists, keyed by their text: callers pass the same few policies on every request,
 * and building a BlockList per address check would be wasteful.
 */
const allowListCache = new Map<string, BlockList>();

function allowListOf(cidrs: readonly string[]): BlockList {
  const key = cidrs.join(",");
  let list = allowListCache.get(key);
  if (!list) {
    list = blockListOf(cidrs);
    allowListCache.set(key, list);
  }
  return list;
}

export function policyFromConfig(config: {
  WEBHOOK_ALLOW_PRIVATE: boolean;
  WEBHOOK_ALLOW_PRIVATE_CIDRS: string;
}): AddressPolicy {
  const allowCidrs = config.WEBHOOK_ALLOW_PRIVATE_CIDRS.split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
  for (const cidr of allowCidrs) {
    if (!parseCidr(cidr)) {
      throw new Error(
        `WEBHOOK_ALLOW_PRIVATE_CIDRS: "${cidr}" is not a CIDR range such as 10.0.0.0/8 or fd12:3456::/48`,
      );
    }
  }
  return { allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, allowCidrs };
}

/** True when a webhook must not reach `ip`; anything that is not a plain IP address is denied. */
export function isDeniedAddress(ip: string, policy: AddressPolicy): boolean {
  const version = isIP(ip);
  // A zone id (fe80::1%eth0) names an interface, not a public host.
  if (version === 0 || ip.includes("%")) return true;
  const family = version === 4 ? "ipv4" : "ipv6";
  if (cloudMetadata.check(ip, family)) return true;
  if (policy.allowPrivate || !denied.check(ip, family)) return false;
  return policy.allowCidrs.length === 0 || !allowListOf(policy.allowCidrs).check(ip, family);
}
