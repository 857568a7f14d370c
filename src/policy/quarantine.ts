/**
 * Quarantine: devices refused everywhere without revoking their certificates, while an operator
 * investigates. Entries name a device id, a certificate fingerprint or a serial; they come from a
 * file (polled) and from the admin API, kept apart so that a new file never drops an API entry
 * and an API removal never un-quarantines a device the file names.
 */
import type { CertIdentity } from '../identity/index.js';

export type QuarantineKind = 'device' | 'fingerprint' | 'serial';

/** One entry; `value` in canonical form (fingerprint lower-case hex, serial upper-case hex without leading zeros). */
export interface QuarantineEntry {
  readonly kind: QuarantineKind;
  readonly value: string;
}

export type QuarantineSource = 'file' | 'api';

/** The deny-list a worker consults per request, and where changes are made. */
export interface Quarantine {
  /** True when any entry names this identity. Sync; no allocation while the list is empty. */
  has(identity: CertIdentity): boolean;
  /** Replaces one source's entries; returns the entries that were not in the list before (to close their connections). */
  replace(source: QuarantineSource, entries: readonly QuarantineEntry[]): QuarantineEntry[];
  /** Adds one API entry; false when the API list already held it. */
  add(entry: QuarantineEntry): boolean;
  /** Removes one API entry; false when the API list did not hold it (file entries are never removed here). */
  remove(entry: QuarantineEntry): boolean;
  /** Each source's entries, in the order they were added. */
  list(source: QuarantineSource): QuarantineEntry[];
}

const keyOf = (e: QuarantineEntry) => `${e.kind}:${e.value}`;

/** An empty quarantine. */
export function createQuarantine(): Quarantine {
  const sources: Record<QuarantineSource, Map<string, QuarantineEntry>> = { file: new Map(), api: new Map() };
  let all = new Set<string>();
  const rebuild = () => {
    all = new Set([...sources.file.keys(), ...sources.api.keys()]);
  };
  return {
    has(identity) {
      if (all.size === 0) return false;
      return all.has(`device:${identity.deviceId}`) || all.has(`fingerprint:${identity.fingerprintSha256}`) || all.has(`serial:${canonicalSerial(identity.serialHex)}`);
    },
    replace(source, entries) {
      const next = new Map(entries.map((e) => [keyOf(e), e]));
      const added = [...next].filter(([k]) => !all.has(k)).map(([, e]) => e);
      sources[source] = next;
      rebuild();
      return added;
    },
    add(entry) {
      const key = keyOf(entry);
      if (sources.api.has(key)) return false;
      sources.api.set(key, entry);
      all.add(key);
      return true;
    },
    remove(entry) {
      const removed = sources.api.delete(keyOf(entry));
      if (removed) rebuild();
      return removed;
    },
    list: (source) => [...sources[source].values()],
  };
}

const HEX = /^[0-9a-f]+$/i;

/** An entry from its kind and text, canonicalised; or why it is not one. Pure. */
export function parseQuarantineEntry(kind: string, text: string): QuarantineEntry | { error: string } {
  const value = text.trim();
  switch (kind) {
    case 'device':
      if (value === '' || /[\x00-\x1f\x7f]/.test(value)) return { error: 'a device id must be non-empty text without control characters' };
      return { kind, value };
    case 'fingerprint': {
      const hex = value.replace(/:/g, '').toLowerCase();
      if (hex.length !== 64 || !HEX.test(hex)) return { error: 'a fingerprint must be the SHA-256 of the certificate: 64 hex digits (colons allowed)' };
      return { kind, value: hex };
    }
    case 'serial': {
      const hex = value.replace(/:/g, '');
      if (hex === '' || hex.length > 42 || !HEX.test(hex)) return { error: 'a serial must be hex digits (colons allowed)' };
      return { kind, value: canonicalSerial(hex) };
    }
    default:
      return { error: `unknown kind "${kind}" (device, fingerprint or serial)` };
  }
}

/**
 * Reads a quarantine file: one `kind:value` entry per line (`device:kiosk-17`,
 * `fingerprint:ab12…`, `serial:0A1B…`), blank lines and `#` comments ignored. All or nothing:
 * any bad line refuses the whole file, with every bad line named, so a typo never silently
 * lifts a quarantine. Pure.
 */
export function parseQuarantineFile(text: string): { entries: QuarantineEntry[] } | { errors: string[] } {
  const entries: QuarantineEntry[] = [];
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const entry = colon === -1 ? { error: 'expected kind:value' } : parseQuarantineEntry(line.slice(0, colon).trim(), line.slice(colon + 1));
    if ('error' in entry) errors.push(`line ${i + 1}: ${entry.error}`);
    else entries.push(entry);
  });
  return errors.length > 0 ? { errors } : { entries };
}

/** Upper-case hex without leading zeros (OpenSSL and other tools differ on padding). */
function canonicalSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}
