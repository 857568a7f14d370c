// The dependency direction of docs/architecture.md, enforced by reading the imports: modules
// import only downward, and another folder only through its index.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import t from 'tap';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');
const DESIGN = 'docs/architecture.md';

/** For each module (folder or top-level file), the modules it may import. */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  metrics: [],
  logging: [],
  lifecycle: [],
  'ca-protocol': [],
  config: ['errors'],
  pki: ['errors'],
  tls: ['pki', 'errors', 'metrics'],
  revocation: ['pki', 'errors', 'metrics', 'config'],
  identity: ['pki', 'errors'],
  verify: ['revocation', 'identity', 'pki', 'errors'],
  policy: ['identity'],
  proxy: ['verify', 'identity', 'policy', 'errors', 'metrics'],
  admin: ['metrics', 'errors'],
  serve: ['config', 'errors', 'metrics', 'logging', 'pki', 'tls', 'verify', 'revocation', 'identity', 'policy', 'proxy', 'admin', 'lifecycle'],
  dev: ['config', 'serve', 'pki', 'errors'],
  enroll: ['pki', 'errors', 'metrics', 'config', 'logging', 'ca-protocol'],
  device: ['pki', 'errors', 'ca-protocol'],
  'cli-args': ['errors', 'pki'],
  'cli-ca': ['cli-args', 'config', 'enroll', 'lifecycle', 'errors'],
  'cli-device': ['cli-args', 'device', 'errors'],
  cli: ['config', 'serve', 'cli-ca', 'cli-device', 'lifecycle', 'logging', 'dev', 'errors'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const moduleOf = (file: string) => relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');

/**
 * Modules `cli.ts` may load only with `import()`, so `serve` carries neither the dev PKI nor the
 * device CA's or the simulator's code and libraries.
 */
const ON_DEMAND: Record<string, string[]> = { cli: ['dev', 'cli-ca', 'cli-device'] };

t.test('imports flow one way, and folders are entered through index.ts', async (t) => {
  let checked = 0;
  for (const file of files(SRC)) {
    const from = moduleOf(file);
    t.ok(ALLOWED[from], `${relative(SRC, file)}: module "${from}" is listed in ALLOWED`);
    const text = readFileSync(file, 'utf8');
    const statics = [...text.matchAll(/^(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)].map((m) => ({ spec: m[1]!, dynamic: false }));
    const dynamics = [...text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)].map((m) => ({ spec: m[1]!, dynamic: true }));
    for (const { spec, dynamic } of [...statics, ...dynamics]) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      const to = moduleOf(target);
      checked++;
      if (to === from) continue;
      t.ok(ALLOWED[from]?.includes(to), `${relative(SRC, file)} → ${to} is allowed`);
      if (!dynamic) t.notOk(ON_DEMAND[from]?.includes(to), `${relative(SRC, file)} loads ${to} with import() only`);
      const inFolder = relative(SRC, target).includes('/');
      if (inFolder) t.match(target, /\/index\.ts$/, `${relative(SRC, file)} enters ${to}/ through its index.ts`);
    }
  }
  t.ok(checked > 20, `checked ${checked} imports`);
});

/**
 * The rows of the design document's module table (its "## Modules" section): the module a row's
 * first cell names (`src/serve/` → serve, `src/cli.ts` → cli) and the modules its last cell lets
 * it import ("—" for none).
 */
function designTable(markdown: string): Map<string, string[]> {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Modules'));
  const rows = new Map<string, string[]>();
  for (const line of (section ?? '').split('\n')) {
    if (!line.startsWith('|') || /^\|\s*(path|-)/.test(line)) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const path = /^`src\/([\w-]+)(?:\/|\.ts)`$/.exec(cells[0] ?? '');
    if (!path) throw new Error(`${DESIGN}: a Modules row does not start with a src/ path: ${line}`);
    const imports = cells.at(-1) === '—' ? [] : (cells.at(-1) ?? '').split(',').map((m) => m.trim().replace(/`/g, ''));
    rows.set(path[1]!, imports);
  }
  return rows;
}

t.test(`${DESIGN}'s module table says what ALLOWED says`, async (t) => {
  const file = join(ROOT, DESIGN);
  t.ok(existsSync(file), `${DESIGN} exists`);
  if (!existsSync(file)) return;
  const table = designTable(readFileSync(file, 'utf8'));
  t.same([...table.keys()].sort(), Object.keys(ALLOWED).sort(), 'the same modules');
  for (const [module, imports] of table) {
    if (ALLOWED[module]) t.same([...imports].sort(), [...ALLOWED[module]].sort(), `${module}: the same imports`);
  }
});

/** The files git tracks, or undefined outside a git checkout. */
function trackedFiles(): string[] | undefined {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

const tracked = trackedFiles();
t.test('no tracked file points outside the repository', { skip: tracked ? false : 'not a git checkout' }, async (t) => {
  // Built from pieces so that this file does not match itself. The absolute pattern wants `work`
  // as the whole first segment after a root slash: `src/workers.ts` and `/workspace` do not match.
  const sibling = ['..', 'shared'].join('/');
  const absolute = new RegExp(`(?<![\\w.~%-])/${'work'}(?![\\w.-])`);
  const found: string[] = [];
  for (const name of tracked ?? []) {
    if (name === 'package-lock.json' || !existsSync(join(ROOT, name))) continue;
    readFileSync(join(ROOT, name), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.includes(sibling) || absolute.test(line)) found.push(`${name}:${i + 1}: ${line.trim()}`);
      });
  }
  t.same(found, [], 'no reference to a path outside the repository');
});

/**
 * ASN.1/DER lives in src/pki/: one reader (hostile input, explicit limits), one writer, one serial
 * convention. Outside it, no file may load an ASN.1 library nor walk DER by hand. The one exception
 * is the sidecar's OCSP client codec: pkijs builds its requests and decodes the responses (once
 * per cache miss, loaded lazily by revocation/ocsp-client.ts), while the verification around them
 * (signer, CertID, times, nonce) is revocation's policy; splitting those two files is not worth it.
 */
const ASN1_LIBRARIES = /^(?:asn1js|pkijs|@peculiar\/.*|reflect-metadata)$/;
const ASN1_LIBRARY_USERS_OUTSIDE_PKI: Record<string, string[]> = {
  'revocation/ocsp-request.ts': ['asn1js', 'pkijs'],
  'revocation/ocsp-response.ts': ['asn1js', 'pkijs'],
};

/** Every module a file loads: static imports and re-exports, side-effect imports, dynamic `import()`. */
function loadedModules(text: string): string[] {
  const found = [
    ...text.matchAll(/^(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm),
    ...text.matchAll(/^import\s+'([^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g),
  ];
  return found.map((m) => m[1]!);
}

t.test('ASN.1 libraries are loaded only in src/pki/ (and by the OCSP client codec)', async (t) => {
  for (const file of files(SRC)) {
    const name = relative(SRC, file);
    if (name.startsWith('pki/')) continue;
    const libraries = loadedModules(readFileSync(file, 'utf8')).filter((m) => ASN1_LIBRARIES.test(m));
    t.same(libraries.sort(), ASN1_LIBRARY_USERS_OUTSIDE_PKI[name] ?? [], `${name} loads ${libraries.join(', ') || 'no ASN.1 library'}`);
  }
});

t.test('DER is walked only in src/pki/', async (t) => {
  // A hand-written DER reader decodes the length octet (its low 7 bits: `& 0x7f`) or checks for a
  // multi-octet tag (`& 0x1f`), and one built on ours needs its TLV primitives, which pki/index.ts
  // does not export. Neither may appear outside src/pki/.
  const handWalking = /&\s*0x(?:7f|1f)\b|\b(?:readTlv|childrenOf|expectTlv|contentStart)\b/i;
  for (const file of files(SRC)) {
    const name = relative(SRC, file);
    if (name.startsWith('pki/')) continue;
    const hit = readFileSync(file, 'utf8').split('\n').findIndex((line) => handWalking.test(line));
    t.equal(hit, -1, hit === -1 ? `${name} walks no DER` : `${name}:${hit + 1} walks DER by hand`);
  }
  const entry = readFileSync(join(SRC, 'pki', 'index.ts'), 'utf8');
  t.notMatch(entry, /\b(?:readTlv|childrenOf|expectTlv|expectTag|contentOf|encodingOf|tlv|tlvOfList|Tlv)\b/, 'pki/index.ts does not export the TLV primitives');
});

t.test('only cli.ts calls process.exit', async (t) => {
  for (const file of files(SRC)) {
    if (file.endsWith('/cli.ts')) continue;
    t.notMatch(readFileSync(file, 'utf8'), /process\.exit\(/, relative(SRC, file));
  }
});
