import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { NON_PUBLIC_IPV4 } from '@pds/shared';

/**
 * Where a job's traffic may go, as routes of its network namespace. The namespace reaches the world
 * through slirp4netns (a user-mode stack on the runner's side), whose gateway is this address.
 */
export const SLIRP_GATEWAY = '10.0.2.2';
/** slirp4netns's DNS forwarder: the only name server a job is given (the runner's may be on loopback). */
export const SLIRP_DNS = '10.0.2.3';
/** One IPv4 range, `a.b.c.d/n`. */
export type Cidr = string;

/**
 * Parses JOB_EGRESS_ALLOW (comma-separated IPv4 CIDRs, a bare address is /32), each written as its
 * network (10.1.2.3/8 is 10.0.0.0/8); throws naming a bad entry.
 */
export function parseEgressAllow(value: string): Cidr[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [address = '', bits = '32'] = entry.split('/');
      const prefix = Number(bits);
      if (!isIPv4(address) || !/^\d{1,2}$/.test(bits) || prefix > 32 || prefix < 1) {
        throw new Error(`JOB_EGRESS_ALLOW: ${entry} is not an IPv4 range (a.b.c.d/n, n from 1 to 32); jobs have no IPv6 route at all`);
      }
      return `${networkOf(address, prefix)}/${prefix}`;
    });
}

/** The network address of `address/prefix`. */
function networkOf(address: string, prefix: number): string {
  const value = address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (value & mask) >>> 0;
  return [24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join('.');
}

/** The runner machine's own IPv4 addresses (every interface but loopback): a job reaches none of them. */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((nic) => (nic && nic.family === 'IPv4' && !nic.internal ? [nic.address] : []));
}

/**
 * The routes of a job's namespace, as `ip -batch` lines, beside slirp4netns's default route:
 * `prohibit` (EACCES at connect) for every non-public range and for each of the machine's own
 * addresses, then a route through the gateway for each allowed range. The longest prefix wins, so an
 * allowed range opens only itself, and an address of the machine stays closed inside an allowed range.
 */
export function egressRoutes(allow: readonly Cidr[], machine: readonly string[]): string[] {
  const routes = new Map<Cidr, string>();
  for (const [net, bits] of NON_PUBLIC_IPV4) routes.set(`${net}/${bits}`, 'prohibit');
  routes.delete('127.0.0.0/8'); // the namespace's own loopback: local, never routed
  for (const cidr of allow) routes.set(cidr, `via ${SLIRP_GATEWAY}`);
  // Last: the machine's own addresses stay closed whatever is allowed.
  for (const address of machine) routes.set(`${address}/32`, 'prohibit');
  return [...routes].map(([cidr, how]) => (how === 'prohibit' ? `route add prohibit ${cidr}` : `route add ${cidr} ${how}`));
}

/**
 * The namespace's firewall (nftables), the second lock beside the routes: routes alone do not hold
 * against a socket bound to the interface (SO_BINDTODEVICE skips a failed route lookup), and
 * slirp4netns forwards every port of its DNS address to the runner's own name server (which may be on
 * the runner's loopback, or be the cloud's metadata server). So: DNS address port 53 only; then the
 * machine's own addresses, then the allowed ranges, then every non-public range, refused; no IPv6.
 */
export function egressRuleset(allow: readonly Cidr[], machine: readonly string[]): string {
  const set = (name: string, elements: readonly string[]) =>
    `  set ${name} { type ipv4_addr; flags interval; auto-merge;${elements.length > 0 ? ` elements = { ${elements.join(', ')} };` : ''} }`;
  return [
    'table inet pds_job {',
    set('machine', machine),
    set('allowed', allow),
    set(
      'nonpublic',
      NON_PUBLIC_IPV4.map(([net, bits]) => `${net}/${bits}`),
    ),
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    '    oifname "lo" accept',
    `    ip daddr ${SLIRP_DNS} meta l4proto { tcp, udp } th dport 53 accept`,
    `    ip daddr ${SLIRP_DNS} reject with icmp type admin-prohibited`,
    '    ip daddr @machine reject with icmp type admin-prohibited',
    '    ip daddr @allowed accept',
    '    ip daddr @nonpublic reject with icmp type admin-prohibited',
    '    meta nfproto ipv6 reject',
    '  }',
    '}',
    '',
  ].join('\n');
}
