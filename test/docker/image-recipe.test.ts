// The container image without a Docker engine: docker/Dockerfile is parsed and its recipe replayed
// in a temp folder (the build context filtered by docker/Dockerfile.dockerignore, the build
// stage's `npm ci` + `npm run build`, the runtime stage's production install and COPYs), then the
// runtime tree is run the way the image runs it: ENTRYPOINT + CMD, as the image's USER when this
// runs as root, in front of an echo upstream with a test PKI, probed by the image's own
// HEALTHCHECK, stopped by SIGTERM. What it cannot check: the base image itself (this runs on the
// local Node, the image on its LTS), file ownership inside layers, and BuildKit cache mounts.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, sep } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/index.js';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { call } from '../fixtures/client.js';
import { createTestPki } from '../fixtures/pki.js';
import { freePort } from '../fixtures/net.js';

const repo = join(import.meta.dirname, '../..');
const dockerfilePath = join(repo, 'docker/Dockerfile');
const ignorePath = join(repo, 'docker/Dockerfile.dockerignore');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  engines: { node: string };
};

// ---------------------------------------------------------------------------------------------
// A small Dockerfile parser: the instructions docker/Dockerfile uses, with Docker's rules for
// line continuations, comments, flags, JSON (exec) form and ${VAR} substitution.

interface Instruction {
  readonly keyword: string;
  /** `--name=value` flags before the arguments (RUN --mount may repeat: all values kept). */
  readonly flags: Readonly<Record<string, string[]>>;
  /** The arguments after the flags, as written (continuations joined). */
  readonly rest: string;
  /** The exec form, when the arguments are a JSON array of strings. */
  readonly json: string[] | undefined;
  readonly line: number;
}

interface Stage {
  readonly name: string;
  readonly from: string;
  readonly instructions: Instruction[];
  /** ARG and ENV in scope at the end of the stage (ENV also shown to RUN). */
  readonly args: Record<string, string>;
  readonly env: Record<string, string>;
}

interface Dockerfile {
  readonly globalArgs: Record<string, string>;
  readonly stages: Stage[];
}

/** Splits a string on unquoted whitespace, removing quotes and backslash escapes. */
function splitWords(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in: ${s}`);
  if (inWord) words.push(cur);
  return words;
}

/** `${NAME}`, `${NAME:-default}`, `${NAME:+alt}` and `$NAME`, from `scope`; unset is empty. */
function substitute(s: string, scope: Record<string, string>): string {
  return s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name?: string, op?: string, word?: string, bare?: string) => {
    const v = scope[(name ?? bare)!];
    if (op === '-') return v ? v : (word ?? '');
    if (op === '+') return v ? (word ?? '') : '';
    return v ?? '';
  });
}

/** Docker expands variables in these instructions; RUN, CMD, ENTRYPOINT and HEALTHCHECK are left to the shell. */
const SUBSTITUTED = new Set(['FROM', 'COPY', 'ADD', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'WORKDIR', 'ARG']);
const KNOWN = new Set(['FROM', 'ARG', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'LABEL', 'USER', 'EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD']);

function parseDockerfile(text: string): Dockerfile {
  // Logical lines: comment lines dropped (also inside a continuation), `\` joins lines.
  const logical: { line: number; text: string }[] = [];
  let pending: { line: number; text: string } | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*#/.test(raw)) return;
    if (!pending && raw.trim() === '') return;
    const continues = /\\\s*$/.test(raw);
    const body = continues ? raw.replace(/\\\s*$/, '') : raw;
    pending = pending ? { line: pending.line, text: `${pending.text} ${body.trim()}` } : { line: i + 1, text: body.trim() };
    if (!continues) {
      logical.push(pending);
      pending = undefined;
    }
  });
  if (pending) logical.push(pending);

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const { line, text: l } of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const keyword = m[1]!.toUpperCase();
    if (!KNOWN.has(keyword)) throw new Error(`Dockerfile:${line}: ${keyword} is not an instruction this replay understands; extend test/docker/image-recipe.test.ts`);
    let rest = m[2]!;
    const flags: Record<string, string[]> = {};
    if (['FROM', 'COPY', 'RUN', 'HEALTHCHECK'].includes(keyword)) {
      let f: RegExpExecArray | null;
      while ((f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest))) {
        (flags[f[1]!] ??= []).push(f[2] ?? 'true');
        rest = rest.slice(f[0].length);
      }
    }
    const stage = stages.at(-1);
    const scope = stage ? { ...stage.args, ...stage.env } : globalArgs;
    if (SUBSTITUTED.has(keyword) && keyword !== 'ARG') rest = substitute(rest, keyword === 'FROM' ? globalArgs : scope);
    let json: string[] | undefined;
    if (rest.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(rest);
        if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) json = parsed;
      } catch {
        // shell form that happens to start with "["
      }
    }
    const ins: Instruction = { keyword, flags, rest, json, line };
    if (keyword === 'FROM') {
      const w = splitWords(rest);
      const as = w.findIndex((x) => x.toUpperCase() === 'AS');
      stages.push({ name: as >= 0 ? w[as + 1]! : String(stages.length), from: w[0]!, instructions: [ins], args: {}, env: {} });
      continue;
    }
    if (keyword === 'ARG') {
      const [name, ...value] = rest.split('=');
      const def = value.length ? splitWords(substitute(value.join('='), scope)).join(' ') : undefined;
      if (!stage) globalArgs[name!.trim()] = def ?? '';
      else stage.args[name!.trim()] = def ?? globalArgs[name!.trim()] ?? '';
    }
    if (!stage) {
      if (keyword !== 'ARG') throw new Error(`Dockerfile:${line}: ${keyword} before the first FROM`);
      continue;
    }
    if (keyword === 'ENV') Object.assign(stage.env, parsePairs(rest));
    stage.instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** `k=v k2="v 2"` (ENV, LABEL); the legacy `ENV k v` form too. */
function parsePairs(rest: string): Record<string, string> {
  const words = splitWords(rest);
  if (words.length && !words[0]!.includes('=')) return { [words[0]!]: words.slice(1).join(' ') };
  return Object.fromEntries(
    words.map((w) => {
      const i = w.indexOf('=');
      return [w.slice(0, i), w.slice(i + 1)];
    }),
  );
}

function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

function last(stage: Stage, keyword: string): Instruction | undefined {
  return instructionsOf(stage, keyword).at(-1);
}

// ---------------------------------------------------------------------------------------------
// .dockerignore, with Docker's semantics: patterns are anchored at the context root, a pattern
// matching a parent folder matches everything below it, `!` re-includes, the last match wins.

function compileIgnore(text: string): (rel: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim().replace(/^\/+/, '').replace(/\/+$/, ''));
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === '*' && pattern[i + 1] === '*') {
          i++;
          if (pattern[i + 1] === '/') {
            i++;
            re += '(?:.*/)?';
          } else re += '.*';
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (rel: string) => {
    const parts = rel.split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) excluded = !r.negate;
    return excluded;
  };
}

// ---------------------------------------------------------------------------------------------
// The replay.

/** RUN commands the replay may execute on this machine, split on `&&`. Anything else fails loudly. */
const REPLAYABLE = [/^npm ci(\s+--[a-z-]+(=\S+)?)*$/, /^npm run build$/, /^npm cache clean --force$/];

/**
 * The environment a container would have: only what the image sets, plus PATH (this Node first)
 * and, for npm, HOME and its cache. No npm_* from a surrounding `npm test`, no tap loaders.
 */
function cleanEnv(extra: Record<string, string>, withHome = false): Record<string, string> {
  const env: Record<string, string> = { PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, ...extra };
  if (withHome && process.env.HOME) env.HOME = process.env.HOME;
  return env;
}

/**
 * tap's process-info hook rewrites the options of every spawn (it adds its loader to
 * NODE_OPTIONS so it can follow child processes), which would load tap into "the image". `env -i`
 * starts the command with exactly `env` and nothing else, the way a container starts.
 */
function isolated(argv: string[], env: Record<string, string>): [string, string[]] {
  return ['env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]];
}

function run(argv: string[], opts: { cwd: string; env: Record<string, string>; uid?: number; gid?: number; timeoutMs: number }) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    const [file, args] = isolated(argv, opts.env);
    const child = spawn(file, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.uid === undefined ? {} : { uid: opts.uid, gid: opts.gid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

interface Replayed {
  /** The folder that stands for each stage's `/`. */
  readonly rootfs: Record<string, string>;
  readonly workdir: Record<string, string>;
  readonly copiedFromContext: string[];
}

async function replay(df: Dockerfile, root: string, isIgnored: (rel: string) => boolean, log: (s: string) => void): Promise<Replayed> {
  const rootfs: Record<string, string> = {};
  const workdirs: Record<string, string> = {};
  const copiedFromContext: string[] = [];
  const npmEnv = {
    npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'),
    npm_config_prefer_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  for (const stage of df.stages) {
    const fsRoot = join(root, stage.name);
    mkdirSync(fsRoot, { recursive: true });
    rootfs[stage.name] = fsRoot;
    const at = (p: string) => join(fsRoot, ...posix.resolve('/', p).split('/'));
    let workdir = '/';
    const env: Record<string, string> = {};
    for (const ins of stage.instructions) {
      switch (ins.keyword) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, ins.rest);
          mkdirSync(at(workdir), { recursive: true });
          break;
        case 'ENV':
          Object.assign(env, parsePairs(ins.rest));
          break;
        case 'COPY': {
          const words = ins.json ?? splitWords(ins.rest);
          const dest = words.at(-1)!;
          const sources = words.slice(0, -1);
          const destAbs = posix.resolve(workdir, dest);
          const intoDir = dest.endsWith('/') || dest === '.' || sources.length > 1;
          const fromStage = ins.flags.from?.[0];
          if (fromStage !== undefined && !rootfs[fromStage]) throw new Error(`Dockerfile:${ins.line}: COPY --from=${fromStage}: no earlier stage of that name`);
          for (const src of sources) {
            let srcPath: string;
            let filter: ((s: string) => boolean) | undefined;
            if (fromStage !== undefined) {
              srcPath = join(rootfs[fromStage]!, ...posix.resolve('/', src).split('/'));
            } else {
              const rel = posix.normalize(src).replace(/^\.\/|\/$/g, '');
              if (isIgnored(rel)) throw new Error(`Dockerfile:${ins.line}: COPY ${src}: excluded from the build context by docker/Dockerfile.dockerignore`);
              copiedFromContext.push(rel);
              srcPath = join(repo, ...rel.split('/'));
              filter = (p: string) => {
                const r = relative(repo, p).split(sep).join('/');
                return r === '' || !isIgnored(r);
              };
            }
            if (!existsSync(srcPath)) throw new Error(`Dockerfile:${ins.line}: COPY ${src}: ${srcPath} does not exist`);
            if (statSync(srcPath).isDirectory()) {
              cpSync(srcPath, at(destAbs), { recursive: true, ...(filter ? { filter } : {}) });
            } else {
              const target = intoDir ? join(at(destAbs), basename(src)) : at(destAbs);
              mkdirSync(dirname(target), { recursive: true });
              copyFileSync(srcPath, target);
            }
          }
          break;
        }
        case 'RUN': {
          const command = ins.json ? ins.json.join(' ') : ins.rest;
          for (const part of command.split('&&').map((s) => s.trim())) {
            if (!REPLAYABLE.some((re) => re.test(part))) throw new Error(`Dockerfile:${ins.line}: RUN "${part}" is not replayable here (only npm ci / npm run build); extend REPLAYABLE`);
          }
          const started = Date.now();
          const r = await run(['sh', '-c', command], { cwd: at(workdir), env: cleanEnv({ ...npmEnv, ...env }, true), timeoutMs: 120_000 });
          log(`${stage.name}: RUN ${command} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
          if (r.code !== 0) throw new Error(`Dockerfile:${ins.line}: RUN ${command} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
          break;
        }
        default:
          break; // metadata: checked statically below
      }
    }
    workdirs[stage.name] = workdir;
  }
  return { rootfs, workdir: workdirs, copiedFromContext };
}

/** Every file under `dir` with its size and mtime: the "read-only root filesystem" witness. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const s = statSync(p);
        out.set(relative(dir, p), `${s.size}:${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

/** " (why)" from a child's stderr, or nothing when it said nothing. */
const why = (stderr: string) => (stderr.trim() ? ` (${stderr.trim().slice(0, 500)})` : '');


// ---------------------------------------------------------------------------------------------

const df = parseDockerfile(readFileSync(dockerfilePath, 'utf8'));
const isIgnored = compileIgnore(readFileSync(ignorePath, 'utf8'));
const runtime = df.stages.at(-1)!;
const build = df.stages[0]!;
const defaults = parseConfig(
  'version: 1\ntls: {cert: c.pem, key: k.pem}\nclientAuth: {caBundle: [ca.pem]}\nupstream: {url: "http://127.0.0.1:1"}\n',
  '/etc/mtls-sidecar/sidecar.yaml',
  {},
);

t.test('the Dockerfile, read statically', async (t) => {
  t.ok(df.stages.length >= 2, 'multi-stage');
  t.not(build.name, runtime.name);
  t.equal(build.from, runtime.from, 'build and runtime use the same base image');
  const image = /^node:(\d+)(?:\.\d+)*-(?:[a-z]+-)?slim(?:@sha256:[0-9a-f]{64})?$/.exec(runtime.from);
  t.ok(image, `runtime base ${runtime.from} is an official node *-slim image`);
  const major = Number(image?.[1]);
  const engineMin = Number(/(\d+)/.exec(pkg.engines.node)?.[1]);
  t.ok(major % 2 === 0 && major >= engineMin, `node ${major} is an LTS line (even) and satisfies engines.node ${pkg.engines.node}`);
  // The image ships a Node major the suite runs on in CI: .ci/node.sh's default (the oldest LTS
  // supported), which .ci/run installs where the machine's is older.
  const ciMajor = Number(/^\s*(\d+)\) _nlts_version=/m.exec(readFileSync(join(repo, '.ci/node.sh'), 'utf8'))?.[1]);
  t.equal(major, ciMajor, `node ${major} in the image is the major CI tests first (.ci/node.sh: ${ciMajor})`);

  const runs = instructionsOf(runtime, 'RUN').map((i) => i.rest);
  t.ok(
    runs.some((r) => /\bnpm ci\b/.test(r) && /--omit=dev\b/.test(r)),
    'runtime installs production dependencies only (npm ci --omit=dev)',
  );
  t.ok(instructionsOf(build, 'RUN').some((i) => /\bnpm ci\b/.test(i.rest)) && instructionsOf(build, 'RUN').some((i) => /\bnpm run build\b/.test(i.rest)), 'build stage: npm ci + npm run build');
  if (runs.concat(instructionsOf(build, 'RUN').map((i) => i.rest)).some((r) => /--ignore-scripts/.test(r))) {
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    // The lock's hasInstallScript also marks a package that merely ships a binding.gyp (the
    // registry sets it at publish); what --ignore-scripts would skip is a lifecycle script, or the
    // implicit node-gyp build of a binding.gyp the package does not opt out of (gypfile: false).
    const needsScript = (dir: string) => {
      const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string>; gypfile?: boolean };
      const lifecycle = ['preinstall', 'install', 'postinstall'].some((s) => pkg.scripts?.[s]);
      return lifecycle || (pkg.gypfile !== false && existsSync(join(repo, dir, 'binding.gyp')));
    };
    const scripted = Object.entries(lock.packages).filter(([dir, p]) => p.hasInstallScript && needsScript(dir)).map(([k]) => k);
    t.same(scripted, [], 'with --ignore-scripts, no package may need an install script');
    // better-sqlite3 13 ships prebuilt Node-API binaries instead: the image's platforms must be among them.
    for (const platform of ['linux-x64', 'linux-arm64']) {
      t.ok(existsSync(join(repo, 'node_modules/better-sqlite3/prebuilds', `${platform}.node`)), `better-sqlite3 ships a ${platform} binary`);
    }
  }

  t.equal(runtime.env.NODE_ENV, 'production', 'ENV NODE_ENV=production');
  const user = last(runtime, 'USER')?.rest ?? '';
  const [uid, gid] = user.split(':');
  t.match(user, /^\d+(:\d+)?$/, `USER ${user} is numeric (Kubernetes can only enforce runAsNonRoot on a numeric uid)`);
  t.not(Number(uid), 0, 'USER is not root');
  if (gid !== undefined) t.not(Number(gid), 0, 'group is not root');
  const userIdx = runtime.instructions.indexOf(last(runtime, 'USER')!);
  t.ok(
    runtime.instructions.slice(userIdx + 1).every((i) => !['RUN', 'COPY'].includes(i.keyword)),
    'nothing is installed or copied after USER (the process owns no file of the image)',
  );

  const exposed = instructionsOf(runtime, 'EXPOSE').flatMap((i) => splitWords(i.rest)).map((p) => Number(p.split('/')[0]));
  t.same(exposed.sort((a, b) => a - b), [defaults.listen.port, defaults.admin.port].sort((a, b) => a - b), `EXPOSE = listen.port ${defaults.listen.port} + admin.port ${defaults.admin.port} (config defaults)`);

  t.same(last(runtime, 'ENTRYPOINT')?.json, ['node', '/app/dist/cli.js'], 'ENTRYPOINT ["node","/app/dist/cli.js"] (exec form: node is PID 1 and gets SIGTERM)');
  t.same(last(runtime, 'CMD')?.json, ['serve', '--config', '/etc/mtls-sidecar/sidecar.yaml']);

  const labels = Object.assign({}, ...instructionsOf(runtime, 'LABEL').map((i) => parsePairs(i.rest))) as Record<string, string>;
  for (const k of ['title', 'description', 'version', 'revision', 'licenses']) t.ok(labels[`org.opencontainers.image.${k}`], `OCI label org.opencontainers.image.${k}`);
  t.equal(labels['org.opencontainers.image.version'], pkg.version, 'version label = package.json version');
  t.equal(labels['org.opencontainers.image.licenses'], pkg.license, 'licenses label = package.json license');

  const hc = last(runtime, 'HEALTHCHECK');
  t.ok(hc, 'HEALTHCHECK');
  const hcCmd = hc ? /^CMD\s+(.*)$/i.exec(hc.rest)?.[1] ?? '' : '';
  t.match(hcCmd, /^\[\s*"node"/, 'HEALTHCHECK runs node itself (exec form)');
  t.notMatch(hcCmd, /\b(curl|wget)\b/, 'no curl/wget (not in slim images)');
  t.match(hcCmd, /\/healthz/, 'HEALTHCHECK asks /healthz');
  t.match(hcCmd, new RegExp(`\\b${defaults.admin.port}\\b`), `HEALTHCHECK defaults to admin.port ${defaults.admin.port}`);

  // Only what the runtime needs, never the whole context.
  const runtimeCopies = instructionsOf(runtime, 'COPY').map((i) => ({ from: i.flags.from?.[0], words: i.json ?? splitWords(i.rest) }));
  t.notOk(runtimeCopies.some((c) => c.words.slice(0, -1).some((s) => s === '.' || s === './')), 'runtime never COPYs the whole context');
  t.same(
    runtimeCopies.flatMap((c) => c.words.slice(0, -1).map((s) => (c.from ? `${c.from}:${s}` : s))).sort(),
    [`${build.name}:/app/dist`, 'config/sidecar.example.yaml', 'config/sidecar.schema.json', 'package-lock.json', 'package.json'].sort(),
    'runtime copies package.json, package-lock.json, dist/ (from the build stage), the example config and its schema',
  );
});

t.test('Dockerfile.dockerignore keeps secrets and local builds out of the context', async (t) => {
  const contextSources = df.stages.flatMap((s) =>
    instructionsOf(s, 'COPY')
      .filter((i) => !i.flags.from)
      .flatMap((i) => (i.json ?? splitWords(i.rest)).slice(0, -1)),
  );
  for (const src of contextSources) t.notOk(isIgnored(posix.normalize(src).replace(/\/$/, '')), `COPY source ${src} is in the context`);
  t.notOk(isIgnored('src/cli.ts'), 'files inside an allowed folder are in');
  for (const p of ['.dev-pki/server.key', 'node_modules/tap/package.json', 'dist/cli.js', '.git/config', 'test/fixtures/pki.ts', 'coverage/x', 'src/dev/leftover.key', 'npm-debug.log', '.env']) {
    t.ok(isIgnored(p), `${p} is excluded`);
  }
});

t.test('replayed image: production tree, ENTRYPOINT+CMD, probes, mTLS, SIGTERM', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mtls-image-replay-'));
  chmodSync(root, 0o755);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const started = Date.now();
  const replayed = await replay(df, root, isIgnored, (s) => t.comment(s));
  t.comment(`recipe replayed in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const rootfs = replayed.rootfs[runtime.name]!;
  const inImage = (p: string) => join(rootfs, ...posix.resolve('/', p).split('/'));
  const app = inImage(replayed.workdir[runtime.name]!);

  // ---- the production tree
  t.same(readdirSync(app).sort(), ['config', 'dist', 'node_modules', 'package-lock.json', 'package.json'], 'runtime /app holds only what it needs (no src/, tsconfig, test/)');
  const nm = join(app, 'node_modules');
  for (const dev of ['typescript', 'tap', '@types']) t.notOk(existsSync(join(nm, dev)), `no ${dev} in the runtime node_modules`);
  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const devOnly = Object.entries(lock.packages).filter(([k, p]) => k && p.dev).map(([k]) => k);
  const leaked = devOnly.filter((k) => existsSync(join(app, ...k.split('/'))));
  t.same(leaked, [], `none of the ${devOnly.length} dev-only packages of the lockfile is installed`);
  for (const dep of Object.keys(pkg.dependencies)) t.ok(existsSync(join(nm, ...dep.split('/'), 'package.json')), `dependency ${dep} installed`);
  t.ok(existsSync(join(app, 'dist/cli.js')), 'dist/cli.js copied from the build stage');
  t.ok(existsSync(join(app, 'config/sidecar.example.yaml')), 'example config copied');
  t.ok(existsSync(join(app, 'config/sidecar.schema.json')), 'the schema its first line names, copied beside it');

  // ---- how the image runs: ENTRYPOINT + CMD, as USER, in WORKDIR, with the image's ENV
  const entrypoint = last(runtime, 'ENTRYPOINT')!.json!;
  const cmd = last(runtime, 'CMD')!.json!;
  const mapArg = (a: string) => (a.startsWith('/app/') ? inImage(a) : a);
  const [uidText, gidText] = (last(runtime, 'USER')!.rest).split(':');
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: Number(uidText), gid: Number(gidText ?? uidText) } : {};
  if (!asRoot) t.comment('not running as root: the sidecar runs as this user instead of the image USER');
  const imageEnv = cleanEnv(runtime.env);

  // A mounted config + certificates, readable by the image's user (Kubernetes: fsGroup).
  const pki = await createTestPki();
  t.teardown(() => pki.cleanup());
  const echo = await startEchoUpstream();
  t.teardown(() => echo.close());
  const etc = mkdtempSync(join(tmpdir(), 'mtls-image-etc-'));
  t.teardown(() => rmSync(etc, { recursive: true, force: true }));
  const configFile = join(etc, basename(cmd[2]!));
  writeFileSync(
    configFile,
    [
      'version: 1',
      'listen: { host: 127.0.0.1, port: 0 }',
      `tls: { cert: ${JSON.stringify(pki.serverCertFile)}, key: ${JSON.stringify(pki.serverKeyFile)} }`,
      `clientAuth: { caBundle: [${JSON.stringify(pki.caBundleFile)}] }`,
      // The test PKI publishes no CRL/OCSP (revocation has its own tests).
      'revocation: { mode: none }',
      `upstream: { url: ${JSON.stringify(echo.url)} }`,
      'admin: { host: 127.0.0.1, port: 0 }',
      'log: { level: info }',
      '',
    ].join('\n'),
  );
  if (asRoot) {
    for (const d of [pki.dir, etc]) {
      chmodSync(d, 0o755);
      for (const f of readdirSync(d)) chownSync(join(d, f), ids.uid!, ids.gid!);
    }
  }
  const before = snapshot(rootfs);

  const argv = (args: string[]) => [...entrypoint.map(mapArg), ...args];
  t.equal(cmd[0], 'serve');
  t.equal(cmd[1], '--config');

  const version = await run(argv(['--version']), { cwd: app, env: imageEnv, ...ids, timeoutMs: 20_000 });
  t.equal(version.stdout.trim(), pkg.version, '--version reads the copied package.json');

  const check = await run(argv(['check-config', configFile]), { cwd: app, env: imageEnv, ...ids, timeoutMs: 20_000 });
  t.equal(check.code, 0, `check-config exits 0${why(check.stderr)}`);
  t.match(check.stdout, /: ok$/m);

  const [serveFile, serveArgs] = isolated(argv([cmd[0]!, cmd[1]!, configFile]), imageEnv);
  const child: ChildProcess = spawn(serveFile, serveArgs, {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...ids,
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const listening = await new Promise<{ url: string; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not log "listening" in time\n${stdout}\n${stderr}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d;
      for (const line of stdout.split('\n')) {
        try {
          const rec = JSON.parse(line) as { event?: string; url?: string; admin?: string };
          if (rec.event === 'listening' && rec.url && rec.admin) {
            clearTimeout(timer);
            resolve({ url: rec.url, admin: rec.admin });
          }
        } catch {
          // not a complete JSON line yet
        }
      }
    });
    void exited.then(({ code }) => reject(new Error(`serve exited ${code} before listening\n${stdout}\n${stderr}`)));
  });
  const dataPort = Number(new URL(listening.url).port);
  const adminPort = Number(new URL(listening.admin).port);

  const healthz = await fetch(`${listening.admin}/healthz`);
  t.equal(healthz.status, 200, 'admin /healthz 200');
  const readyz = await fetch(`${listening.admin}/readyz`);
  t.equal(readyz.status, 200, 'admin /readyz 200');
  t.equal(((await readyz.json()) as { ready: boolean }).ready, true);

  const device = await pki.client({ deviceId: 'image-replay-device' });
  const reply = await call({ port: dataPort, path: '/through-the-image', ca: pki.rootPem, cert: device.chainPem, key: device.keyPem });
  t.equal(reply.status, 200, 'an mTLS request goes through to the echo');
  const echoed = reply.json as { url: string; headers: Record<string, string> };
  t.equal(echoed.url, '/through-the-image');
  t.equal(echoed.headers['x-client-verified'], 'SUCCESS');
  t.equal(echoed.headers['x-device-id'], 'image-replay-device');

  // The HEALTHCHECK exactly as written, against this process; and against nothing, where it must fail.
  const hc = last(runtime, 'HEALTHCHECK')!;
  const hcExec = /^CMD\s+(.*)$/i.exec(hc.rest)![1]!;
  const hcArgv = hcExec.startsWith('[') ? (JSON.parse(hcExec) as string[]) : ['sh', '-c', hcExec];
  const timeoutFlag = /^(\d+)(ms|s|m)$/.exec(hc.flags.timeout?.[0] ?? '30s');
  const hcTimeout = timeoutFlag ? Number(timeoutFlag[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[timeoutFlag[2] as 'ms' | 's' | 'm'] : 30_000;
  const healthy = await run(hcArgv, { cwd: app, env: { ...imageEnv, MTLS_ADMIN_PORT: String(adminPort) }, ...ids, timeoutMs: hcTimeout });
  t.equal(healthy.code, 0, `HEALTHCHECK exits 0 against the running sidecar${why(healthy.stderr)}`);
  const nobody = await freePort();
  const unhealthy = await run(hcArgv, { cwd: app, env: { ...imageEnv, MTLS_ADMIN_PORT: String(nobody) }, ...ids, timeoutMs: hcTimeout });
  t.not(unhealthy.code, 0, 'HEALTHCHECK fails when nothing answers on the admin port');

  child.kill('SIGTERM');
  const end = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
  t.same(end, { code: 0, signal: null }, `SIGTERM drains and exits 0${why(stderr)}`);

  const after = snapshot(rootfs);
  t.same([...after.entries()].filter(([k, v]) => before.get(k) !== v), [], 'nothing under the image root was written or changed (read-only root filesystem)');
  t.equal(after.size, before.size);
});
