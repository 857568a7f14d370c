// The dependency direction of ../shared/ARCHITECTURE.md, enforced by reading the imports: modules
// import only downward, and another folder only through its index.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import t from 'tap';

const SRC = join(import.meta.dirname, '../src');

/** For each module (folder or top-level file), the modules it may import. */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  metrics: [],
  logging: [],
  lifecycle: [],
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
  enroll: ['pki', 'errors', 'metrics', 'config', 'logging'],
  device: ['pki', 'errors'],
  workers: ['config', 'serve', 'admin', 'lifecycle', 'logging', 'metrics', 'errors'],
  'cli-ca': ['config', 'enroll', 'device', 'lifecycle', 'errors', 'pki'],
  cli: ['config', 'serve', 'workers', 'cli-ca', 'enroll', 'device', 'lifecycle', 'logging', 'dev', 'errors', 'tls'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const moduleOf = (file: string) => relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');

t.test('imports flow one way, and folders are entered through index.ts', async (t) => {
  let checked = 0;
  for (const file of files(SRC)) {
    const from = moduleOf(file);
    t.ok(ALLOWED[from], `${relative(SRC, file)}: module "${from}" is listed in ARCHITECTURE.md`);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
      const to = moduleOf(target);
      checked++;
      if (to === from) continue;
      t.ok(ALLOWED[from]?.includes(to), `${relative(SRC, file)} → ${to} is allowed`);
      const inFolder = relative(SRC, target).includes('/');
      if (inFolder) t.match(target, /\/index\.ts$/, `${relative(SRC, file)} enters ${to}/ through its index.ts`);
    }
  }
  t.ok(checked > 20, `checked ${checked} imports`);
});

t.test('only cli.ts calls process.exit', async (t) => {
  for (const file of files(SRC)) {
    if (file.endsWith('/cli.ts')) continue;
    t.notMatch(readFileSync(file, 'utf8'), /process\.exit\(/, relative(SRC, file));
  }
});
