// The deployment examples must agree with the sidecar they deploy. Every YAML document under
// docker/kubernetes and docker/docker-compose.yml is parsed; the sidecar.yaml they mount is read
// with the project's real config loader (with the env vars the manifests set), and then: ports,
// probe paths, where each certificate file comes from (volume -> Secret/ConfigMap -> the
// cert-manager / trust-manager resource that fills it, with that key), the upstream, the shutdown
// budget, the security context, what the public Service exposes, what Prometheus scrapes, and
// that the PrometheusRule carries the alert rules verbatim and the dashboard ConfigMap the Grafana
// dashboard byte for byte. The compose PKI script is run (with the local openssl) and the sidecar
// is started on its output through the compose config.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { FILE_PATH_FIELDS, parseConfig, type SidecarConfig } from '../../src/config/index.js';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { startSidecar } from '../../src/serve/index.js';
import { call } from '../fixtures/client.js';

// YAML documents are untyped by nature; the checks below say what they expect.
type Obj = Record<string, any>;

const exec = promisify(execFile);
const repo = join(import.meta.dirname, '../..');
const dockerDir = join(repo, 'docker');
const k8sDir = join(dockerDir, 'kubernetes');
const composeFile = join(dockerDir, 'docker-compose.yml');
const alertsFile = join(dockerDir, 'observability/prometheus-alerts.yaml');
const dashboardFile = join(dockerDir, 'observability/grafana-dashboard.json');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };

// ---------------------------------------------------------------------------------------------
// Loading

interface Doc {
  readonly file: string;
  readonly doc: Obj;
}

function loadYaml(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  const out: Obj[] = [];
  for (const d of list) {
    if (d.errors.length) throw new Error(`${relative(repo, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
    const js = d.toJS() as Obj | null;
    if (js) out.push(js);
  }
  return out;
}

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

const k8sFiles = yamlFilesUnder(k8sDir);
const k8sDocs: Doc[] = k8sFiles.flatMap((file) => loadYaml(file).map((doc) => ({ file: relative(k8sDir, file), doc })));
const resources = k8sDocs.filter((d) => d.doc.kind !== 'Kustomization');

/** The first CMD / ENTRYPOINT / USER of the Dockerfile's last stage, enough for these checks. */
function readImage(): { entrypoint: string[]; cmd: string[]; uid: number; gid: number } {
  const lines = readFileSync(join(dockerDir, 'Dockerfile'), 'utf8')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .filter((l) => !/^\s*#/.test(l));
  const lastStage = lines.slice(lines.map((l) => /^\s*FROM\s/i.test(l)).lastIndexOf(true));
  const json = (kw: string) => {
    const l = lastStage.filter((x) => new RegExp(`^\\s*${kw}\\s+\\[`, 'i').test(x)).at(-1);
    return l ? (JSON.parse(l.replace(new RegExp(`^\\s*${kw}\\s+`, 'i'), '')) as string[]) : [];
  };
  const user = lastStage.filter((x) => /^\s*USER\s/i.test(x)).at(-1)?.replace(/^\s*USER\s+/i, '').trim() ?? '';
  const [uid, gid] = user.split(':');
  return { entrypoint: json('ENTRYPOINT'), cmd: json('CMD'), uid: Number(uid), gid: Number(gid ?? uid) };
}
const image = readImage();

function configPathOf(args: string[]): string | undefined {
  const i = args.indexOf('--config');
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith('--config='))?.slice('--config='.length);
}

// ---------------------------------------------------------------------------------------------
// Kubernetes helpers

function find(kind: string, name?: string, namespace?: string): Doc[] {
  return resources.filter(
    (d) => d.doc.kind === kind && (name === undefined || d.doc.metadata?.name === name) && (namespace === undefined || d.doc.metadata?.namespace === namespace),
  );
}

function labelsMatch(selector: Obj | undefined, labels: Obj | undefined): boolean {
  const wanted = Object.entries(selector ?? {});
  return wanted.length > 0 && wanted.every(([k, v]) => labels?.[k] === v);
}

const isSidecar = (c: Obj) => /(^|\/)mtls-sidecar(:|@|$)/.test(String(c.image));

function envOf(c: Obj): Record<string, string> {
  return Object.fromEntries(((c.env ?? []) as Obj[]).filter((e) => 'value' in e).map((e) => [e.name, String(e.value)]));
}

/** A container port reference (number or name) as a number. */
function portNumber(c: Obj, port: unknown): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port === 'string' && /^\d+$/.test(port)) return Number(port);
  return ((c.ports ?? []) as Obj[]).find((p) => p.name === port)?.containerPort;
}

/** Seconds a preStop hook waits: the sleep action, or exec `sleep N`. */
function preStopSeconds(c: Obj): number {
  const pre = c.lifecycle?.preStop;
  if (!pre) return 0;
  if (pre.sleep?.seconds !== undefined) return Number(pre.sleep.seconds);
  const cmd = (pre.exec?.command ?? []) as string[];
  const joined = cmd.join(' ');
  const m = /(?:^|\s|\/)sleep\s+(\d+)\b/.exec(joined);
  if (m) return Number(m[1]);
  throw new Error(`${c.name}: preStop ${JSON.stringify(pre)} is not a sleep; teach preStopSeconds how long it takes`);
}

interface MountedFile {
  readonly kind: 'Secret' | 'ConfigMap';
  readonly name: string;
  /** The key of the Secret/ConfigMap that becomes this file. */
  readonly key: string;
  readonly mode: number;
  readonly readOnly: boolean;
}

/** Which volume, and which key of it, a file path inside the container is. */
function mountedFile(pod: Obj, c: Obj, path: string): MountedFile | string {
  const mounts = (c.volumeMounts ?? []) as Obj[];
  let mount = mounts.find((m) => m.subPath && m.mountPath === path);
  let rel = mount?.subPath as string | undefined;
  if (!mount) {
    mount = mounts
      .filter((m) => !m.subPath && path.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`))
      .sort((a, b) => String(b.mountPath).length - String(a.mountPath).length)[0];
    rel = mount ? path.slice(String(mount.mountPath).replace(/\/$/, '').length + 1) : undefined;
  }
  if (!mount || rel === undefined) return `${path} is under no volumeMount of ${c.name}`;
  const volume = ((pod.volumes ?? []) as Obj[]).find((v) => v.name === mount.name);
  if (!volume) return `volumeMount ${mount.name} has no volume`;
  const source = volume.secret ? { kind: 'Secret' as const, name: volume.secret.secretName, spec: volume.secret } : volume.configMap ? { kind: 'ConfigMap' as const, name: volume.configMap.name, spec: volume.configMap } : undefined;
  if (!source) return `volume ${volume.name} is neither a Secret nor a ConfigMap`;
  const items = source.spec.items as Obj[] | undefined;
  let key = rel;
  let mode: number = source.spec.defaultMode ?? 0o644;
  if (items) {
    const item = items.find((i) => i.path === rel);
    if (!item) return `volume ${volume.name} projects no item with path ${rel} (items: ${items.map((i) => i.path).join(', ')})`;
    key = item.key;
    mode = item.mode ?? mode;
  }
  return { kind: source.kind, name: source.name, key, mode, readOnly: mount.readOnly === true };
}

interface Producer {
  readonly keys: string[];
  readonly doc: Obj;
}

/** The resource that fills a Secret or ConfigMap in `namespace`, and the keys it writes. */
function producerOf(kind: 'Secret' | 'ConfigMap', name: string, namespace: string): Producer | undefined {
  if (kind === 'Secret') {
    const cert = find('Certificate', undefined, namespace).find((d) => d.doc.spec?.secretName === name);
    if (cert) return { keys: ['tls.crt', 'tls.key', 'ca.crt'], doc: cert.doc };
    const secret = find('Secret', name, namespace)[0];
    if (secret) return { keys: Object.keys({ ...secret.doc.data, ...secret.doc.stringData }), doc: secret.doc };
    return undefined;
  }
  const cm = find('ConfigMap', name, namespace)[0];
  if (cm) return { keys: Object.keys({ ...cm.doc.data, ...cm.doc.binaryData }), doc: cm.doc };
  const bundle = find('Bundle', name)[0];
  const ns = find('Namespace', namespace)[0];
  if (bundle?.doc.spec?.target?.configMap && labelsMatch(bundle.doc.spec.target.namespaceSelector?.matchLabels, ns?.doc.metadata?.labels)) {
    return { keys: [bundle.doc.spec.target.configMap.key], doc: bundle.doc };
  }
  return undefined;
}

/** The Secret a cert-manager issuer signs with (CA issuers), following Issuer/ClusterIssuer refs. */
function issuerCaSecret(ref: Obj | undefined, namespace: string): { secret: string; namespace: string } | undefined {
  if (!ref) return undefined;
  const kind = ref.kind ?? 'Issuer';
  const issuer = kind === 'ClusterIssuer' ? find('ClusterIssuer', ref.name)[0] : find('Issuer', ref.name, namespace)[0];
  if (!issuer?.doc.spec?.ca?.secretName) return undefined;
  // A ClusterIssuer reads its CA Secret from cert-manager's cluster resource namespace.
  return { secret: issuer.doc.spec.ca.secretName, namespace: kind === 'ClusterIssuer' ? 'cert-manager' : namespace };
}

/** Every file the config names (FILE_PATH_FIELDS: tls, CA bundle, upstream CA, CRL files, ...). */
function configFiles(config: SidecarConfig): { field: string; path: string }[] {
  return FILE_PATH_FIELDS.flatMap((field) => {
    const v = field.split('.').reduce<unknown>((o, k) => (o as Obj | undefined)?.[k], config);
    const list = typeof v === 'string' ? [v] : Array.isArray(v) ? (v as string[]) : [];
    return list.map((path, i) => ({ field: Array.isArray(v) ? `${field}[${i}]` : field, path }));
  });
}

/** A copy of the config with every file path passed through `map`. */
function withFiles(config: SidecarConfig, map: (p: string) => string): SidecarConfig {
  const copy = structuredClone(config) as unknown as Obj;
  for (const field of FILE_PATH_FIELDS) {
    const keys = field.split('.');
    const lastKey = keys.pop()!;
    const holder = keys.reduce<Obj | undefined>((o, k) => o?.[k], copy);
    const v = holder?.[lastKey];
    if (typeof v === 'string') holder![lastKey] = map(v);
    else if (Array.isArray(v)) holder![lastKey] = v.map((x: string) => map(x));
  }
  return copy as SidecarConfig;
}

const loopback = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

// ---------------------------------------------------------------------------------------------
// One pod template against its config

interface PodFacts {
  readonly config: SidecarConfig;
  readonly namespace: string;
  readonly labels: Obj;
  readonly sidecar: Obj;
  readonly app: Obj;
  readonly appPort: number;
  readonly serverSecret: string;
  readonly caBundleSources: Producer[];
}

function checkDeployment(t: Test, file: string, native: boolean): PodFacts {
  const docs = k8sDocs.filter((d) => d.file === file && d.doc.kind === 'Deployment');
  t.equal(docs.length, 1, `${file} holds one Deployment`);
  const deployment = docs[0]!.doc;
  const namespace = String(deployment.metadata.namespace);
  const template = deployment.spec.template;
  const pod = template.spec as Obj;
  const labels = template.metadata.labels as Obj;
  t.ok(labelsMatch(deployment.spec.selector.matchLabels, labels), 'the Deployment selector matches its pod labels');

  const inits = (pod.initContainers ?? []) as Obj[];
  const containers = (pod.containers ?? []) as Obj[];
  const sidecar = (native ? inits : containers).find(isSidecar)!;
  t.ok(sidecar, `the sidecar is ${native ? 'an init container' : 'a container'}`);
  if (native) {
    t.equal(sidecar.restartPolicy, 'Always', 'native sidecar: restartPolicy Always on the init container');
    t.notOk(containers.some(isSidecar), 'and not also a regular container');
  } else {
    t.notOk(inits.some(isSidecar), 'classic sidecar: not an init container');
  }
  const apps = containers.filter((c) => !isSidecar(c));
  t.equal(apps.length, 1, 'one app container');
  const app = apps[0]!;

  // ---- the config: the image's CMD path -> the ConfigMap mounted there -> the real loader
  const args = (sidecar.args as string[] | undefined) ?? image.cmd;
  t.same(sidecar.command ?? image.entrypoint, image.entrypoint, 'the sidecar runs the image ENTRYPOINT');
  const configPath = configPathOf(args);
  t.equal(configPath, configPathOf(image.cmd), "the config path is the image CMD's --config");
  const cfgFile = mountedFile(pod, sidecar, configPath ?? '');
  if (typeof cfgFile === 'string') throw new Error(`${file}: config: ${cfgFile}`);
  t.equal(cfgFile.kind, 'ConfigMap', `${configPath} is mounted from a ConfigMap`);
  t.ok(cfgFile.readOnly, 'config mounted read-only');
  const cm = find('ConfigMap', cfgFile.name, namespace)[0];
  t.ok(cm, `ConfigMap ${cfgFile.name} exists in ${namespace}`);
  const text = cm?.doc.data?.[cfgFile.key] as string | undefined;
  t.type(text, 'string', `ConfigMap ${cfgFile.name} has key ${cfgFile.key}`);
  const env = envOf(sidecar);
  const config = parseConfig(text ?? '', configPath!, env);

  // ---- ports and probes
  const containerPorts = ((sidecar.ports ?? []) as Obj[]).map((p) => p.containerPort as number).sort((a, b) => a - b);
  t.same(containerPorts, [config.listen.port, config.admin.port].sort((a, b) => a - b), `container ports = listen.port ${config.listen.port} + admin.port ${config.admin.port}`);
  const probe = (name: string, p: Obj | undefined, paths: string[]) => {
    t.ok(p?.httpGet, `${name} is an httpGet probe`);
    t.ok(paths.includes(p?.httpGet?.path), `${name} path ${p?.httpGet?.path} is ${paths.join(' or ')}`);
    t.equal(portNumber(sidecar, p?.httpGet?.port), config.admin.port, `${name} on the admin port`);
  };
  probe('livenessProbe', sidecar.livenessProbe, ['/healthz']);
  probe('readinessProbe', sidecar.readinessProbe, ['/readyz']);
  if (sidecar.startupProbe) probe('startupProbe', sidecar.startupProbe, ['/healthz', '/readyz']);

  // ---- every certificate file: under a volume of the right Secret/ConfigMap, with that key
  const fileOf = (field: string, path: string) => {
    const f = mountedFile(pod, sidecar, path);
    t.type(f, 'object', `${field} ${path}: ${typeof f === 'string' ? f : `${f.kind} ${f.name} key ${f.key}`}`);
    if (typeof f === 'string') return undefined;
    t.ok(f.readOnly, `${field} mounted read-only`);
    const producer = producerOf(f.kind, f.name, namespace);
    t.ok(producer, `${f.kind} ${f.name} is produced by a resource in these manifests`);
    t.ok(producer?.keys.includes(f.key), `${f.kind} ${f.name} provides key ${f.key}`);
    return { ...f, producer };
  };
  const cert = fileOf('tls.cert', config.tls.cert);
  const key = fileOf('tls.key', config.tls.key);
  t.equal(cert?.key, 'tls.crt', 'tls.cert is the Secret key tls.crt');
  t.equal(key?.key, 'tls.key', 'tls.key is the Secret key tls.key (not swapped with the certificate)');
  t.equal(cert?.kind, 'Secret');
  t.equal(key?.name, cert?.name, 'certificate and key come from the same Secret');
  t.equal(cert?.producer?.doc.kind, 'Certificate', 'that Secret is written by a cert-manager Certificate');
  const serverCert = cert?.producer?.doc ?? {};
  t.notOk(serverCert.spec?.isCA, 'the server certificate is not a CA');
  if (serverCert.spec?.usages) t.ok(serverCert.spec.usages.includes('server auth'), 'server Certificate has usage "server auth"');
  if (key) {
    t.equal(key.mode & 0o007, 0, `the key file mode ${key.mode.toString(8)} gives nothing to others`);
    t.ok(pod.securityContext?.fsGroup !== undefined && (key.mode & 0o040) !== 0, 'the non-root sidecar reads the key through fsGroup + a group-readable mode');
  }
  const serverIssuerCa = issuerCaSecret(serverCert.spec?.issuerRef, namespace);
  const caBundleSources: Producer[] = [];
  config.clientAuth.caBundle.forEach((path, i) => {
    const f = fileOf(`clientAuth.caBundle[${i}]`, path);
    if (!f?.producer) return;
    t.not(f.name, cert?.name, 'the device CA bundle is not the server certificate Secret');
    caBundleSources.push(f.producer);
    if (f.producer.doc.kind === 'Bundle') {
      for (const s of f.producer.doc.spec.sources as Obj[]) {
        if (!s.secret) continue;
        const caCert = find('Certificate').find((d) => d.doc.spec?.secretName === s.secret.name);
        t.ok(caCert?.doc.spec?.isCA, `Bundle source Secret ${s.secret.name} is a CA certificate's`);
        t.ok(caCert && producerOf('Secret', s.secret.name, caCert.doc.metadata.namespace)?.keys.includes(s.secret.key), `and has key ${s.secret.key}`);
        t.not(s.secret.name, serverIssuerCa?.secret, 'devices are not trusted by the CA that signs the server certificate');
      }
    }
  });
  // Any other file the config names (upstream.ca, revocation CRL files, ...) must be mounted too.
  for (const { field, path } of configFiles(config)) {
    if (!/^(tls\.cert|tls\.key|clientAuth\.caBundle\[\d+\])$/.test(field)) fileOf(field, path);
  }

  // ---- the upstream is the app container, on loopback
  const upstream = new URL(config.upstream.url);
  const appEnv = envOf(app);
  const appPort = Number(appEnv.PORT ?? ((app.ports ?? []) as Obj[])[0]?.containerPort);
  t.ok(loopback.has(upstream.hostname), `upstream ${config.upstream.url} is on loopback (same pod)`);
  t.equal(Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80)), appPort, `upstream port = the app's port ${appPort}`);
  if (appEnv.HOST) t.ok(loopback.has(appEnv.HOST), `the app binds ${appEnv.HOST} only`);
  t.notOk(((sidecar.ports ?? []) as Obj[]).some((p) => p.containerPort === appPort), 'the sidecar does not claim the app port');

  // ---- shutdown budget
  const grace = Number(pod.terminationGracePeriodSeconds ?? 30);
  const timeout = config.shutdown.timeoutSeconds;
  const sidecarPre = preStopSeconds(sidecar);
  const appPre = preStopSeconds(app);
  if (native) {
    // Main containers stop first, the sidecar only after the app has exited.
    t.ok(grace > appPre + sidecarPre + timeout, `grace ${grace} > app preStop ${appPre} + sidecar preStop ${sidecarPre} + shutdown.timeoutSeconds ${timeout}`);
  } else {
    t.ok(sidecarPre > 0, 'the sidecar waits in preStop while endpoints converge');
    t.ok(grace > sidecarPre + timeout, `grace ${grace} > sidecar preStop ${sidecarPre} + shutdown.timeoutSeconds ${timeout}`);
    t.ok(appPre >= sidecarPre + timeout, `the app (preStop ${appPre}) outlives the sidecar's drain (${sidecarPre} + ${timeout})`);
    t.ok(grace > appPre, `grace ${grace} leaves the app time to stop after its preStop ${appPre}`);
  }

  // ---- hardening
  for (const c of [sidecar, app]) {
    const sc = { ...pod.securityContext, ...c.securityContext } as Obj;
    t.equal(sc.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
    t.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
    t.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation false`);
    t.ok((sc.capabilities?.drop ?? []).includes('ALL'), `${c.name}: drops ALL capabilities`);
    t.equal(sc.seccompProfile?.type, 'RuntimeDefault', `${c.name}: seccomp RuntimeDefault`);
    if (sc.runAsUser !== undefined) t.not(sc.runAsUser, 0, `${c.name}: runAsUser is not 0`);
    t.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.memory, `${c.name}: cpu/memory requests and a memory limit`);
  }
  const sidecarUser = { ...pod.securityContext, ...sidecar.securityContext }.runAsUser;
  if (sidecarUser !== undefined) t.equal(sidecarUser, image.uid, 'runAsUser = the image USER');
  t.ok(sidecar.resources?.limits?.cpu, 'sidecar has a cpu limit (workers: auto sizes from it)');
  t.equal(pod.automountServiceAccountToken, false, 'no service account token in a pod that never calls the API');
  t.equal(String(sidecar.image).split(':').at(-1), pkg.version, 'sidecar image tag = package.json version');

  const annotations = (template.metadata.annotations ?? {}) as Obj;
  if (annotations['prometheus.io/port'] !== undefined) {
    t.equal(Number(annotations['prometheus.io/port']), config.admin.port, 'prometheus.io/port = admin.port');
    t.equal(annotations['prometheus.io/path'] ?? '/metrics', '/metrics');
  }

  return { config, namespace, labels, sidecar, app, appPort, serverSecret: cert?.name ?? '', caBundleSources };
}

// ---------------------------------------------------------------------------------------------

t.test('every YAML document parses and is a Kubernetes object', async (t) => {
  t.ok(k8sFiles.length >= 8, `${k8sFiles.length} files under docker/kubernetes`);
  for (const { file, doc } of k8sDocs) {
    t.ok(doc.apiVersion && doc.kind, `${file}: ${doc.kind} has apiVersion and kind`);
    if (doc.kind !== 'Kustomization') t.ok(doc.metadata?.name, `${file}: ${doc.kind} has a name`);
  }
});

const kustomization = k8sDocs.find((d) => d.doc.kind === 'Kustomization')?.doc ?? {};
const listed = ((kustomization.resources ?? []) as string[]).map((r) => posix.normalize(r));
const variants = ['deployment.yaml', 'deployment-native-sidecar.yaml'];
const activeDeployment = variants.find((v) => listed.includes(v)) ?? 'deployment.yaml';

t.test('kustomization lists the resources', async (t) => {
  for (const r of listed) t.ok(existsSync(join(k8sDir, r)), `${r} exists`);
  t.equal(variants.filter((v) => listed.includes(v)).length, 1, 'exactly one Deployment variant is listed');
  const optional = new Set([...variants, 'test-device.yaml', 'kustomization.yaml']);
  for (const f of k8sFiles.map((f) => relative(k8sDir, f))) {
    if (!optional.has(f)) t.ok(listed.includes(f), `${f} is listed`);
  }
  t.notOk(kustomization.namespace, 'no global namespace (it would move the CA Certificates out of cert-manager)');
  const img = ((kustomization.images ?? []) as Obj[]).find((i) => i.name === 'mtls-sidecar');
  if (img?.newTag !== undefined) t.equal(String(img.newTag), pkg.version, 'kustomize image tag = package.json version');
});

// Subtests run in order: the Deployment checks record what the cross-resource checks build on.
const podFacts = new Map<string, PodFacts>();
for (const variant of variants) {
  t.test(`${variant}: the pod agrees with its sidecar.yaml`, async (t) => {
    podFacts.set(variant, checkDeployment(t, variant, variant.includes('native')));
  });
}

t.test(`Services, monitoring and certificates agree with ${activeDeployment}`, async (t) => {
  const pod = podFacts.get(activeDeployment);
  if (!pod) {
    t.fail(`${activeDeployment} could not be read (see its own subtest)`);
    return;
  }
  const { config, namespace, labels, sidecar } = pod;
  const targetPortOf = (p: Obj) => portNumber(sidecar, p.targetPort ?? p.port);

  const services = find('Service', undefined, namespace).filter((d) => labelsMatch(d.doc.spec?.selector, labels));
  const publicServices = services.filter((d) => d.doc.spec?.clusterIP !== 'None');
  t.equal(publicServices.length, 1, 'one public Service selects the pods');
  for (const svc of publicServices) {
    const ports = (svc.doc.spec.ports ?? []) as Obj[];
    t.ok(ports.length > 0);
    for (const p of ports) {
      const target = targetPortOf(p);
      t.equal(target, config.listen.port, `public Service port ${p.port} -> ${target}: the mTLS listener`);
      t.not(target, config.admin.port, 'the public Service does not expose the admin port');
      t.not(target, pod.appPort, 'nor the app port');
    }
  }

  // Prometheus: ServiceMonitor over a headless metrics Service, or a PodMonitor, on the admin port.
  const adminPortName = ((sidecar.ports ?? []) as Obj[]).find((p) => p.containerPort === config.admin.port)?.name;
  t.ok(adminPortName, 'the admin port is named');
  const monitors = [...find('ServiceMonitor', undefined, namespace), ...find('PodMonitor', undefined, namespace)];
  t.ok(monitors.length > 0, 'a ServiceMonitor or PodMonitor scrapes the sidecar');
  const jobs: string[] = [];
  for (const m of monitors) {
    if (m.doc.kind === 'PodMonitor') {
      t.ok(labelsMatch(m.doc.spec.selector?.matchLabels, labels), 'PodMonitor selects the pods');
      for (const ep of m.doc.spec.podMetricsEndpoints as Obj[]) {
        t.equal(ep.port, adminPortName, `PodMonitor scrapes port ${adminPortName}`);
        t.equal(ep.path ?? '/metrics', '/metrics');
        jobs.push(ep.relabelings?.find((r: Obj) => r.targetLabel === 'job')?.replacement ?? `${namespace}/${m.doc.metadata.name}`);
      }
      continue;
    }
    const metricsSvc = services.find((d) => labelsMatch(m.doc.spec.selector?.matchLabels, d.doc.metadata.labels));
    t.ok(metricsSvc, `ServiceMonitor ${m.doc.metadata.name} selects a Service of these pods`);
    if (!metricsSvc) continue;
    t.not(metricsSvc.doc.metadata.name, publicServices[0]?.doc.metadata.name, 'the metrics Service is not the public one');
    t.equal(metricsSvc.doc.spec.clusterIP, 'None', 'the metrics Service is headless (no virtual IP to send traffic to)');
    t.equal(metricsSvc.doc.spec.publishNotReadyAddresses, true, 'unready pods are scraped too');
    for (const p of metricsSvc.doc.spec.ports as Obj[]) t.equal(targetPortOf(p), config.admin.port, 'the metrics Service carries only the admin port');
    for (const ep of m.doc.spec.endpoints as Obj[]) {
      const svcPort = (metricsSvc.doc.spec.ports as Obj[]).find((p) => p.name === ep.port);
      t.ok(svcPort, `endpoint port ${ep.port} is a named port of ${metricsSvc.doc.metadata.name}`);
      t.equal(svcPort && targetPortOf(svcPort), config.admin.port, 'it targets the admin port');
      t.equal(ep.path ?? '/metrics', '/metrics');
      const jobLabel = m.doc.spec.jobLabel as string | undefined;
      jobs.push(ep.relabelings?.find((r: Obj) => r.targetLabel === 'job')?.replacement ?? (jobLabel ? metricsSvc.doc.metadata.labels?.[jobLabel] : undefined) ?? metricsSvc.doc.metadata.name);
    }
  }

  // The alert rules: verbatim from docker/observability when that file exists.
  const rules = find('PrometheusRule');
  t.equal(rules.length, 1, 'one PrometheusRule');
  const groups = (rules[0]?.doc.spec?.groups ?? []) as Obj[];
  if (existsSync(alertsFile)) {
    const alerts = loadYaml(alertsFile)[0] ?? {};
    t.ok(isDeepStrictEqual(groups, alerts.groups), 'PrometheusRule spec.groups = docker/observability/prometheus-alerts.yaml groups (run node docker/kubernetes/sync-prometheusrule.mjs)');
  }
  const upRule = groups.flatMap((g) => g.rules as Obj[]).find((r) => r.alert && /\bup\b[^\n]*==\s*0/.test(String(r.expr)));
  t.ok(upRule, 'an alert fires on up == 0');
  const jobRe = /job\s*=~\s*"([^"]+)"/.exec(String(upRule?.expr))?.[1];
  if (jobRe) for (const job of jobs) t.match(job, new RegExp(`^(?:${jobRe})$`), `scrape job "${job}" is one the up == 0 alert watches (${jobRe})`);

  // NetworkPolicy: the mTLS port for all, the admin port only from somewhere, never the app port.
  for (const np of find('NetworkPolicy', undefined, namespace).filter((d) => labelsMatch(d.doc.spec.podSelector?.matchLabels, labels))) {
    const rulesIn = (np.doc.spec.ingress ?? []) as Obj[];
    const portsOf = (r: Obj) => ((r.ports ?? []) as Obj[]).map((p) => portNumber(sidecar, p.port));
    t.ok(rulesIn.some((r) => portsOf(r).includes(config.listen.port)), 'NetworkPolicy admits the mTLS port');
    t.notOk(rulesIn.some((r) => !r.ports || portsOf(r).includes(pod.appPort)), 'NetworkPolicy never admits the app port (nor all ports)');
    for (const r of rulesIn.filter((r) => portsOf(r).includes(config.admin.port))) t.ok(r.from?.length, 'the admin port only from a restricted source');
  }

  // cert-manager: the server certificate names the Service; the issuers exist.
  const serverCert = find('Certificate', undefined, namespace).find((d) => d.doc.spec.secretName === pod.serverSecret)?.doc;
  const svcName = publicServices[0]?.doc.metadata.name;
  t.ok((serverCert?.spec.dnsNames ?? []).includes(`${svcName}.${namespace}.svc`), `server certificate covers ${svcName}.${namespace}.svc`);
  for (const c of find('Certificate')) {
    const ref = c.doc.spec.issuerRef as Obj;
    const issuer = ref.kind === 'ClusterIssuer' ? find('ClusterIssuer', ref.name) : find('Issuer', ref.name, c.doc.metadata.namespace);
    t.equal(issuer.length, 1, `Certificate ${c.doc.metadata.name}: its ${ref.kind ?? 'Issuer'} ${ref.name} exists`);
    const ca = issuerCaSecret(ref, c.doc.metadata.namespace);
    if (ca) t.ok(find('Certificate', undefined, ca.namespace).some((d) => d.doc.spec.secretName === ca.secret && d.doc.spec.isCA), `its CA Secret ${ca.namespace}/${ca.secret} is a CA Certificate's`);
    if (c.doc.spec.isCA) t.equal(c.doc.spec.privateKey?.rotationPolicy, 'Never', `CA ${c.doc.metadata.name} keeps its key on renewal (rotationPolicy Never)`);
  }
  for (const b of find('Bundle')) {
    const ns = find('Namespace', namespace)[0];
    t.ok(labelsMatch(b.doc.spec.target.namespaceSelector?.matchLabels, ns?.doc.metadata.labels), `Bundle ${b.doc.metadata.name} reaches namespace ${namespace}`);
  }

  // The test device certificate: trusted by the bundle, and carrying an id the config extracts.
  const devices = find('Certificate', undefined, namespace).filter((d) => (d.doc.spec.usages ?? []).includes('client auth'));
  t.ok(devices.length > 0, 'a test device Certificate (test-device.yaml) exists');
  const bundleSecrets = pod.caBundleSources.flatMap((p) => (p.doc.kind === 'Bundle' ? (p.doc.spec.sources as Obj[]).map((s) => s.secret?.name) : []));
  for (const d of devices) {
    t.ok(bundleSecrets.includes(issuerCaSecret(d.doc.spec.issuerRef, namespace)?.secret), `device ${d.doc.metadata.name} is signed by a CA in the sidecar's bundle`);
    const uriRule = config.identity.deviceId.find((r) => r.source === 'uri');
    if (uriRule && uriRule.source === 'uri') t.ok((d.doc.spec.uris ?? []).some((u: string) => u.startsWith(uriRule.prefix)), `device ${d.doc.metadata.name} has a ${uriRule.prefix} SAN URI`);
  }
});

t.test('the dashboard ConfigMap carries docker/observability/grafana-dashboard.json for the Grafana sidecar', async (t) => {
  const labelled = find('ConfigMap').filter((d) => d.doc.metadata?.labels?.grafana_dashboard !== undefined);
  t.equal(labelled.length, 1, 'one ConfigMap labelled grafana_dashboard');
  const cm = labelled[0]?.doc ?? {};
  t.equal(cm.apiVersion, 'v1');
  // kube-prometheus-stack's sidecar: label grafana_dashboard, labelValue "1" (a string, as label values are).
  t.equal(cm.metadata?.labels?.grafana_dashboard, '1', 'grafana_dashboard: "1"');
  const keys = Object.keys(cm.data ?? {});
  t.equal(keys.length, 1, 'one data key');
  t.match(keys[0], /^[-._a-zA-Z0-9]+\.json$/, 'a valid ConfigMap key ending .json (the file name the sidecar writes)');
  const json = cm.data?.[keys[0] ?? ''];
  t.equal(json, readFileSync(dashboardFile, 'utf8'), 'its JSON = docker/observability/grafana-dashboard.json (run node docker/kubernetes/sync-grafana-dashboard.mjs)');
  // kubectl apply (client side) copies the whole object into an annotation; a ConfigMap's
  // annotations may hold 256 KiB in total.
  t.ok(Buffer.byteLength(String(json)) < 200 * 1024, `${Buffer.byteLength(String(json))} bytes leave room under kubectl apply's 256 KiB annotation limit`);
});

t.test("docker/README.md: the minimal config of \"Protect a legacy API\" loads", async (t) => {
  const readme = readFileSync(join(dockerDir, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Protect a legacy API'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  t.type(block, 'string', 'the section has a yaml block');
  const text = (block ?? '').replace(/^ {3}/gm, '');
  const config = parseConfig(text, '/etc/mtls-sidecar/sidecar.yaml', {});
  t.equal(config.listen.port, 8443, 'mTLS on 8443, as the section says');
  t.equal(config.admin.port, 9090, 'admin on 9090');
  t.equal(config.clientAuth.failureMode, 'reject', 'refused clients are disconnected');
  t.ok(loopback.has(new URL(config.upstream.url).hostname), 'the upstream is on loopback');
});

// ---------------------------------------------------------------------------------------------
// docker-compose

const compose = loadYaml(composeFile)[0] ?? {};
const services = (compose.services ?? {}) as Record<string, Obj>;

function composeEnv(s: Obj | undefined): Record<string, string> {
  const e = s?.environment;
  if (Array.isArray(e)) return Object.fromEntries(e.map((x: string) => [x.split('=')[0]!, x.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(e ?? {}).map(([k, v]) => [k, String(v)]));
}

/** Short-syntax volumes ("src:target[:ro]") and the long syntax, normalised. */
function composeVolumes(s: Obj | undefined): { source: string; target: string; readOnly: boolean; bind: boolean }[] {
  return ((s?.volumes ?? []) as (string | Obj)[]).map((v) => {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':');
      return { source: source!, target: target!, readOnly: (mode ?? '').split(',').includes('ro'), bind: /^[./~]/.test(source!) };
    }
    return { source: v.source, target: v.target, readOnly: v.read_only === true, bind: v.type === 'bind' };
  });
}

function composePorts(s: Obj | undefined): { hostIp?: string; container: number }[] {
  return ((s?.ports ?? []) as (string | Obj)[]).map((p) => {
    if (typeof p === 'object') return { hostIp: p.host_ip, container: Number(p.target) };
    const parts = String(p).split(':');
    return { hostIp: parts.length === 3 ? parts[0] : undefined, container: Number(parts.at(-1)!.split('/')[0]) };
  });
}

function seconds(duration: string | number | undefined): number {
  if (duration === undefined) return 10; // docker's default stop timeout
  if (typeof duration === 'number') return duration;
  let total = 0;
  for (const [, n, unit] of String(duration).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as Record<string, number>)[unit!]!;
  return total;
}

t.test('docker-compose.yml agrees with compose/sidecar.yaml and the image', async (t) => {
  const sidecar = Object.values(services).find((s) => s.build?.dockerfile === 'docker/Dockerfile');
  t.ok(sidecar, 'a service builds docker/Dockerfile');
  t.equal(posix.normalize(posix.join('docker', sidecar?.build?.context ?? '')), '.', 'with the repository root as context');
  t.equal(String(sidecar?.image).split(':').at(-1), pkg.version, 'image tag = package.json version');

  const args = (sidecar?.command as string[] | undefined) ?? image.cmd;
  const configPath = configPathOf(args)!;
  t.equal(configPath, configPathOf(image.cmd), "config path = the image CMD's --config");
  const volumes = composeVolumes(sidecar);
  const cfgMount = volumes.find((v) => v.target === configPath);
  t.ok(cfgMount?.bind && cfgMount.readOnly, `a read-only bind mount provides ${configPath}`);
  const cfgSource = join(dockerDir, cfgMount?.source ?? 'missing');
  t.equal(relative(dockerDir, cfgSource), 'compose/sidecar.yaml');
  const env = composeEnv(sidecar);
  const config = parseConfig(readFileSync(cfgSource, 'utf8'), configPath, env);

  const ports = composePorts(sidecar);
  t.same(ports.map((p) => p.container).sort((a, b) => a - b), [config.listen.port, config.admin.port].sort((a, b) => a - b), 'published ports = listen.port + admin.port');
  t.equal(ports.find((p) => p.container === config.admin.port)?.hostIp, '127.0.0.1', 'the admin port is published on host loopback only');
  t.equal(env.MTLS_ADMIN_PORT === undefined ? 9090 : Number(env.MTLS_ADMIN_PORT), config.admin.port, 'the HEALTHCHECK port (MTLS_ADMIN_PORT) = admin.port');
  t.notOk(sidecar?.healthcheck?.disable, 'the image HEALTHCHECK is kept');

  // Certificate files: in a named volume that the pki service fills, under the names its script writes.
  const volumeOf = (path: string) => volumes.filter((v) => path.startsWith(`${v.target.replace(/\/$/, '')}/`)).sort((a, b) => b.target.length - a.target.length)[0];
  const files = configFiles(config).map((f) => f.path);
  const pkiVolume = volumeOf(config.tls.cert);
  t.ok(pkiVolume && !pkiVolume.bind && pkiVolume.readOnly, 'certificates come from a read-only named volume');
  for (const f of files) t.equal(volumeOf(f)?.source, pkiVolume?.source, `${f} is in that volume`);
  t.ok(pkiVolume && pkiVolume.source in (compose.volumes ?? {}), `volume ${pkiVolume?.source} is declared`);
  const [pkiName, pki] = Object.entries(services).find(([, s]) => composeVolumes(s).some((v) => v.source === pkiVolume?.source && !v.readOnly)) ?? [];
  t.ok(pki, 'a one-shot service writes that volume');
  t.equal(sidecar?.depends_on?.[pkiName ?? '']?.condition, 'service_completed_successfully', 'the sidecar starts after the PKI is written');
  const pkiEnv = composeEnv(pki);
  const pkiTarget = composeVolumes(pki).find((v) => v.source === pkiVolume?.source)?.target;
  t.equal(pkiEnv.PKI_DIR ?? '/pki', pkiTarget, 'the script writes where the volume is mounted');
  const script = composeVolumes(pki).find((v) => v.bind && (pki?.entrypoint ?? []).includes(v.target));
  t.ok(script && existsSync(join(dockerDir, script.source)), 'the PKI script is bind-mounted from the repository');

  // The upstream: the echo service, on an internal network, never published.
  const upstream = new URL(config.upstream.url);
  const echo = services[upstream.hostname];
  t.ok(echo, `upstream host ${upstream.hostname} is a compose service`);
  t.equal(Number(upstream.port || 80), Number(composeEnv(echo).PORT), 'upstream port = the echo PORT');
  t.same(echo?.ports ?? [], [], 'the upstream publishes no port');
  for (const n of (echo?.networks ?? []) as string[]) t.equal(compose.networks?.[n]?.internal, true, `the upstream's network ${n} is internal`);

  // Runtime hardening and shutdown.
  const [uid] = String(sidecar?.user ?? '').split(':');
  t.equal(Number(uid), image.uid, 'runs as the image USER');
  t.equal(sidecar?.read_only, true, 'read-only root filesystem');
  t.ok((sidecar?.cap_drop ?? []).includes('ALL'), 'drops ALL capabilities');
  t.ok((sidecar?.security_opt ?? []).some((o: string) => /^no-new-privileges(:true)?$/.test(o)), 'no-new-privileges');
  t.ok(seconds(sidecar?.stop_grace_period) > config.shutdown.timeoutSeconds, `stop_grace_period ${sidecar?.stop_grace_period} > shutdown.timeoutSeconds ${config.shutdown.timeoutSeconds}`);

  // The in-network client asks for a name the server certificate carries.
  const client = Object.values(services).find((s) => (s.command ?? []).some((a: string) => /^https:\/\//.test(a)));
  const clientUrl = new URL((client?.command as string[]).find((a) => /^https:\/\//.test(a))!);
  t.ok(String(pkiEnv.SERVER_SANS).split(',').includes(`DNS:${clientUrl.hostname}`), `the server certificate SANs include DNS:${clientUrl.hostname}`);
  t.equal(Number(clientUrl.port), config.listen.port);

  // Run the PKI script with the local openssl and put the real sidecar on its output.
  const haveOpenssl = await exec('openssl', ['version']).then(
    () => true,
    () => false,
  );
  if (!haveOpenssl) {
    t.comment('openssl not found: the PKI script was not run');
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'mtls-compose-pki-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  await exec('sh', [join(dockerDir, script!.source)], { env: { ...process.env, ...pkiEnv, PKI_DIR: out }, timeout: 30_000 });
  // A path under the sidecar's mount of the volume = the same relative path under PKI_DIR.
  const inOut = (p: string) => join(out, ...posix.relative(pkiVolume!.target, p).split('/'));
  for (const f of files) t.ok(existsSync(inOut(f)), `the script wrote ${posix.basename(f)}`);
  t.notOk(existsSync(join(out, 'ca.key')), 'the CA key is not left in the volume');

  const echoUp = await startEchoUpstream();
  t.teardown(() => echoUp.close());
  const local = withFiles(config, inOut);
  const running = await startSidecar(
    {
      ...local,
      listen: { ...local.listen, host: '127.0.0.1', port: 0 },
      admin: { ...local.admin, host: '127.0.0.1', port: 0 },
      upstream: { ...local.upstream, url: echoUp.url },
    },
    { logger: pino({ level: 'silent' }) },
  );
  t.teardown(() => running.close(1_000));
  // Like a readiness probe: wait until /readyz (certificates, listener, CRL sources loaded) is 200.
  const deadline = Date.now() + 15_000;
  let ready = 0;
  while (Date.now() < deadline && (ready = (await fetch(`${running.adminUrl}/readyz`)).status) !== 200) await new Promise((r) => setTimeout(r, 100));
  t.equal(ready, 200, '/readyz turns 200 (the CRL from the script loads)');
  const pick = (name: string) => readFileSync(join(out, name), 'utf8');
  const reply = await call({ servername: clientUrl.hostname, port: running.port, path: clientUrl.pathname, ca: pick('ca.pem'), cert: pick('device.pem'), key: pick('device.key') });
  t.equal(reply.status, 200, `the client's request (servername ${clientUrl.hostname}) goes through with the script's certificates${reply.status === 200 ? '' : `: ${reply.body?.slice(0, 300) ?? reply.error?.message}`}`);
  t.equal((reply.json as { headers?: Record<string, string> } | undefined)?.headers?.['x-device-id'], pkiEnv.DEVICE_ID ?? 'compose-device-1', 'X-Device-Id is the device id of the script');
  t.equal(dirname(inOut(config.tls.cert)), out);
});
