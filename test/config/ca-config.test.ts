import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, parseCaConfig } from '../../src/config/index.js';
import { thrownBy } from '../fixtures/thrown.js';

const minimal = `version: 1
ca:
  cert: issuing-ca.pem
  key: issuing-ca.key
store:
  path: ca.db
enroll:
  tls: { cert: server.pem, key: server.key }
  codes: { pepperFile: pepper }
admin:
  tokenFile: admin-token
publish:
  baseUrl: http://ca.internal:8080
  ocsp: { signerCert: ocsp.pem, signerKey: ocsp.key }
`;

const problems = (text: string): ConfigError => thrownBy(ConfigError, () => parseCaConfig(text, '/etc/ca/ca.yaml', {}));

t.test('a minimal CA config gets secure defaults and resolved paths', async (t) => {
  const c = parseCaConfig(minimal, '/etc/ca/ca.yaml', {});
  t.equal(c.admin.listen.host, '127.0.0.1', 'admin API on loopback by default');
  t.equal(c.enroll.codes.ttlSeconds, 600);
  t.equal(c.enroll.codes.maxAttempts, 5);
  t.equal(c.issuance.validityDays, 30);
  t.equal(c.issuance.sanUriTemplate, 'urn:device:{deviceId}');
  t.equal(c.ca.key, '/etc/ca/issuing-ca.key');
  t.equal(c.store.path, '/etc/ca/ca.db');
  t.ok(Object.isFrozen(c.issuance));
});

t.test('the admin API is never open: a credential is required', async (t) => {
  const err = problems(minimal.replace('  tokenFile: admin-token\n', '  listen: { port: 9000 }\n'));
  t.match(err.problems[0], { field: 'admin', message: /tokenFile or clientCa/ });
  t.match(err.message, /ca\.yaml:\d+: admin: /, 'file and line are named');
  const clientCaWithoutTls = problems(minimal.replace('  tokenFile: admin-token\n', '  clientCa: [admin-ca.pem]\n'));
  t.match(clientCaWithoutTls.problems[0], { field: 'admin.clientCa', message: /needs tls/ });
});

t.test('bad values are named with their line', async (t) => {
  const err = problems(`${minimal}issuance:\n  validityDays: 0\n  sanUriTemplate: urn:device\n  keyTypes: [p256, dsa]\n  surprise: 1\n`);
  const byField = Object.fromEntries(err.problems.map((p) => [p.field, p]));
  t.match(byField['issuance.validityDays'], { line: 16 });
  t.match(byField['issuance.sanUriTemplate'], { line: 17, message: /\{deviceId\}/ });
  t.ok(byField['issuance.keyTypes[1]'], 'an unknown key type');
  t.match(byField['issuance.surprise'], { line: 19, message: /unknown field \(check the spelling against config\/ca\.example\.yaml\)/ });
  t.match(problems(minimal.replace('http://ca.internal:8080', 'ftp://x')).problems[0], { field: 'publish.baseUrl' });
});

t.test('config/ca.example.yaml is valid and shows every default', async (t) => {
  const file = join(import.meta.dirname, '../../config/ca.example.yaml');
  const example = parseCaConfig(readFileSync(file, 'utf8'), file, {});
  const defaults = parseCaConfig(minimal, file, {}) as unknown as Record<string, unknown>;
  // Fields the example must set (no default) or sets to show an optional section.
  const setByExample = /^(ca\.(cert|key|chain)|store\.path|enroll\.tls\.(cert|key)|enroll\.codes\.pepperFile|admin\.tls\..*|admin\.tokenFile|publish\.baseUrl|publish\.ocsp\.signer.*|pins\..*)$/;
  const walk = (a: unknown, b: unknown, path: string[]) => {
    if (a && typeof a === 'object' && !Array.isArray(a)) {
      for (const k of Object.keys(a)) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown> | undefined)?.[k], [...path, k]);
      return;
    }
    const dotted = path.join('.');
    if (!setByExample.test(dotted)) t.same(a, b, `${dotted}: the example shows the default`);
  };
  walk(example, defaults, []);
  t.equal(example.pins?.validityDays, 30, 'pins default shown');
  t.equal(example.pins?.includeSubdomains, false, 'pins default shown');
});
