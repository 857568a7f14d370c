/**
 * The composition root of `mtls-sidecar ca serve`: load the CA's key material and store, build
 * the service, the CRL publisher and the OCSP responder, and start three listeners: enrollment
 * (TLS, client certificate optional), admin (loopback by default, always authenticated) and
 * publishing (plain HTTP: CRL, OCSP, pins). The proxy never imports this: it never holds a CA key.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CaConfig } from '../config/index.js';
import { SidecarError } from '../errors.js';
import { createLogger, type Logger } from '../logging.js';
import { createCaMetrics, type CaMetrics } from '../metrics.js';
import { loadSigningIdentity, type SigningIdentity } from '../pki/index.js';
import { createCrlPublisher } from './crl-publisher.js';
import { createRevocationFeed } from './revocation-feed.js';
import { createEnrollService, type EnrollService } from './enroll-service.js';
import { createAdminApi } from './http/admin-api.js';
import { createEnrollApi } from './http/enroll-api.js';
import { startListener, type Listener } from './http/listen.js';
import { createPublishApi } from './http/publish-api.js';
import { createRateLimiter } from './http/rate-limit.js';
import { createRouteObserver } from './http/route-observer.js';
import { createOcspResponder } from './ocsp-responder.js';
import { createPinSetPublisher } from './pin-publisher.js';
import { createRequestSchemas } from './requests.js';
import { openSqliteStore } from './store/index.js';

/** A running CA. */
export interface RunningCa {
  readonly enrollUrl: string;
  readonly adminUrl: string;
  readonly publishUrl: string;
  readonly metrics: CaMetrics;
  readonly service: EnrollService;
  /** Stops the listeners (in-flight requests finish), the CRL timer, and closes the store. */
  close(): Promise<void>;
}

export interface RunCaOptions {
  readonly logger?: Logger;
  /** Test hook: the clock of codes, certificates, the CRL and OCSP. */
  readonly now?: () => Date;
}

/** Starts the CA. Async; rejects with a SidecarError naming the file or port at fault; starts nothing on failure. */
export async function runCa(config: CaConfig, options: RunCaOptions = {}): Promise<RunningCa> {
  // Synchronous: its issuance and revocation lines are audit records (see LoggerOptions.sync).
  const logger = options.logger ?? createLogger(config.log.level, { sync: true });
  const now = options.now ?? (() => new Date());
  const ca = await loadIdentity('ca', config.ca.cert, config.ca.key);
  const ocspSigner = await loadIdentity('publish.ocsp', config.publish.ocsp.signerCert, config.publish.ocsp.signerKey);
  const chainPem = [ca.pem, ...config.ca.chain.map((f) => readText(f, 'ca.chain'))].join('');
  const pepper = readSecret(config.enroll.codes.pepperFile, 'enroll.codes.pepperFile', 32);
  const token = config.admin.tokenFile ? readSecret(config.admin.tokenFile, 'admin.tokenFile', 32).toString('utf8').trim() : undefined;
  const pins = config.pins ? createPinSetPublisher(config.pins, now) : undefined;
  if (pins) await pins.current().catch((cause: Error) => fail('pins.signingKey', `pins: cannot sign the pin set: ${cause.message}`, cause));

  const metrics = createCaMetrics();
  const store = openSqliteStore(config.store.path);
  const started: Listener[] = [];
  let closeFeed = (): void => undefined;
  try {
    const feed = createRevocationFeed({
      heartbeatMs: config.publish.feed.heartbeatSeconds * 1000,
      maxSubscribers: config.publish.feed.maxSubscribers,
      maxSubscribersPerAddress: config.publish.feed.maxSubscribersPerAddress,
      maxBufferedBytes: config.publish.feed.maxBufferedBytes,
      onDropped: (why) => metrics.feedDropped.inc({ reason: why }),
      onSize: (n) => metrics.feedSubscribers.set(n),
    });
    closeFeed = () => feed.close();
    const crl = createCrlPublisher({
      issuer: ca,
      listRevoked: async (at) => {
        const revoked = await store.listRevoked(at);
        metrics.crlEntries.set(revoked.length);
        return revoked;
      },
      nextCrlNumber: () => store.nextCrlNumber(),
      validitySeconds: config.publish.crlValiditySeconds,
      now,
      onError: (err) => {
        metrics.crlGenerations.inc({ result: 'failure' });
        logger.error({ err: (err as Error).message }, 'CRL regeneration failed; the previous CRL stays published');
      },
      onPublished: (published) => feed.publish(published),
    });
    const crlNow = async () => {
      const current = await crl.current();
      metrics.crlNextUpdate.set(current.nextUpdate.getTime() / 1000);
      return current;
    };
    await crlNow(); // the first CRL exists before any listener answers
    crl.start();

    const service = createEnrollService({
      store,
      issuer: { ca, issuance: config.issuance, publishBaseUrl: config.publish.baseUrl },
      chainPem,
      pepper,
      codes: config.enroll.codes,
      now,
      onRevoked: () => {
        crl.regenerate().then(() => metrics.crlGenerations.inc({ result: 'success' }), () => undefined);
      },
      onIssued: (record, keyType) => {
        metrics.certificatesIssued.inc({ kind: record.kind, key_type: keyType });
        logger.info(
          {
            event: 'certificate_issued',
            kind: record.kind,
            deviceId: record.deviceId,
            serial: record.serialHex,
            fingerprint: record.fingerprintSha256,
            notAfter: record.notAfter.toISOString(),
            supersedes: record.supersedes ?? undefined,
            keyType,
          },
          'certificate issued',
        );
      },
    });
    const ocsp = createOcspResponder({
      issuer: ca.certificate,
      signer: ocspSigner,
      lookup: async (serial) => {
        const status = await service.status(serial);
        metrics.ocspResponses.inc({ status: status.status });
        return status;
      },
      onError: (err) => {
        metrics.ocspResponses.inc({ status: 'internal' });
        logger.error({ err: (err as Error).message }, 'OCSP responder failed; answered internalError');
      },
      validitySeconds: config.publish.ocsp.validitySeconds,
      now,
    });
    const requests = createRequestSchemas({ deviceIdPattern: config.issuance.deviceIdPattern, maxCodeTtlSeconds: config.enroll.codes.ttlSeconds });
    const limiter = createRateLimiter(config.enroll.rateLimit);
    const enrollTls = {
      certPem: readText(config.enroll.tls.cert, 'enroll.tls.cert'),
      keyPem: readText(config.enroll.tls.key, 'enroll.tls.key'),
      minVersion: config.enroll.tls.minVersion,
      clientCaPems: [chainPem],
    };
    started.push(
      await startListener('enroll', config.enroll.listen, enrollTls, createEnrollApi({
        service,
        requests,
        limiter,
        maxBodyBytes: config.enroll.maxBodyBytes,
        observe: createRouteObserver('enroll', metrics, logger),
        ...(pins ? { pins } : {}),
      }), config.enroll.requestTimeoutMs),
    );
    const adminTls = config.admin.tls && {
      certPem: readText(config.admin.tls.cert, 'admin.tls.cert'),
      keyPem: readText(config.admin.tls.key, 'admin.tls.key'),
      minVersion: config.admin.tls.minVersion,
      ...(config.admin.clientCa ? { clientCaPems: config.admin.clientCa.map((f) => readText(f, 'admin.clientCa')) } : {}),
    };
    started.push(
      await startListener('admin', config.admin.listen, adminTls, createAdminApi({
        service,
        requests,
        ...(token ? { tokenSha256: createHash('sha256').update(token).digest() } : {}),
        acceptClientCert: config.admin.clientCa !== undefined,
        failedAuthLimiter: createRateLimiter({ perMinute: 10, burst: 10, trackedAddresses: 10_000 }),
        maxBodyBytes: 16_384,
        observe: createRouteObserver('admin', metrics, logger),
        metrics: { contentType: metrics.registry.contentType, collect: () => metrics.registry.metrics() },
        onCodeCreated: () => metrics.codesCreated.inc(),
        onRevoked: (reason, serials) => {
          metrics.revocations.inc({ reason }, serials.length);
          logger.info({ event: 'certificates_revoked', reason, serials, count: serials.length }, 'certificates revoked');
        },
      })),
    );
    started.push(
      await startListener('publish', config.publish.listen, undefined, createPublishApi({
        crl: crlNow,
        ocsp: (der) => ocsp.respond(der),
        ...(pins ? { pins } : {}),
        observe: createRouteObserver('publish', metrics, logger),
        now,
        feed,
      })),
    );
    const [enroll, admin, publish] = started as [Listener, Listener, Listener];
    logger.info({ enroll: enroll.url, admin: admin.url, publish: publish.url }, 'device CA listening');
    return {
      enrollUrl: enroll.url,
      adminUrl: admin.url,
      publishUrl: publish.url,
      metrics,
      service,
      async close() {
        crl.stop();
        feed.close(); // its streams never end by themselves: the listener could not finish draining
        await Promise.all(started.map((l) => l.close()));
        await store.close();
      },
    };
  } catch (err) {
    closeFeed();
    await Promise.all(started.map((l) => l.close()));
    await store.close();
    throw err;
  }
}

async function loadIdentity(field: string, certFile: string, keyFile: string): Promise<SigningIdentity> {
  const cert = readText(certFile, `${field}.cert`);
  const key = readText(keyFile, `${field}.key`);
  try {
    return await loadSigningIdentity(cert, key);
  } catch (cause) {
    return fail(field, `${field}: ${certFile} and ${keyFile} are not a usable certificate and key: ${(cause as Error).message}`, cause);
  }
}

function readText(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    return fail(field, `${field}: cannot read ${file}: ${(cause as Error).message}`, cause);
  }
}

function readSecret(file: string, field: string, minBytes: number): Buffer {
  const bytes = Buffer.from(readText(file, field).trim(), 'utf8');
  if (bytes.length < minBytes) fail(field, `${field}: ${file} must hold at least ${minBytes} characters of secret (run \`mtls-sidecar ca init\` to make one)`);
  return bytes;
}

function fail(fault: string, message: string, cause?: unknown): never {
  throw new SidecarError('ERR_PKI', fault, message, cause === undefined ? undefined : { cause });
}
