import t from 'tap';
import { egressRoutes, egressRuleset, parseEgressAllow } from '../src/sandbox/egress.js';

t.test('JOB_EGRESS_ALLOW: IPv4 ranges taken as their network; anything else named', async (t) => {
  t.same(parseEgressAllow(''), []);
  t.same(parseEgressAllow('10.213.7.2, 10.1.2.3/8,192.168.4.0/22'), ['10.213.7.2/32', '10.0.0.0/8', '192.168.4.0/22']);
  for (const bad of ['0.0.0.0/0', '10.0.0.0/33', 'fd00::/8', 'example.com', '10.0.0.0/x'])
    t.throws(
      () => parseEgressAllow(bad),
      new RegExp(`JOB_EGRESS_ALLOW: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not an IPv4 range`),
    );
});

t.test("a job network's routes: non-public ranges prohibited, allowed ones through the gateway, the machine's own never", async (t) => {
  const routes = egressRoutes(['10.213.7.2/32', '192.0.2.2/32'], ['192.0.2.2']);
  t.ok(routes.includes('route add prohibit 169.254.0.0/16'), 'link-local (cloud metadata)');
  t.ok(routes.includes('route add prohibit 10.0.0.0/8'));
  t.ok(routes.includes('route add prohibit 168.63.129.16/32'), "Azure's host endpoint");
  t.ok(routes.includes('route add 10.213.7.2/32 via 10.0.2.2'), 'an allowed range goes through');
  t.ok(routes.includes('route add prohibit 192.0.2.2/32'), "the machine's own address stays closed, allowed or not");
  t.notOk(routes.includes('route add 192.0.2.2/32 via 10.0.2.2'));
  t.notOk(
    routes.some((r) => r.includes('127.0.0.0/8')),
    'the namespace keeps its own loopback',
  );
});

t.test("a job network's firewall: DNS only on port 53; the machine's own, then allowed, then non-public", async (t) => {
  const rules = egressRuleset(['10.213.7.2/32'], ['192.0.2.2']);
  const order = [
    'th dport 53 accept',
    'ip daddr 10.0.2.3 reject',
    'ip daddr @machine reject',
    'ip daddr @allowed accept',
    'ip daddr @nonpublic reject',
  ];
  const at = order.map((line) => rules.indexOf(line));
  t.ok(
    at.every((i) => i > 0),
    'every line is there',
  );
  t.same(
    [...at].sort((a, b) => a - b),
    at,
    'in that order',
  );
  t.match(rules, /set machine \{[^}]*elements = \{ 192\.0\.2\.2 \}/);
  t.match(rules, /set allowed \{[^}]*elements = \{ 10\.213\.7\.2\/32 \}/);
  t.match(rules, /meta nfproto ipv6 reject/, 'no IPv6 at all');
  t.notMatch(egressRuleset([], []), /elements = \{ {2}\}/, 'an empty set has no elements clause');
});
