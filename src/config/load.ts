/**
 * Reads the YAML config: parse, substitute `${ENV}`, validate against the one schema, resolve
 * file paths against the config's folder, freeze. Every failure is one `SidecarError`
 * (ERR_CONFIG_READ / ERR_CONFIG_INVALID) whose message names the file, the field and the line.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, isMap, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { SidecarError } from '../errors.js';
import { CA_FILE_PATH_FIELDS, caConfigSchema, type CaConfig } from './ca-schema.js';
import { FILE_PATH_FIELDS, configSchema, type SidecarConfig } from './schema.js';

type Path = ReadonlyArray<string | number>;

/** One problem found in a config file. */
export interface ConfigProblem {
  readonly field: string;
  readonly line: number | undefined;
  readonly message: string;
}

/** Thrown (as a SidecarError) with every problem of the file, not only the first. */
export class ConfigError extends SidecarError {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  ${file}${p.line ? `:${p.line}` : ''}: ${p.field || '(top level)'}: ${p.message}`);
    super('ERR_CONFIG_INVALID', problems[0]?.field ?? '', `invalid config ${file}:\n${lines.join('\n')}`);
    this.file = file;
    this.problems = problems;
  }
}

/** Reads and validates a config file. Sync; throws SidecarError; never returns a partial config. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  return parseConfig(readConfigText(file), file, env);
}

/** Validates config text; `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  return parseWith(configSchema, FILE_PATH_FIELDS, 'config/sidecar.example.yaml', text, file, env);
}

/** Reads and validates a device CA config file (`ca serve`). Same contract as {@link loadConfigFile}. */
export function loadCaConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): CaConfig {
  return parseCaConfig(readConfigText(file), file, env);
}

/** Validates device CA config text. Same contract as {@link parseConfig}. */
export function parseCaConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): CaConfig {
  return parseWith(caConfigSchema, CA_FILE_PATH_FIELDS, 'config/ca.example.yaml', text, file, env);
}

function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SidecarError('ERR_CONFIG_READ', file, `cannot read config ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** `example`: the reference config an unknown field is checked against. */
function parseWith<S extends z.ZodType>(schema: S, pathFields: readonly string[], example: string, text: string, file: string, env: NodeJS.ProcessEnv): z.infer<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ field: '', line: lineOf(e.pos[0]), message: `YAML syntax: ${e.message.split('\n')[0]}` })),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const problems: ConfigProblem[] = [];
  const substituted = substituteEnv(raw, [], env, (path, message) =>
    problems.push({ field: dotted(path), line: lineOf(nodeAt(doc, path)?.range?.[0]), message }),
  );
  // Every problem at once: the schema is checked even when a variable is missing, so a second run
  // does not reveal a second error (a field whose variable is missing is reported once, for that).
  const result = schema.safeParse(substituted);
  if (!result.success) {
    const envFields = new Set(problems.map((p) => p.field));
    problems.push(...result.error.issues.flatMap((i) => describeIssue(i, doc, lineOf, example)).filter((p) => !envFields.has(p.field)));
  }
  if (problems.length || !result.success) throw new ConfigError(file, problems);
  return deepFreeze(resolvePaths(result.data, pathFields, dirname(resolve(file))));
}

/** `${NAME}` or `${NAME:-fallback}`; the published JSON Schema admits it wherever text goes. */
export const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${NAME}` / `${NAME:-default}` inside string values (never keys, never YAML syntax). */
function substituteEnv(value: unknown, path: Path, env: NodeJS.ProcessEnv, fail: (p: Path, m: string) => void): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      fail(path, v === '' ? `environment variable ${name} is set but empty` : `environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, [...path, i], env, fail));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, [...path, k], env, fail)]));
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lineOf: (o: number | undefined) => number | undefined, example: string): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      field: dotted([...path, key]),
      line: lineOf(keyNodeAt(doc, path, key)?.range?.[0]),
      message: `unknown field (check the spelling against ${example})`,
    }));
  }
  // A missing field has no node of its own: point at the nearest parent that exists.
  let line: number | undefined;
  for (let n = path.length; n >= 0 && line === undefined; n--) line = lineOf(nodeAt(doc, path.slice(0, n))?.range?.[0]);
  // "Required" only when the field is really absent: zod does not report the input by default,
  // so `port: abc` looked absent and was told "is required".
  const absent = issue.code === 'invalid_type' && nodeAt(doc, path) === undefined;
  const message = absent ? 'is required' : issue.message;
  return [{ field: dotted(path), line, message }];
}

function nodeAt(doc: Document, path: Path): { range?: [number, number, number] | null } | undefined {
  if (path.length === 0) return doc.contents ?? undefined;
  const node = doc.getIn(path, true);
  return node && typeof node === 'object' && 'range' in node ? (node as { range?: [number, number, number] }) : undefined;
}

function keyNodeAt(doc: Document, path: Path, key: string): { range?: [number, number, number] | null } | undefined {
  const parent = path.length ? doc.getIn(path, true) : doc.contents;
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
  return (pair?.key as { range?: [number, number, number] } | undefined) ?? undefined;
}

function dotted(path: Path): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[');
}

function resolvePaths<T>(config: T, fields: readonly string[], base: string): T {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const field of fields) {
    const keys = field.split('.');
    const last = keys.pop()!;
    let holder: Record<string, unknown> | undefined = copy;
    for (const k of keys) holder = holder?.[k] as Record<string, unknown> | undefined;
    const v = holder?.[last];
    if (typeof v === 'string') holder![last] = resolve(base, v);
    else if (Array.isArray(v)) holder![last] = v.map((p: string) => resolve(base, p));
  }
  return copy as unknown as T;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
