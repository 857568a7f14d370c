/**
 * `upstream.ca`: the CA bundle the sidecar verifies an HTTPS upstream with. One reader, so `serve`
 * and `check-config` refuse an unreadable file the same way (ERR_TLS_MATERIAL, exit status 2).
 */
import { readFileSync } from 'node:fs';
import { SidecarError } from '../errors.js';

/** Reads the file as PEM text. Sync; throws SidecarError ERR_TLS_MATERIAL (fault `upstream.ca`). */
export function readUpstreamCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new SidecarError('ERR_TLS_MATERIAL', 'upstream.ca', `upstream.ca ${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
}
