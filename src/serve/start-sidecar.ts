/**
 * The composition root: builds every module from the validated config, wires them and listens.
 * Nothing else constructs modules, so the dependency graph is visible here in one place; binding
 * (listen.ts), draining (drain.ts), the TLS material over time (serving-material.ts), trust
 * (trust-owner.ts) and revocation (enforce-revocation.ts) are each in their own file.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { AdminServer, ReadinessCheck } from '../admin/index.js';
import type { SidecarConfig } from '../config/index.js';
import { compileHeaderPlan } from '../identity/index.js';
import { createLogger, createLogLimiter } from '../logging.js';
import { createMetrics } from '../metrics.js';
import { compileAuthorizer, ROUTE_OVERRIDE_HEADERS, type TopOrder } from '../policy/index.js';
import { attachPipeline, createForwarder, createTelemetry, peerAddressOf, type Pipeline } from '../proxy/index.js';
import { createDataServer, loadTlsMaterial } from '../tls/index.js';
import { createPeerVerifier } from '../verify/index.js';
import { wireLimits } from './device-limits.js';
import { createDrain } from './drain.js';
import { createRevocationEnforcement } from './enforce-revocation.js';
import { dataListenerUrl, listen, listenAdmin } from './listen.js';
import { createPathHintStore } from './path-hints.js';
import { createProxyProtocolFront } from './proxy-protocol-front.js';
import { createQuarantineControl, readAdminToken } from './quarantine.js';
import { createServingMaterial } from './serving-material.js';
import type { RunningSidecar, StartOptions } from './running-sidecar.js';
import { closeConnectionsOfRemovedCas, createTrustOwner } from './trust-owner.js';
import { readUpstreamCa } from './upstream-ca.js';

/** Builds and starts the sidecar. Async; rejects with a SidecarError if material or a port fails. */
export async function startSidecar(config: SidecarConfig, options: StartOptions = {}): Promise<RunningSidecar> {
  const logger = options.logger ?? createLogger(config.log.level);
  const metrics = options.metrics ?? createMetrics();
  const paths = { cert: config.tls.cert, key: config.tls.key, caBundle: config.clientAuth.caBundle };
  const material = loadTlsMaterial(paths);
  const stripHeaders = [...config.identity.stripHeaders, ...(config.authorization ? ROUTE_OVERRIDE_HEADERS : [])];
  const plan = compileHeaderPlan({ ...config.identity, stripHeaders });
  const revocation = createRevocationEnforcement(config.revocation, { trustedCas: material.caCertificates, logger, metrics });
  let pipeline: Pipeline | undefined; // attached below; the trust owner only calls back on a reload
  const closeUntrusted = closeConnectionsOfRemovedCas(() => pipeline, logger, metrics);
  const trust = createTrustOwner(material.caCertificates, material.caPems, revocation ? [revocation, closeUntrusted] : [closeUntrusted]);
  const hints = options.publishPathHint ? createPathHintStore(options.publishPathHint) : undefined;
  const verifier = createPeerVerifier({
    revocation: revocation?.gate,
    hints,
    trust: trust.current,
    maxChainDepth: config.clientAuth.maxChainDepth,
    requireClientAuthEku: config.clientAuth.requireClientAuthEku,
    deviceIdRules: config.identity.deviceId,
    renderHeaders: plan.render,
  });
  // Compiled once; absent `authorization` means no rules at all (every verified request passes).
  const authorizer = config.authorization ? compileAuthorizer(config.authorization) : undefined;
  const adminToken = config.admin.enabled && options.admin !== false ? readAdminToken(config.admin.tokenFile) : undefined;
  const quarantine = createQuarantineControl({ file: config.quarantine.file, intervalMs: config.reload.intervalSeconds * 1000, logger, metrics, pipeline: () => pipeline });
  const forwarder = createForwarder({ ...config.upstream, caPem: config.upstream.ca ? readUpstreamCa(config.upstream.ca) : undefined });
  const limiter = createLogLimiter({
    ...config.log.rateLimit,
    summaryIntervalMs: config.log.rateLimit.summaryIntervalSeconds * 1000,
    logger,
    onSuppressed: (event) => metrics.logsSuppressed.inc({ event }),
  });
  const limits = wireLimits(config.limits, options.workerCount ?? 1, metrics, logger);
  // Ticket keys live as long as the process (not per secure context), so sessions survive a
  // certificate rotation; the verifier re-anchors resumed sessions against the current CA bundle.
  const listenerOptions = { ...config.tls, ...config.limits, maxConnections: limits.cap.perProcess, ticketKeys: options.ticketKeys ?? randomBytes(48) };
  const server = createDataServer(material, listenerOptions);
  const front = config.listen.proxyProtocol.enabled ? createProxyProtocolFront(server, config.listen.proxyProtocol, { logger, metrics, limiter }) : undefined;
  // What accepts TCP connections: the PROXY protocol front when enabled, else the data server itself.
  const acceptor: NetServer = front?.server ?? server;
  const clientAddressOf = front?.clientAddressOf ?? peerAddressOf;
  const serving = createServingMaterial({ initial: material, paths, pollIntervalMs: config.reload.intervalSeconds * 1000, server, listenerOptions, trust, metrics, logger });
  pipeline = attachPipeline(server, {
    verifier,
    plan,
    forwarder,
    failureMode: config.clientAuth.failureMode,
    forwardedHeaders: config.upstream.forwardedHeaders,
    preserveHost: config.upstream.preserveHost,
    logger,
    observer: createTelemetry({ metrics, logger, limiter, accessLog: config.log.accessLog, clientAddressOf }),
    clientAddressOf,
    authorizer,
    quarantine: quarantine.lookup,
    limits: limits.deviceLimits,
  });
  revocation?.enforceOn(pipeline);
  let admin: AdminServer | undefined;
  const drain = createDrain(server, front, logger, {
    stopping: () => {
      serving.stop();
      quarantine.stop();
    },
    async stopped() {
      forwarder.close();
      limiter.stop();
      void revocation?.close();
      void limits.close();
      await admin?.close();
    },
  });

  // Configured CRLs are loaded (or have failed, bounded by fetchTimeoutMs) before the first
  // client is accepted, so a restart does not answer a burst of revocation_unknown.
  await revocation?.whenReady();
  await listen(acceptor, config.listen.port, config.listen.host, 'listen');
  const readiness: Readonly<Record<string, ReadinessCheck>> = {
    certificatesLoaded: () => serving.canServe(),
    listening: () => acceptor.listening,
    notDraining: () => !drain.draining,
    ...(revocation ? { revocationSourcesLoaded: () => revocation.ready() } : {}),
  };
  const degraded = (): Record<string, string> => {
    const feed = revocation?.degraded();
    const store = limits.degraded();
    return { ...(feed === undefined ? {} : { revocationFeed: feed }), ...(store === undefined ? {} : { limitsStore: store }) };
  };
  if (config.admin.enabled && options.admin !== false) {
    const metricsSource = { contentType: metrics.registry.contentType, collect: () => metrics.registry.metrics() };
    const topDevices = async (n: number, order: TopOrder) => limits.topDevices(n, order);
    admin = await listenAdmin({ host: config.admin.host, port: config.admin.port, metrics: metricsSource, readiness, degraded, quarantine, tokenSha256: adminToken, topDevices }).catch((err: unknown) => {
      acceptor.close();
      throw err;
    });
  }
  metrics.reloadLastSuccess.setToCurrentTime();
  const url = dataListenerUrl(acceptor, config.listen.host);
  logger.info({ event: 'listening', url, admin: admin?.url, upstream: config.upstream.url, failureMode: config.clientAuth.failureMode, proxyProtocol: front !== undefined }, 'mtls-sidecar listening');

  return {
    url,
    port: (acceptor.address() as AddressInfo).port,
    adminUrl: admin?.url,
    server,
    logger,
    metrics,
    readiness,
    degraded,
    topDevices: (n, order) => limits.topDevices(n, order),
    receivePathHint: (leafFingerprint, ders) => hints?.receive(leafFingerprint, ders),
    replaceQuarantineApiEntries: (entries) => quarantine.replaceApiEntries(entries),
    reload: (trigger = 'signal') => {
      serving.reload(trigger);
      quarantine.reload(trigger);
    },
    get draining() {
      return drain.draining;
    },
    close: (graceMs = config.shutdown.timeoutSeconds * 1000) => drain.close(graceMs),
  };
}
