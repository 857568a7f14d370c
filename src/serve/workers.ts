/**
 * `workers: N` with node:cluster. The primary owns the admin listener (metrics aggregated from
 * every worker; readiness = every worker listening, nobody draining, and each worker's own checks,
 * such as its revocation sources, holding), hands every worker the same session-ticket keys (so
 * resumption works whichever worker a connection lands on) and relays path hints between them (so
 * a worker can rebuild the path of a session resumed from another worker's handshake, see
 * path-hints.ts), fans SIGHUP and SIGTERM out to the workers, and replaces a worker that dies
 * unexpectedly. Workers run the ordinary sidecar without an admin listener.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { AggregatorRegistry } from 'prom-client';
import type { ReadinessCheck, TopDevicesOrder } from '../admin/index.js';
import type { SidecarConfig } from '../config/index.js';
import { handleSignals } from '../lifecycle.js';
import { createLogger } from '../logging.js';
import { mergeTopDevices, type QuarantineEntry, type TopDevice } from '../policy/index.js';
import { listenAdmin } from './listen.js';
import { createQuarantineControl, readAdminToken } from './quarantine.js';
import { startSidecar } from './start-sidecar.js';

/** A path hint on the wire: a leaf's fingerprint and the base64 DER of its client-sent intermediates. */
type PathHintMessage = { type: 'path-hint'; leaf: string; ders: string[] };
/** The primary's `/debug/top-devices` asks every worker; each answers with its own rows (null: nothing tracked). */
type TopDevicesAsk = { type: 'top-devices'; id: number; n: number; by: TopDevicesOrder };
type TopDevicesAnswer = { type: 'top-devices'; id: number; devices: TopDevice[] | null };
/** The quarantine's API entries, which the primary holds (they outlive any one worker). */
type QuarantineMessage = { type: 'quarantine'; entries: QuarantineEntry[] };
type ToWorker = { type: 'init'; ticketKeys: string; quarantine: QuarantineMessage['entries'] } | { type: 'reload' } | { type: 'shutdown' } | PathHintMessage | QuarantineMessage | TopDevicesAsk;
/** A worker's readiness checks, sent when listening and whenever one changes. */
type ReadinessMessage = { type: 'readiness'; checks: Record<string, boolean>; degraded: Record<string, string> };
type ToPrimary = { type: 'hello' } | { type: 'listening' } | { type: 'draining' } | PathHintMessage | ReadinessMessage | TopDevicesAnswer;

/** How long the primary waits for the workers' top devices; a worker slower than this is left out. */
const TOP_DEVICES_WAIT_MS = 1_000;
/**
 * Each worker is asked for more rows than shown, so a device spread over workers is less likely
 * to miss a worker's share by ranking just below the cut there.
 */
const TOP_DEVICES_OVERSAMPLE = 4;

/** How often a worker re-evaluates its readiness checks (it reports only changes). */
const READINESS_POLL_MS = 1_000;

/** Runs this process as one of `workerCount` cluster workers: the sidecar, told by the primary. Resolves with the exit code once drained. */
export async function runWorker(config: SidecarConfig, workerCount: number): Promise<number> {
  // Quarantine entries from the primary, kept from the init on: one sent while the sidecar is
  // still starting (loading CRLs can take seconds) must not be lost, or this worker would serve a
  // device every other worker refuses.
  let quarantine: QuarantineEntry[] = [];
  let started: { replaceQuarantineApiEntries(entries: readonly QuarantineEntry[]): void } | undefined;
  const onQuarantine = (m: ToWorker) => {
    if (m.type !== 'quarantine') return;
    quarantine = m.entries;
    started?.replaceQuarantineApiEntries(quarantine);
  };
  const init = await new Promise<Extract<ToWorker, { type: 'init' }>>((resolve) => {
    const onMessage = (m: ToWorker) => {
      if (m.type !== 'init') return;
      process.off('message', onMessage);
      quarantine = m.quarantine;
      process.on('message', onQuarantine);
      resolve(m);
    };
    process.on('message', onMessage);
    // Ask only once listening: a message sent before a listener exists is dropped.
    process.send?.({ type: 'hello' } satisfies ToPrimary);
  });
  const sidecar = await startSidecar(config, {
    ticketKeys: Buffer.from(init.ticketKeys, 'base64'),
    admin: false,
    workerCount,
    publishPathHint: (leaf, ders) => process.send?.({ type: 'path-hint', leaf, ders: ders.map((d) => d.toString('base64')) } satisfies ToPrimary),
  });
  started = sidecar;
  sidecar.replaceQuarantineApiEntries(quarantine);
  AggregatorRegistry.setRegistries([sidecar.metrics.registry]);
  // Constructing one is what installs prom-client's worker-side listener for the primary's requests.
  new AggregatorRegistry();
  const send = (m: ToPrimary) => process.send?.(m);
  let reported = '';
  const reportReadiness = () => {
    const checks = Object.fromEntries(Object.entries(sidecar.readiness).map(([name, check]) => [name, holds(check)]));
    const degraded = sidecar.degraded();
    const text = JSON.stringify([checks, degraded]);
    if (text !== reported) send({ type: 'readiness', checks, degraded });
    reported = text;
  };
  reportReadiness(); // before 'listening': the primary never counts a worker it has no report of
  setInterval(reportReadiness, READINESS_POLL_MS).unref();
  send({ type: 'listening' });
  // The primary coordinates shutdown; a terminal's Ctrl-C reaches the whole process group, so
  // the worker must not die on its own signal before the primary asks it to drain.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  await new Promise<void>((resolve) => {
    const stop = () => {
      send({ type: 'draining' });
      void sidecar.close().then(resolve);
    };
    process.on('message', (m: ToWorker) => {
      if (m.type === 'reload') sidecar.reload('SIGHUP');
      if (m.type === 'shutdown') stop();
      if (m.type === 'path-hint') sidecar.receivePathHint(m.leaf, m.ders.map((d) => Buffer.from(d, 'base64')));
      if (m.type === 'top-devices') send({ type: 'top-devices', id: m.id, devices: sidecar.topDevices(m.n, m.by) ?? null });
    });
    process.once('disconnect', stop); // the primary is gone: drain and leave
  });
  return 0;
}

/** Runs this process as the cluster primary of `n` workers. Resolves with the exit code once they stopped. */
export async function runPrimary(config: SidecarConfig, n: number): Promise<number> {
  const logger = createLogger(config.log.level);
  const ticketKeys = randomBytes(48).toString('base64');
  // The admin API's quarantine lives here, so its entries survive a worker's restart; the file is
  // read here too (for listing) and by every worker (for its traffic).
  const everyWorker = (m: ToWorker) => {
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(m);
  };
  const tokenSha256 = config.admin.enabled ? readAdminToken(config.admin.tokenFile) : undefined;
  const quarantine = createQuarantineControl({
    file: config.quarantine.file,
    intervalMs: config.reload.intervalSeconds * 1000,
    logger,
    onApiChange: (entries) => everyWorker({ type: 'quarantine', entries }),
  });
  const listening = new Set<Worker>();
  let draining = false;
  // Each worker's last readiness report. The primary's /readyz holds a check per name any worker
  // reported (revocation sources, …), true only while every listening worker reports it true.
  const reports = new Map<Worker, Omit<ReadinessMessage, 'type'>>();
  const readiness: Record<string, ReadinessCheck> = { workersListening: () => listening.size === n, notDraining: () => !draining };
  const onReadiness = (worker: Worker, { checks, degraded }: Omit<ReadinessMessage, 'type'>) => {
    reports.set(worker, { checks, degraded });
    for (const name of Object.keys(checks)) {
      readiness[name] ??= () => listening.size > 0 && [...listening].every((w) => reports.get(w)?.checks[name] === true);
    }
  };

  // Outstanding /debug/top-devices asks: each waits for every listening worker, or the deadline.
  let asks = 0;
  const answers = new Map<number, (devices: TopDevice[] | null) => void>();
  const topDevices = async (n: number, by: TopDevicesOrder): Promise<TopDevice[] | undefined> => {
    const workers = [...listening];
    const rows = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<TopDevice[] | null>((resolve) => {
            // A worker that died is still listed until its exit; its channel is already closed.
            if (!worker.isConnected()) return resolve([]);
            const id = ++asks;
            const timer = setTimeout(() => (answers.delete(id), resolve([])), TOP_DEVICES_WAIT_MS);
            answers.set(id, (devices) => (clearTimeout(timer), answers.delete(id), resolve(devices)));
            worker.send({ type: 'top-devices', id, n: Math.min(1_000, n * TOP_DEVICES_OVERSAMPLE), by } satisfies ToWorker, (err) => err && answers.get(id)?.([]));
          }),
      ),
    );
    // Every worker runs the same config: if one tracks nothing, none does.
    if (rows.length === 0 || rows.some((r) => r === null)) return undefined;
    return mergeTopDevices(rows as TopDevice[][], n, by);
  };

  const fork = () => {
    const worker = cluster.fork();
    // A send to a worker whose channel just closed emits 'error' on it; unheard, it would throw
    // in the primary and take every worker down. The exit handler below deals with the worker.
    worker.on('error', (err: Error) => logger.warn({ event: 'worker_ipc_error', pid: worker.process.pid, error: err.message }, 'message to a worker not delivered'));
    worker.on('message', (m: ToPrimary) => {
      if (m.type === 'top-devices') answers.get(m.id)?.(m.devices);
      if (m.type === 'hello') worker.send({ type: 'init', ticketKeys, quarantine: quarantine.list().api } satisfies ToWorker);
      if (m.type === 'listening') listening.add(worker);
      if (m.type === 'draining') listening.delete(worker);
      if (m.type === 'readiness') onReadiness(worker, m);
      if (m.type === 'path-hint') {
        for (const other of Object.values(cluster.workers ?? {})) if (other && other !== worker && other.isConnected()) other.send(m satisfies ToWorker);
      }
    });
    worker.on('exit', (code, signal) => {
      listening.delete(worker);
      reports.delete(worker);
      if (draining) return;
      logger.error({ event: 'worker_exit', pid: worker.process.pid, code, signal }, 'worker exited unexpectedly; starting a new one');
      fork();
    });
  };
  for (let i = 0; i < n; i++) fork();

  const aggregator = new AggregatorRegistry();
  const admin = config.admin.enabled
    ? await listenAdmin({
        host: config.admin.host,
        port: config.admin.port,
        metrics: { contentType: aggregator.contentType, collect: () => aggregator.clusterMetrics() },
        readiness,
        quarantine,
        tokenSha256,
        // A note any listening worker reports (the first one's wording).
        degraded: () => Object.assign({}, ...[...listening].reverse().map((w) => reports.get(w)?.degraded ?? {})) as Record<string, string>,
        topDevices,
      })
    : undefined;
  logger.info({ event: 'primary', workers: n, admin: admin?.url }, `started ${n} workers`);

  await handleSignals(
    {
      reload: () => {
        quarantine.reload('SIGHUP');
        everyWorker({ type: 'reload' });
      },
      close: async () => {
        draining = true;
        everyWorker({ type: 'shutdown' });
        const deadline = Date.now() + config.shutdown.timeoutSeconds * 1000 + 5_000;
        while (Object.values(cluster.workers ?? {}).some((w) => w && !w.isDead()) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        for (const w of Object.values(cluster.workers ?? {})) if (w && !w.isDead()) w.kill('SIGKILL');
        quarantine.stop();
        await admin?.close();
      },
    },
    (signal) => logger.info({ event: 'signal', signal }, `received ${signal}; forwarding to ${n} workers`),
  );
  return 0;
}

/** A check that throws does not hold (and must not take the worker down). */
function holds(check: ReadinessCheck): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}
