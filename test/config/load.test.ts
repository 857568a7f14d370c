import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseDocument } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { thrownBy } from '../fixtures/thrown.js';

const minimal = `version: 1
tls:
  cert: certs/server.pem
  key: certs/server.key
clientAuth:
  caBundle: [ca.pem]
upstream:
  url: http://127.0.0.1:8080
`;

const problems = (text: string, env: NodeJS.ProcessEnv = {}): ConfigError => thrownBy(ConfigError, () => parseConfig(text, '/etc/sidecar/sidecar.yaml', env));

t.test('a minimal config gets the documented defaults, resolved paths, and is frozen', async (t) => {
  const c = parseConfig(minimal, '/etc/sidecar/sidecar.yaml', {});
  t.equal(c.listen.port, 8443);
  t.equal(c.tls.minVersion, 'TLSv1.2');
  t.equal(c.clientAuth.failureMode, 'reject');
  t.equal(c.clientAuth.requireClientAuthEku, true);
  t.equal(c.tls.cert, '/etc/sidecar/certs/server.pem');
  t.same(c.clientAuth.caBundle, ['/etc/sidecar/ca.pem']);
  t.equal(c.identity.headers.deviceId, 'X-Device-Id');
  t.equal(c.identity.deviceId[0]?.source, 'uri');
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.tls) && Object.isFrozen(c.clientAuth.caBundle));
});

t.test('an unknown key names the field, the file and the line', async (t) => {
  const err = problems(minimal.replace('  key: certs/server.key', '  key: certs/server.key\n  minVersoin: TLSv1.3'));
  t.equal(err.code, 'ERR_CONFIG_INVALID');
  t.same(err.problems.map((p) => [p.field, p.line]), [['tls.minVersoin', 5]]);
  t.match(err.message, '/etc/sidecar/sidecar.yaml:5: tls.minVersoin: unknown field');
  t.match(err.message, 'check the spelling against config/sidecar.example.yaml');
});

t.test('a wrong value names the field and its line; all problems are listed', async (t) => {
  const err = problems(minimal.replace('url: http://127.0.0.1:8080', 'url: ftp://x').replace('version: 1', 'version: 1\nlisten: { port: 70000 }'));
  const byField = Object.fromEntries(err.problems.map((p) => [p.field, p.line]));
  t.equal(byField['listen.port'], 2);
  t.equal(byField['upstream.url'], 9);
  t.match(err.message, /upstream\.url: must be an http:\/\/ or https:\/\/ URL/);
});

t.test('a missing required field is named', async (t) => {
  const err = problems(minimal.replace('  url: http://127.0.0.1:8080\n', '  connectTimeoutMs: 10\n'));
  t.same(err.problems.map((p) => [p.field, p.message]), [['upstream.url', 'is required']]);
  t.equal(err.problems[0]!.line, 8, 'points at the parent that exists');
});

t.test('version is required and must be 1', async (t) => {
  t.match(problems(minimal.replace('version: 1', 'version: 2')).message, /version: must be 1/);
});

t.test('a YAML syntax error names its line', async (t) => {
  const err = problems(minimal.replace('clientAuth:', 'clientAuth: [oops'));
  t.match(err.message, /sidecar\.yaml:\d+: \(top level\): YAML syntax/);
});

t.test('duplicate keys are errors, not last-one-wins', async (t) => {
  t.match(problems(minimal + 'upstream:\n  url: http://evil\n').message, /YAML syntax/);
});

t.test('${ENV} substitution, with fallbacks and typed values', async (t) => {
  const text = minimal
    .replace('url: http://127.0.0.1:8080', 'url: http://${UP_HOST}:${UP_PORT:-9000}')
    .replace('version: 1', 'version: 1\nlisten: { port: "${PORT}" }\nclientAuth_placeholder: 0')
    .replace('\nclientAuth_placeholder: 0', '');
  const c = parseConfig(text, '/x/s.yaml', { UP_HOST: 'api.internal', PORT: '9443' });
  t.equal(c.upstream.url, 'http://api.internal:9000');
  t.equal(c.listen.port, 9443);
  const err = problems(text, { PORT: '9443' });
  t.same(err.problems.map((p) => [p.field, p.line, p.message]), [['upstream.url', 9, 'environment variable UP_HOST is not set']]);
});

t.test('config/sidecar.example.yaml is valid and documents every field with its default', async (t) => {
  const file = join(import.meta.dirname, '../../config/sidecar.example.yaml');
  const text = readFileSync(file, 'utf8');
  const example = parseConfig(text, file, {});
  const defaults = parseConfig(minimal, file, {});
  const required = new Set(['tls.cert', 'tls.key', 'clientAuth.caBundle', 'upstream.url']);
  const walk = (a: unknown, b: unknown, path: string[]) => {
    if (a && typeof a === 'object' && !Array.isArray(a)) {
      for (const k of Object.keys(a)) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)?.[k], [...path, k]);
      return;
    }
    const dotted = path.join('.');
    if (!required.has(dotted)) t.same(a, b, `${dotted}: the example shows the default`);
  };
  walk(example, defaults, []);
  // Optional fields without a default must at least be documented (commented out).
  for (const key of ['ca', 'serverName', 'by', 'overrideUrl']) t.match(text, new RegExp(`^\\s*# ${key}: `, 'm'), `optional ${key} documented`);
  // Every key in the example has a comment line right above it (or is in a commented block).
  const doc = parseDocument(text);
  t.equal(doc.errors.length, 0);
});

t.test('a wrong type is not "required"; an empty variable is not "unset"; every problem at once', async (t) => {
  const text = minimal.replace('version: 1\n', 'version: 1\nlisten:\n  port: abc\n').replace('url: http://127.0.0.1:8080', 'url: http://${UP_HOST}:8080');
  const unset = problems(text);
  t.same(
    unset.problems.map((p) => [p.field, p.line, p.message]),
    [
      ['upstream.url', 10, 'environment variable UP_HOST is not set'],
      ['listen.port', 3, 'Invalid input: expected number, received string'],
    ],
    'the schema error comes with the environment error, not on a second run',
  );
  const empty = problems(text, { UP_HOST: '' });
  t.equal(empty.problems[0]?.message, 'environment variable UP_HOST is set but empty');
});
