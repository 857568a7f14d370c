/**
 * Path hints across workers. A resumed TLS session carries only the leaf, so a worker that never
 * saw the device's full handshake cannot rebuild a path through an intermediate the client sent
 * (not in the bundle), and with shared ticket keys a session resumes on any worker. Each worker
 * therefore shares, once per new device, the intermediates of its verified path, and the others
 * remember them as candidates. A hint is never trusted: the path builder checks every signature
 * and validity against the worker's own trust index, as for certificates a client sends.
 */
import { X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PathHints } from '../verify/index.js';

/** The store of one process, fed by its own verifier and by the other workers. */
export interface PathHintStore extends PathHints {
  /** Takes a hint from another worker (DERs). Sync; ignores what does not parse. Never throws. */
  receive(leafFingerprint: string, ders: readonly Buffer[]): void;
}

/** Devices remembered; beyond it the least recently used is forgotten (it resumes once more with a full handshake). */
const MAX_DEVICES = 20_000;
/** Distinct intermediates kept as objects: devices share a handful. */
const MAX_CERTIFICATES = 1_000;

/** Creates the store; `publish` sends a hint to the other workers. Sync; never throws. */
export function createPathHintStore(publish: (leafFingerprint: string, ders: readonly Buffer[]) => void): PathHintStore {
  const byLeaf = new LRUCache<string, readonly X509Certificate[]>({ max: MAX_DEVICES });
  const byDer = new LRUCache<string, X509Certificate>({ max: MAX_CERTIFICATES });
  const parse = (der: Buffer): X509Certificate | undefined => {
    const key = der.toString('base64');
    let cert = byDer.get(key);
    if (cert === undefined) {
      try {
        cert = new X509Certificate(der);
      } catch {
        return undefined;
      }
      byDer.set(key, cert);
    }
    return cert;
  };
  return {
    recall: (leafFingerprint) => byLeaf.get(leafFingerprint),
    share(leafFingerprint, certificates) {
      if (certificates.length === 0) return;
      publish(leafFingerprint, certificates.map((c) => c.raw));
    },
    receive(leafFingerprint, ders) {
      const certs = ders.slice(0, 8).flatMap((d) => parse(d) ?? []);
      if (certs.length > 0) byLeaf.set(leafFingerprint, certs);
    },
  };
}
