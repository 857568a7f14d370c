/**
 * The data listener's TLS material over time: the material loaded at start, reloaded
 * all-or-nothing through the trust owner, its expiry gauges, and whether it can serve now.
 */
import type { X509Certificate } from 'node:crypto';
import type { Server } from 'node:https';
import type { Logger } from '../logging.js';
import type { Metrics } from '../metrics.js';
import { formatRfc4514 } from '../pki/index.js';
import { createMaterialReloader, secureContextOptions, type DataListenerOptions, type TlsMaterial, type TlsMaterialPaths } from '../tls/index.js';
import type { TrustIndex } from '../verify/index.js';
import type { TrustOwner } from './trust-owner.js';

export interface ServingMaterial {
  /** The material the listener serves now. */
  current(): TlsMaterial;
  /**
   * Whether the data path can accept anyone with the current material: the serving certificate is
   * within its validity window and the bundle holds a root that is. Loading refuses an expired
   * serving certificate, but nothing reloads one that expires while the files stay unchanged, and
   * every path ends at a root checked for validity now. Sync; never throws.
   */
  canServe(nowMs?: number): boolean;
  /** Re-reads the files now (SIGHUP). Never throws: a failure keeps the old material. */
  reload(trigger: string): void;
  /** Stops polling the files. */
  stop(): void;
}

export interface ServingMaterialOptions {
  readonly initial: TlsMaterial;
  readonly paths: TlsMaterialPaths;
  /** 0: no polling, only `reload()`. */
  readonly pollIntervalMs: number;
  readonly server: Server;
  readonly listenerOptions: DataListenerOptions;
  readonly trust: TrustOwner;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** Starts polling the files (timer unref'd) and sets the expiry gauges. Sync; never throws. */
export function createServingMaterial(o: ServingMaterialOptions): ServingMaterial {
  let current = o.initial;
  recordExpiries(o.metrics, current);
  const reloader = createMaterialReloader({
    paths: o.paths,
    intervalMs: o.pollIntervalMs,
    apply(next) {
      // All-or-nothing: setSecureContext throws on material OpenSSL rejects, before any swap, and
      // the trust owner puts the old context back if a consumer of the new CAs refuses them.
      const previous = current;
      o.trust.replace(
        next.caCertificates,
        next.caPems,
        () => o.server.setSecureContext(secureContextOptions(next, o.listenerOptions)),
        () => o.server.setSecureContext(secureContextOptions(previous, o.listenerOptions)),
      );
      current = next;
      recordExpiries(o.metrics, next);
    },
    onOutcome(outcome) {
      o.metrics.reloads.inc({ result: outcome.result });
      if (outcome.result === 'success') {
        o.metrics.reloadLastSuccess.setToCurrentTime();
        o.logger.info({ event: 'reload', result: 'success', trigger: outcome.trigger, serverCertNotAfter: outcome.material.serverCertificate.validTo }, 'TLS material reloaded');
      } else {
        const err = outcome.error as Error & { fault?: string };
        o.logger.error({ event: 'reload', result: 'failure', trigger: outcome.trigger, fault: err.fault, error: err.message }, 'TLS material reload failed; keeping the previous material');
      }
    },
  });
  return {
    current: () => current,
    canServe: (nowMs = Date.now()) => materialCanServe(current, o.trust.current(), nowMs),
    reload: (trigger) => reloader.reload(trigger, true),
    stop: () => reloader.stop(),
  };
}

/** See {@link ServingMaterial.canServe}. Pure. */
function materialCanServe(material: TlsMaterial, trust: TrustIndex, nowMs: number): boolean {
  return validAt(material.serverCertificate, nowMs) && trust.certificates.some((ca) => trust.isAnchor(ca) && validAt(ca, nowMs));
}

function validAt(cert: X509Certificate, nowMs: number): boolean {
  return Date.parse(cert.validFrom) <= nowMs && nowMs <= Date.parse(cert.validTo);
}

/** Expiry gauges: the serving certificate and every CA of the client bundle. */
function recordExpiries(metrics: Metrics, material: TlsMaterial): void {
  metrics.serverCertExpiry.set(Date.parse(material.serverCertificate.validTo) / 1000);
  metrics.caCertExpiry.reset();
  for (const ca of material.caCertificates) metrics.caCertExpiry.set({ ca: caLabel(ca) }, Date.parse(ca.validTo) / 1000);
}

/** A CA's label value: its RFC 4514 subject (bounded: the operator's own bundle). */
function caLabel(ca: X509Certificate): string {
  try {
    return formatRfc4514(ca.subject);
  } catch {
    return ca.fingerprint256;
  }
}
