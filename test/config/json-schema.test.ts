// The published JSON Schemas (config/*.schema.json), for editors: committed exactly as generated,
// named and met by the examples, agreeing with the loader on what is valid, and shipped beside
// the example wherever the example is shipped.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import t from 'tap';
import { parseDocument } from 'yaml';
import { ConfigError, parseCaConfig, parseConfig } from '../../src/config/index.js';
import { CONFIG_JSON_SCHEMAS, REGENERATE_COMMAND, renderConfigJsonSchema, type ConfigJsonSchemaEntry } from '../../src/config/json-schema.js';

const ROOT = join(import.meta.dirname, '../..');
const read = (name: string) => readFileSync(join(ROOT, 'config', name), 'utf8');

type Json = Record<string, unknown>;
type Path = (string | number)[];

const [SIDECAR, CA] = CONFIG_JSON_SCHEMAS;
/** The loader of each program, as `serve`/`ca serve` call it. */
const LOADERS: Record<ConfigJsonSchemaEntry['file'], (text: string, file: string, env: NodeJS.ProcessEnv) => unknown> = {
  'sidecar.schema.json': parseConfig,
  'ca.schema.json': parseCaConfig,
};

/** A real validator over the committed file, strict, so a keyword it does not know fails too. */
function jsonSchemaValidator(entry: ConfigJsonSchemaEntry) {
  const ajv = new Ajv({ strict: true, allErrors: true });
  addFormats.default(ajv);
  const validate = ajv.compile(JSON.parse(read(entry.file)) as Json);
  return (value: unknown) => ({ ok: validate(value), errors: ajv.errorsText(validate.errors) });
}

function loaderAccepts(entry: ConfigJsonSchemaEntry, text: string, env: NodeJS.ProcessEnv): { ok: boolean; errors: string } {
  try {
    LOADERS[entry.file](text, join(ROOT, 'config', entry.example), env);
    return { ok: true, errors: '' };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, errors: err.message };
    throw err;
  }
}

t.test('the committed schema files are what the zod schemas generate now', async (t) => {
  for (const entry of CONFIG_JSON_SCHEMAS) {
    let committed = '';
    try {
      committed = read(entry.file);
    } catch {
      // missing: the comparison below says what to run
    }
    t.ok(
      committed === renderConfigJsonSchema(entry),
      `config/${entry.file} is what src/config/ generates (if not: run \`${REGENERATE_COMMAND}\` and commit it)`,
    );
  }
});

t.test('each example names its schema for editors on its first line and is valid against it', async (t) => {
  for (const entry of CONFIG_JSON_SCHEMAS) {
    const text = read(entry.example);
    t.equal(text.split('\n')[0], `# yaml-language-server: $schema=./${entry.file}`, `${entry.example} names ${entry.file}`);
    const result = jsonSchemaValidator(entry)(parseDocument(text).toJS());
    t.ok(result.ok, `${entry.example} is valid against ${entry.file}${result.ok ? '' : `: ${result.errors}`}`);
  }
});

t.test('the schemas describe the fields and show the defaults the loader applies', async (t) => {
  for (const entry of CONFIG_JSON_SCHEMAS) {
    const schema = JSON.parse(read(entry.file)) as Json;
    t.match(schema, { $schema: 'http://json-schema.org/draft-07/schema#', title: /mtls-sidecar/, description: new RegExp(entry.example) });
    // Leave out of the example every field whose schema shows a default: the loader must then
    // produce exactly that default (objects defaulting to {} are entered, their fields checked).
    const example = parseDocument(read(entry.example)).toJS() as Json;
    const dropped: [Path, unknown][] = [];
    const strip = (value: Json, node: Json, path: Path) => {
      const properties = (node.properties ?? {}) as Record<string, Json>;
      for (const [key, child] of Object.entries(value)) {
        const prop = properties[key];
        if (!prop) continue;
        const isObject = child !== null && typeof child === 'object' && !Array.isArray(child);
        if (isObject && prop.properties) strip(child as Json, prop, [...path, key]);
        else if ('default' in prop) {
          dropped.push([[...path, key], prop.default]);
          delete value[key];
        }
      }
    };
    strip(example, schema, []);
    const loaded = LOADERS[entry.file](JSON.stringify(example), join(ROOT, 'config', entry.example), {}) as Json;
    for (const [path, value] of dropped) {
      const got = path.reduce<unknown>((v, k) => (v as Json | undefined)?.[k], loaded);
      t.same(got, value, `${entry.file}: ${path.join('.')} defaults to ${JSON.stringify(value)}`);
    }
    t.ok(dropped.length >= (entry === SIDECAR ? 60 : 30), `${entry.file}: ${dropped.length} defaults checked`);
  }
  const sidecar = JSON.parse(read(SIDECAR.file)) as Json;
  t.same(sidecar.required, ['version', 'tls', 'clientAuth', 'upstream'], 'fields with defaults are optional');
  t.match(sidecar, {
    properties: {
      listen: { description: String, properties: { port: { description: 'TCP port clients connect to', default: 8443 } } },
      revocation: { properties: { mode: { description: String, default: 'crl-then-ocsp' } } },
    },
  });
});

/** One change to an example, and whether the loader accepts the result. */
interface Variant {
  readonly entry: ConfigJsonSchemaEntry;
  readonly path: Path;
  readonly value: unknown;
  readonly env?: NodeJS.ProcessEnv;
}
const DELETE = Symbol('delete');

function apply(v: Variant): { text: string; value: unknown } {
  const doc = parseDocument(read(v.entry.example));
  if (v.value === DELETE) doc.deleteIn(v.path);
  else doc.setIn(v.path, v.value);
  return { text: doc.toString(), value: doc.toJS() };
}

t.test('the loader and the JSON Schema agree on what is valid', async (t) => {
  const accepted: Variant[] = [
    { entry: SIDECAR, path: ['listen', 'port'], value: '${PORT}', env: { PORT: '9443' } },
    { entry: SIDECAR, path: ['listen', 'port'], value: '${PORT:-9443}' },
    { entry: SIDECAR, path: ['listen', 'port'], value: '8443' },
    { entry: SIDECAR, path: ['clientAuth', 'requireClientAuthEku'], value: 'false' },
    { entry: SIDECAR, path: ['identity', 'xfcc', 'enabled'], value: '${XFCC}', env: { XFCC: 'true' } },
    { entry: SIDECAR, path: ['tls', 'minVersion'], value: '${TLS_MIN:-TLSv1.3}' },
    { entry: SIDECAR, path: ['identity', 'headers', 'deviceId'], value: '${DEVICE_HEADER}', env: { DEVICE_HEADER: 'X-Device' } },
    { entry: SIDECAR, path: ['identity', 'deviceId'], value: [{ source: '${ID_SOURCE}' }], env: { ID_SOURCE: 'cn' } },
    { entry: SIDECAR, path: ['workers'], value: 'auto' },
    { entry: SIDECAR, path: ['workers'], value: '${WORKERS}', env: { WORKERS: '4' } },
    { entry: SIDECAR, path: ['revocation', 'crl', 'urls'], value: ['http://${CRL_HOST}/crl'], env: { CRL_HOST: 'ca.internal' } },
    { entry: SIDECAR, path: ['upstream', 'ca'], value: 'upstream-ca.pem' },
    { entry: SIDECAR, path: ['listen'], value: DELETE },
    { entry: CA, path: ['enroll', 'listen', 'port'], value: '${ENROLL_PORT}', env: { ENROLL_PORT: '9444' } },
    { entry: CA, path: ['issuance', 'keyTypes'], value: ['${KEY_TYPE}'], env: { KEY_TYPE: 'p256' } },
    { entry: CA, path: ['pins'], value: DELETE },
  ];
  const refused: Variant[] = [
    { entry: SIDECAR, path: ['listen', 'port'], value: 'eighty' },
    { entry: SIDECAR, path: ['listen', 'port'], value: true },
    { entry: SIDECAR, path: ['listen', 'port'], value: 70_000 },
    { entry: SIDECAR, path: ['tls', 'minVersoin'], value: 'TLSv1.3' },
    { entry: SIDECAR, path: ['identity', 'xfcc', 'surprise'], value: 1 },
    { entry: SIDECAR, path: ['version'], value: 2 },
    { entry: SIDECAR, path: ['version'], value: '${VERSION}', env: { VERSION: '1' } },
    { entry: SIDECAR, path: ['tls', 'cert'], value: DELETE },
    { entry: SIDECAR, path: ['clientAuth', 'caBundle'], value: [] },
    { entry: SIDECAR, path: ['clientAuth', 'failureMode'], value: 'maybe' },
    { entry: SIDECAR, path: ['clientAuth', 'requireClientAuthEku'], value: 'yes' },
    { entry: SIDECAR, path: ['identity', 'headers', 'deviceId'], value: 'X Device Id' },
    { entry: SIDECAR, path: ['identity', 'deviceId'], value: [{ source: 'email' }] },
    { entry: SIDECAR, path: ['workers'], value: 0 },
    { entry: CA, path: ['enroll', 'listen', 'port'], value: 'eighty' },
    { entry: CA, path: ['admin', 'tokenFiel'], value: 'admin-token' },
    { entry: CA, path: ['issuance', 'sanUriTemplate'], value: 'urn:device' },
    { entry: CA, path: ['issuance', 'keyTypes'], value: ['dsa'] },
    { entry: CA, path: ['pins', 'backup'], value: ['not-a-pin'] },
  ];
  const validators = new Map(CONFIG_JSON_SCHEMAS.map((e) => [e, jsonSchemaValidator(e)]));
  for (const [expected, variants] of [
    [true, accepted],
    [false, refused],
  ] as const) {
    for (const v of variants) {
      const { text, value } = apply(v);
      const name = `${v.entry.example} with ${v.path.join('.')}: ${v.value === DELETE ? '(removed)' : JSON.stringify(v.value)}`;
      const loader = loaderAccepts(v.entry, text, v.env ?? {});
      const json = validators.get(v.entry)!(value);
      const verb = expected ? 'accepts' : 'refuses';
      t.equal(loader.ok, expected, `loader ${verb} ${name}${loader.ok === expected ? '' : `: ${loader.errors}`}`);
      t.equal(json.ok, expected, `JSON Schema ${verb} ${name}${json.ok === expected ? '' : `: ${json.errors}`}`);
    }
  }
});

t.test('where the JSON Schema cannot follow zod it is looser, on purpose, never stricter', async (t) => {
  // Refinements and ranges of converted text are left to the loader (`check-config` names them).
  const looser: Variant[] = [
    { entry: SIDECAR, path: ['upstream', 'url'], value: 'ftp://api.internal' },
    { entry: SIDECAR, path: ['listen', 'port'], value: '70000' },
    { entry: CA, path: ['admin', 'tokenFile'], value: DELETE },
    { entry: CA, path: ['issuance', 'deviceIdPattern'], value: '(' },
  ];
  for (const v of looser) {
    const { text, value } = apply(v);
    const name = `${v.entry.example} with ${v.path.join('.')}: ${v.value === DELETE ? '(removed)' : JSON.stringify(v.value)}`;
    t.notOk(loaderAccepts(v.entry, text, {}).ok, `loader refuses ${name}`);
    t.ok(jsonSchemaValidator(v.entry)(value).ok, `JSON Schema lets the loader judge ${name}`);
  }
});

t.test('the package ships each schema beside its example', async (t) => {
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
  ) as [{ files: { path: string }[] }];
  const shipped = new Set(pack.files.map((f) => f.path));
  t.ok(shipped.has(`config/${SIDECAR.example}`), 'the sidecar example is shipped');
  for (const entry of CONFIG_JSON_SCHEMAS) {
    if (shipped.has(`config/${entry.example}`)) t.ok(shipped.has(`config/${entry.file}`), `config/${entry.file} is shipped with config/${entry.example}`);
  }
});
