// `authorization`, `quarantine` and `admin.tokenFile` in the config: absent means today's
// behaviour, and every mistake is reported with the field that holds it.
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/index.js';

const base = { version: 1, tls: { cert: 's.pem', key: 's.key' }, clientAuth: { caBundle: ['ca.pem'] }, upstream: { url: 'http://127.0.0.1:8080' } };
const parse = (extra: Record<string, unknown>) => parseConfig(stringify({ ...base, ...extra }), '/etc/sidecar/sidecar.yaml', {});
function fields(extra: Record<string, unknown>): Array<[string, string]> {
  try {
    parse(extra);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => [p.field, p.message]);
    throw err;
  }
  return [];
}
const route = { name: 'r', path: { prefix: '/x' }, allow: 'any' };

t.test('absent: no rules, no quarantine, no token (every verified client may call every path)', async (t) => {
  const c = parse({});
  t.equal(c.authorization, undefined);
  t.same(c.quarantine, {});
  t.equal(c.admin.tokenFile, undefined);
});

t.test('present: default is required; allow defaults to any; paths resolve', async (t) => {
  t.match(fields({ authorization: { routes: [route] } }), [['authorization.default', /expected one of "allow"\|"deny"|Invalid option/]]);
  const c = parse({ authorization: { default: 'deny', routes: [route] }, quarantine: { file: 'q.txt' }, admin: { tokenFile: 'token' } });
  t.equal(c.authorization?.allow, 'any');
  t.equal(c.authorization?.routes[0]?.failureMode, 'http');
  t.equal(c.authorization?.routes[0]?.ignoreCase, false);
  t.equal(c.quarantine.file, '/etc/sidecar/q.txt');
  t.equal(c.admin.tokenFile, '/etc/sidecar/token');
});

t.test('mistakes name their field', async (t) => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ routes: [{ ...route, path: { prefix: 'x' } }] }, 'authorization.routes.0.path.prefix', /start with "\/"/],
    [{ routes: [{ ...route, path: { exact: '/a/../b' } }] }, 'authorization.routes.0.path.exact', /"\/\.\.\/"/],
    [{ routes: [{ ...route, path: { prefix: '/a%2fb' } }] }, 'authorization.routes.0.path.prefix', /decoded/],
    [{ routes: [{ ...route, path: { prefix: '/a', exact: '/b' } }] }, 'authorization.routes.0.path', /exactly one of exact or prefix/],
    [{ routes: [{ ...route, name: 'default' }] }, 'authorization.routes.0.name', /reserved|"default"/],
    [{ routes: [{ ...route, name: 'has space' }] }, 'authorization.routes.0.name', /metric label/],
    [{ routes: [route, route] }, 'authorization.routes.1.name', /used twice/],
    [{ routes: [{ ...route, methods: ['GET /'] }] }, 'authorization.routes.0.methods.0', /upper-case HTTP method/],
    [{ routes: [{ ...route, methods: ['get'] }] }, 'authorization.routes.0.methods.0', /upper-case HTTP method/],
    [{ routes: [{ ...route, allow: [{}] }] }, 'authorization.routes.0.allow.0', /empty matcher/],
    [{ routes: [{ ...route, allow: [{ deviceId: { glob: '**' } }] }] }, 'authorization.routes.0.allow.0.deviceId.glob', /more than "\*"/],
    [{ routes: [{ ...route, allow: [{ sanUri: { prefix: 'a', glob: 'b*' } }] }] }, 'authorization.routes.0.allow.0.sanUri', /exactly one of exact, prefix or glob/],
    [{ routes: [{ ...route, allow: [{ deviceid: 'x' }] }] }, 'authorization.routes.0.allow.0.deviceid', /unknown field/],
    [{ routes: [{ ...route, allow: [{ spiffeTrustDomain: 'spiffe://td' }] }] }, 'authorization.routes.0.allow.0.spiffeTrustDomain', /without "spiffe:\/\/"/],
    [{ routes: [{ ...route, allow: [{ issuer: { fingerprintSha256: 'abc' } }] }] }, 'authorization.routes.0.allow.0.issuer.fingerprintSha256', /64 hex digits/],
    [{ routes: [{ ...route, allow: [{ issuer: {} }] }] }, 'authorization.routes.0.allow.0.issuer', /exactly one/],
    [{ routes: [{ ...route, allow: [{ policyOid: '1.2.x' }] }] }, 'authorization.routes.0.allow.0.policyOid', /object identifier/],
    [{ routes: [{ ...route, failureMode: 'close' }] }, 'authorization.routes.0.failureMode', /http|reject|Invalid/],
    [{ allow: 'everyone' }, 'authorization.allow', /Invalid|any/],
  ];
  for (const [authorization, field, message] of cases) {
    const found = fields({ authorization: { default: 'deny', ...authorization } });
    t.ok(found.some(([f, m]) => f.replace(/\[(\d+)\]/g, '.$1').startsWith(field) && message.test(m)), `${JSON.stringify(authorization)} → ${field}: ${JSON.stringify(found)}`);
  }
});

t.test('a bad matcher inside a list names the matcher and its key', async (t) => {
  const found = fields({ authorization: { default: 'deny', routes: [{ ...route, allow: [{ deviceId: 'ok' }, { spiffeTrustDomain: 'UPPER' }] }] } });
  t.same(found.map(([f]) => f), ['authorization.routes[0].allow[1].spiffeTrustDomain']);
});

t.test('quarantine.file and admin.tokenFile must be paths', async (t) => {
  t.match(fields({ quarantine: { file: '' } }), [['quarantine.file', /file path/]]);
  t.match(fields({ admin: { tokenFile: '' } }), [['admin.tokenFile', /file path/]]);
  t.match(fields({ quarantine: { files: 'x' } }), [['quarantine.files', /unknown field/]]);
});

t.test('limits.routes names a route of authorization.routes (or default), so a typo is not a silent no-op', async (t) => {
  const rate = { requestsPerSecond: 5 };
  t.same(fields({ authorization: { default: 'deny', routes: [route] }, limits: { routes: { r: rate, default: rate } } }), []);
  t.match(fields({ authorization: { default: 'deny', routes: [route] }, limits: { routes: { rr: rate } } }), [['limits.routes.rr', /no route "rr" in authorization.routes/]]);
  t.match(fields({ limits: { routes: { r: rate } } }), [['limits.routes.r', /no route "r"/]], 'without authorization, only default exists');
});
