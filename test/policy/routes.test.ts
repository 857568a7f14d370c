// Route rules and identity matchers, on identities extracted from real certificates (the facts the
// verifier caches per certificate): every matcher kind, rule order, methods, defaults, the global
// allow-list, path semantics (segments, trailing slash, case) and the two readings of ";".
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { extractIdentity, type CertIdentity, type DeviceIdRule } from '../../src/identity/index.js';
import { compileAuthorizer, type AuthorizationSpec, type RouteSpec } from '../../src/policy/index.js';
import { createTestPki, type ClientSpec } from '../fixtures/pki.js';

const pki = await createTestPki();
t.teardown(() => pki.cleanup());
const RULES: DeviceIdRule[] = [{ source: 'uri', prefix: 'urn:device:', stripPrefix: true }, { source: 'spiffe' }, { source: 'cn' }];
const rootX = new X509Certificate(pki.root.pem);
const intX = new X509Certificate(pki.intermediate.pem);

async function identityOf(spec: ClientSpec): Promise<CertIdentity> {
  const c = await pki.client(spec);
  const chain = spec.issuer === 'root' ? [rootX] : [intX, rootX];
  return extractIdentity(new X509Certificate(c.certPem), chain, RULES)!;
}

const ops = await identityOf({ deviceId: 'ops-laptop', subject: 'CN=ops-laptop,OU=ops,OU=oncall,O=Example' });
const kiosk = await identityOf({ deviceId: 'kiosk-17', subject: 'CN=kiosk-17,OU=retail,O=Example', san: { uri: ['urn:device:kiosk-17'], dns: ['k17.devices.example.org'] } });
const workload = await identityOf({ subject: 'CN=billing', san: { uri: ['spiffe://prod.example.org/billing'] }, policies: ['1.3.6.1.4.1.99999.1.2'] });
const lookalike = await identityOf({ subject: 'CN=evil', san: { uri: ['spiffe://prod.example.org.evil/billing', 'spiffe://prod.example.org:443/x', 'spiffe://prod.example.org'] } });
const fromRoot = await identityOf({ deviceId: 'root-issued', issuer: 'root' });
const intermediateFp = intX.fingerprint256;
const rootFp = rootX.fingerprint256.replace(/:/g, '').toLowerCase();

t.test('identity facts are read once from the certificate', async (t) => {
  t.same(ops.subjectFields, { cn: ['ops-laptop'], ou: ['ops', 'oncall'], o: ['Example'] });
  // RFC 4514 order (last RDN first), as `openssl x509 -nameopt RFC2253` prints these test CAs.
  t.same(ops.caSubjects, ['O=mtls-sidecar tests,CN=Test Device Issuing CA', 'O=mtls-sidecar tests,CN=Test Root CA']);
  t.same(ops.caFingerprintsSha256, [intermediateFp.replace(/:/g, '').toLowerCase(), rootFp]);
  t.same(workload.policyOids, ['1.3.6.1.4.1.99999.1.2']);
  t.same(kiosk.policyOids, []);
});

const route = (over: Partial<RouteSpec> & Pick<RouteSpec, 'name' | 'allow'>): RouteSpec => ({ path: { prefix: '/' }, ignoreCase: false, failureMode: 'http', ...over });
const rules = (routes: RouteSpec[], over: Partial<AuthorizationSpec> = {}) => compileAuthorizer({ default: 'deny', allow: 'any', routes, ...over });
const allowed = (a: ReturnType<typeof compileAuthorizer>, id: CertIdentity, path: string, method = 'GET') => a.authorize(id, method, path).allowed;

t.test('every matcher kind', async (t) => {
  const check = (name: string, allow: RouteSpec['allow'], yes: CertIdentity[], no: CertIdentity[]) => {
    const a = rules([route({ name, allow })]);
    for (const id of yes) t.equal(allowed(a, id, '/x'), true, `${name} allows ${id.deviceId}`);
    for (const id of no) t.equal(allowed(a, id, '/x'), false, `${name} refuses ${id.deviceId}`);
  };
  check('deviceId exact', [{ deviceId: 'kiosk-17' }], [kiosk], [ops, workload]);
  check('deviceId glob', [{ deviceId: { glob: 'kiosk-*' } }], [kiosk], [ops]);
  check('subject ou (any of several)', [{ subject: { ou: 'oncall' } }], [ops], [kiosk]);
  check('subject cn prefix', [{ subject: { cn: { prefix: 'ops-' } } }], [ops], [kiosk]);
  check('subject o and ou together', [{ subject: { o: 'Example', ou: 'retail' } }], [kiosk], [ops, workload]);
  check('sanUri prefix', [{ sanUri: { prefix: 'urn:device:kiosk-' } }], [kiosk], [ops]);
  check('sanDns glob', [{ sanDns: { glob: '*.devices.example.org' } }], [kiosk], [ops]);
  check('spiffe trust domain', [{ spiffeTrustDomain: 'prod.example.org' }], [workload], [lookalike, kiosk]);
  check('issuer by fingerprint (colons, upper case)', [{ issuer: { fingerprintSha256: intermediateFp } }], [ops, kiosk], [fromRoot]);
  check('issuer by root fingerprint covers the whole tree', [{ issuer: { fingerprintSha256: rootFp } }], [ops, fromRoot], []);
  check('issuer by subject', [{ issuer: { subject: 'O=mtls-sidecar tests,CN=Test Device Issuing CA' } }], [ops], [fromRoot]);
  check('policy OID', [{ policyOid: '1.3.6.1.4.1.99999.1.2' }], [workload], [kiosk]);
  check('a policy OID prefix is not a match', [{ policyOid: '1.3.6.1.4.1.99999.1' }], [], [workload]);
  check('a list is any of its matchers', [{ deviceId: 'kiosk-17' }, { subject: { ou: 'ops' } }], [ops, kiosk], [workload]);
  check('allow: [] lets nobody through', [], [], [ops, kiosk]);
  check('allow: any', 'any', [ops, kiosk, workload], []);
});

t.test('the first matching rule decides; methods narrow a rule; no match gets the default', async (t) => {
  const a = rules([
    route({ name: 'admin-read', path: { prefix: '/admin' }, methods: ['GET'], allow: [{ subject: { ou: 'ops' } }, { deviceId: 'kiosk-17' }] }),
    route({ name: 'admin', path: { prefix: '/admin' }, allow: [{ subject: { ou: 'ops' } }] }),
    route({ name: 'status', path: { exact: '/status' }, allow: 'any' }),
  ]);
  t.equal(a.authorize(kiosk, 'GET', '/admin/users').route.name, 'admin-read');
  t.equal(allowed(a, kiosk, '/admin/users'), true);
  t.equal(allowed(a, kiosk, '/admin/users', 'POST'), false, 'POST falls through to the stricter rule');
  t.equal(a.authorize(kiosk, 'POST', '/admin/users').route.name, 'admin');
  t.equal(allowed(a, ops, '/admin/users', 'DELETE'), true);
  t.equal(allowed(a, kiosk, '/admin', 'HEAD'), false, 'HEAD is not GET');
  t.equal(allowed(a, kiosk, '/status'), true);
  t.equal(allowed(a, kiosk, '/status/'), true, 'exact matches with a trailing slash');
  t.equal(allowed(a, kiosk, '/status/x'), false, 'exact is not a prefix');
  t.same(a.authorize(kiosk, 'GET', '/other'), { allowed: false, route: { name: 'default', failureMode: 'http' } });
  const open = rules([], { default: 'allow' });
  t.equal(allowed(open, kiosk, '/other'), true, 'default: allow');
});

t.test('prefixes match whole segments; case is exact unless a rule ignores it', async (t) => {
  const a = rules([route({ name: 'admin', path: { prefix: '/admin/' }, allow: [] }), route({ name: 'rest', allow: 'any' })]);
  t.equal(a.authorize(ops, 'GET', '/admin').route.name, 'admin', '"/admin/" also covers "/admin"');
  t.equal(a.authorize(ops, 'GET', '/admin/x').route.name, 'admin');
  t.equal(a.authorize(ops, 'GET', '/administrator').route.name, 'rest', 'not a segment of /admin');
  t.equal(a.authorize(ops, 'GET', '/ADMIN').route.name, 'rest', 'case-sensitive by default');
  const folded = rules([route({ name: 'admin', path: { prefix: '/Admin' }, ignoreCase: true, allow: [] }), route({ name: 'rest', allow: 'any' })]);
  for (const p of ['/admin', '/ADMIN/x', '/aDmIn']) t.equal(folded.authorize(ops, 'GET', p).route.name, 'admin', p);
});

t.test('the global allow-list applies to every rule and to the default', async (t) => {
  const a = rules([route({ name: 'open', path: { prefix: '/open' }, allow: 'any' })], { default: 'allow', allow: [{ issuer: { fingerprintSha256: intermediateFp } }] });
  t.equal(allowed(a, kiosk, '/open'), true);
  t.equal(allowed(a, fromRoot, '/open'), false, 'a rule allowing any cannot widen the global list');
  t.equal(allowed(a, fromRoot, '/elsewhere'), false, 'nor can default: allow');
  t.equal(a.authorize(fromRoot, 'GET', '/open').route.name, 'open', 'the refusal keeps the route label');
});

t.test('a path with ";" must pass under both readings', async (t) => {
  const a = rules([route({ name: 'admin', path: { prefix: '/admin' }, allow: [{ subject: { ou: 'ops' } }] }), route({ name: 'public', allow: 'any' })]);
  t.equal(allowed(a, kiosk, '/admin;x'), false, 'Tomcat reads /admin;x as /admin');
  t.equal(a.authorize(kiosk, 'GET', '/admin;jsessionid=1/users').route.name, 'admin');
  t.equal(allowed(a, kiosk, '/public;x'), true);
});

t.test('config order holds across rules for any path and rules for one first segment', async (t) => {
  const a = rules([
    route({ name: 'api-v1', path: { prefix: '/api/v1' }, allow: 'any' }),
    route({ name: 'catch-all', path: { prefix: '/' }, allow: [] }),
    route({ name: 'api', path: { prefix: '/api' }, allow: 'any' }),
    route({ name: 'folded', path: { prefix: '/Other' }, ignoreCase: true, allow: 'any' }),
    route({ name: 'root', path: { exact: '/' }, allow: 'any' }),
  ]);
  t.equal(a.authorize(ops, 'GET', '/api/v1/x').route.name, 'api-v1');
  t.equal(a.authorize(ops, 'GET', '/api/v2').route.name, 'catch-all', 'an earlier rule for any path wins over a later one for /api');
  t.equal(a.authorize(ops, 'GET', '/').route.name, 'catch-all');
  const b = rules([
    route({ name: 'folded', path: { prefix: '/Other' }, ignoreCase: true, allow: 'any' }),
    route({ name: 'root', path: { exact: '/' }, allow: 'any' }),
    route({ name: 'api', path: { prefix: '/api' }, allow: 'any' }),
  ]);
  t.equal(b.authorize(ops, 'GET', '/OTHER/x').route.name, 'folded');
  t.equal(b.authorize(ops, 'GET', '/').route.name, 'root');
  t.equal(b.authorize(ops, 'GET', '/api').route.name, 'api');
  t.equal(b.authorize(ops, 'GET', '/apix').route.name, 'default');
});
