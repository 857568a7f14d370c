/**
 * Quarantine wiring: the deny-list (policy/), `quarantine.file` read at start and polled by
 * content (like the TLS files: interval and SIGHUP), API entries handed in by the admin listener
 * (or, with workers, by the primary), and the closing of open connections of every device an
 * addition names, at once.
 *
 * API entries live in memory: in the process, or with workers in the primary, which keeps them
 * across worker restarts and sends them to every new worker. They are lost when the sidecar
 * stops; an entry that must survive a restart belongs in the file.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { tokenDigest, type QuarantineApi } from '../admin/index.js';
import { SidecarError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { createQuarantine, parseQuarantineEntry, parseQuarantineFile, type Quarantine, type QuarantineEntry } from '../policy/index.js';
import type { Pipeline } from '../proxy/index.js';

export type { QuarantineEntry };

export interface QuarantineControl extends QuarantineApi {
  list(): { file: QuarantineEntry[]; api: QuarantineEntry[] };
  /** What the pipeline consults per request. */
  readonly lookup: Quarantine;
  /** Replaces the API entries (a worker, from the primary). Never throws. */
  replaceApiEntries(entries: readonly QuarantineEntry[]): void;
  /** Re-reads the file now (SIGHUP). Never throws: a bad file keeps the previous entries. */
  reload(trigger: string): void;
  stop(): void;
}

export interface QuarantineControlOptions {
  readonly file: string | undefined;
  /** 0: no polling (SIGHUP still re-reads). */
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Absent in a primary: the workers, which carry the traffic, report the quarantine's metrics. */
  readonly metrics?: Metrics | undefined;
  /** Where open connections are closed; undefined in a primary, which carries no traffic. */
  readonly pipeline?: () => Pipeline | undefined;
  /** Called after an API change (the primary tells its workers). */
  readonly onApiChange?: (entries: QuarantineEntry[]) => void;
}

/**
 * Builds the control and reads the file once. Sync; throws `SidecarError` ERR_CONFIG_INVALID
 * (reason `quarantine.file`) when the file cannot be read or holds a bad line at start: a
 * quarantine that silently failed to load would let the devices it names in.
 */
export function createQuarantineControl(options: QuarantineControlOptions): QuarantineControl {
  const { logger, metrics: m } = options;
  const list = createQuarantine();
  const report = () => {
    m?.quarantineEntries.set({ source: 'file' }, list.list('file').length);
    m?.quarantineEntries.set({ source: 'api' }, list.list('api').length);
  };

  /** Closes the open connections of every quarantined device (after an addition). */
  function closeQuarantined(added: readonly QuarantineEntry[]): void {
    // A primary holds no connections: each worker closes its own when the entries reach it.
    if (added.length === 0 || options.pipeline === undefined) return;
    const sockets = options.pipeline()?.connectionsOf((identity) => list.has(identity)) ?? [];
    for (const s of sockets) s.destroy();
    if (sockets.length > 0) m?.connectionsClosed.inc({ reason: 'quarantined' }, sockets.length);
    logger.warn({ event: 'quarantine_added', entries: added, connectionsClosed: sockets.length }, 'devices quarantined; their open connections are closed');
  }

  // The last content acted on (or the last read error): a broken file is reported once, not every tick.
  let seen: string | undefined;
  function readFile(trigger: string): void {
    const file = options.file;
    if (file === undefined) return;
    let entries: QuarantineEntry[];
    try {
      const read = readQuarantineFile(file, seen);
      if (read === undefined) return; // unchanged
      seen = read.text;
      entries = read.entries;
    } catch (cause) {
      const message = (cause as Error).message;
      if (seen === `error:${message}`) return;
      seen = `error:${message}`;
      m?.quarantineLoads.inc({ result: 'failure' });
      logger.error({ event: 'quarantine_loaded', result: 'failure', trigger, error: message }, 'quarantine file not loaded; keeping the previous entries');
      return;
    }
    const added = list.replace('file', entries);
    report();
    m?.quarantineLoads.inc({ result: 'success' });
    logger.info({ event: 'quarantine_loaded', trigger, entries: entries.length }, 'quarantine file loaded');
    closeQuarantined(added);
  }

  if (options.file !== undefined) {
    const read = readQuarantineFile(options.file, undefined)!;
    seen = read.text;
    list.replace('file', read.entries);
  }
  report();
  const timer = options.file !== undefined && options.intervalMs > 0 ? setInterval(() => readFile('poll'), options.intervalMs).unref() : undefined;

  function change(kind: string, value: string, add: boolean): { entry: QuarantineEntry; changed: boolean } | { error: string } {
    const entry = parseQuarantineEntry(kind, value);
    if ('error' in entry) return entry;
    const changed = add ? list.add(entry) : list.remove(entry);
    report();
    if (changed) {
      logger.warn({ event: add ? 'quarantine_api_add' : 'quarantine_api_remove', entry }, add ? 'quarantine entry added through the admin API' : 'quarantine entry removed through the admin API');
      options.onApiChange?.(list.list('api'));
      if (add) closeQuarantined([entry]);
    }
    return { entry, changed };
  }

  return {
    lookup: list,
    list: () => ({ file: list.list('file'), api: list.list('api') }),
    add: (kind, value) => change(kind, value, true),
    remove: (kind, value) => change(kind, value, false),
    replaceApiEntries(entries) {
      const added = list.replace('api', entries);
      report();
      closeQuarantined(added);
    },
    reload: (trigger) => readFile(trigger),
    stop: () => clearInterval(timer),
  };
}

/**
 * The SHA-256 of the admin token in `admin.tokenFile` (trimmed), or undefined without one. Read
 * once at start (a new token needs a restart). Sync; throws `SidecarError` ERR_CONFIG_INVALID
 * (reason `admin.tokenFile`) when the file cannot be read or holds fewer than 32 characters.
 */
export function readAdminToken(file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (cause) {
    throw new SidecarError('ERR_CONFIG_INVALID', 'admin.tokenFile', `admin.tokenFile ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
  if (token.length < 32) throw new SidecarError('ERR_CONFIG_INVALID', 'admin.tokenFile', `admin.tokenFile ${file} must hold at least 32 characters of secret`);
  return tokenDigest(token);
}

/**
 * Reads and parses a quarantine file (start, polls and `check-config`); `undefined` when its text
 * equals `unless` (nothing to do). Sync; throws `SidecarError` ERR_CONFIG_INVALID (reason
 * `quarantine.file`) naming the file and every bad line.
 */
export function readQuarantineFile(file: string, unless: string | undefined): { text: string; entries: QuarantineEntry[] } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SidecarError('ERR_CONFIG_INVALID', 'quarantine.file', `quarantine.file ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
  if (text === unless) return undefined;
  const parsed = parseQuarantineFile(text);
  if ('errors' in parsed) throw new SidecarError('ERR_CONFIG_INVALID', 'quarantine.file', `quarantine.file ${file}: ${parsed.errors.join('; ')}`);
  return { text, entries: parsed.entries };
}
