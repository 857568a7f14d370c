// listen.proxyProtocol: off by default, and when on it must say whose headers to believe.
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const minimal = (listen: string) => `version: 1
listen:
${listen}
tls: { cert: s.pem, key: s.key }
clientAuth: { caBundle: [ca.pem] }
upstream: { url: http://127.0.0.1:8080 }
`;

function problems(text: string) {
  try {
    parseConfig(text, '/etc/sidecar/sidecar.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => [p.field, p.message]);
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('off by default, with no trusted source', async (t) => {
  const c = parseConfig(minimal('  port: 8443'), '/etc/sidecar/sidecar.yaml', {});
  t.same(c.listen.proxyProtocol, { enabled: false, trustedSources: [], headerTimeoutMs: 5_000 });
});

t.test('enabled without trustedSources is an error naming the field', async (t) => {
  t.same(problems(minimal('  proxyProtocol: { enabled: true }')), [
    ['listen.proxyProtocol.trustedSources', 'enabled needs trustedSources: the load balancers whose headers are believed'],
  ]);
  t.same(problems(minimal('  proxyProtocol: { enabled: "true", trustedSources: [] }'))[0]?.[0], 'listen.proxyProtocol.trustedSources');
});

t.test('trusted sources are addresses or CIDRs, IPv4 or IPv6', async (t) => {
  const ok = parseConfig(minimal('  proxyProtocol: { enabled: true, trustedSources: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", "::1", 0.0.0.0/0] }'), '/x.yaml', {});
  t.equal(ok.listen.proxyProtocol.trustedSources.length, 5);
  for (const bad of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/8/1', 'lb.internal', '10.0.0.0/08', '10.0.0.0/', '10.0.0/8']) {
    const found = problems(minimal(`  proxyProtocol: { enabled: true, trustedSources: ["${bad}"] }`));
    t.same(found, [['listen.proxyProtocol.trustedSources[0]', 'must be an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)']], bad);
  }
});
