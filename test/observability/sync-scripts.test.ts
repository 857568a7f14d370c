// The generators of docker/kubernetes/ run for real (node, on a copy of docker/ in a temporary
// directory): sync-prometheusrule.mjs regenerates the checked-in PrometheusRule byte for byte and
// its --runbook-base-url rebases every runbook_url, in the alerts file and the PrometheusRule
// alike, touching nothing else and refusing a base that is not an absolute http(s) URL without a
// fragment; sync-grafana-dashboard.mjs regenerates the checked-in ConfigMap byte for byte, carries
// an edited dashboard verbatim and refuses one that is not JSON.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { parse as parseYaml } from 'yaml';

const run = promisify(execFile);
const repoDocker = join(import.meta.dirname, '../../docker');

interface Copy {
  readonly dir: string;
  readonly alerts: string;
  readonly rule: string;
  readonly dashboard: string;
  readonly configMap: string;
}

/** docker/kubernetes and docker/observability copied to a fresh directory, same layout. */
function copyOfDocker(t: Test): Copy {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-sync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['kubernetes', 'observability']) cpSync(join(repoDocker, sub), join(dir, sub), { recursive: true });
  return {
    dir,
    alerts: join(dir, 'observability/prometheus-alerts.yaml'),
    rule: join(dir, 'kubernetes/prometheusrule.yaml'),
    dashboard: join(dir, 'observability/grafana-dashboard.json'),
    configMap: join(dir, 'kubernetes/grafana-dashboard-configmap.yaml'),
  };
}

async function script(copy: Copy, name: string, args: string[] = []): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(copy.dir, 'kubernetes', name), ...args], { timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const read = (file: string): string => readFileSync(file, 'utf8');

interface Rule { alert?: string; annotations?: Record<string, string> }
interface Groups { groups?: { rules?: Rule[] }[] }
const alertsOf = (groups: Groups['groups']): Rule[] => (groups ?? []).flatMap((g) => g.rules ?? []);

t.test('sync-prometheusrule.mjs regenerates the checked-in PrometheusRule', async (t) => {
  const copy = copyOfDocker(t);
  const before = read(copy.rule);
  const { code, output } = await script(copy, 'sync-prometheusrule.mjs');
  t.equal(code, 0, output);
  t.equal(read(copy.rule), before, 'byte for byte');
});

t.test('--runbook-base-url rebases every runbook_url in the alerts and the PrometheusRule, and nothing else', async (t) => {
  const copy = copyOfDocker(t);
  const alertsBefore = read(copy.alerts);
  const base = 'https://wiki.example.org/sre/mtls-sidecar-runbooks';
  const { code, output } = await script(copy, 'sync-prometheusrule.mjs', ['--runbook-base-url', base]);
  t.equal(code, 0, output);

  const alerts = parseYaml(read(copy.alerts)) as Groups;
  const rules = alertsOf(alerts.groups);
  t.ok(rules.length >= 16, `${rules.length} alerts`);
  t.same(
    rules.filter((r) => r.annotations?.runbook_url !== `${base}#${String(r.alert).toLowerCase()}`).map((r) => `${r.alert}: ${r.annotations?.runbook_url}`),
    [],
    'every runbook_url is <base>#<alert name in lower case>',
  );
  const changed = (a: string, b: string) => a.split('\n').filter((l, i) => l !== b.split('\n')[i]);
  t.ok(changed(read(copy.alerts), alertsBefore).every((l) => /^\s+runbook_url: "/.test(l)), 'only runbook_url lines changed');
  t.equal(read(copy.alerts).split('\n').length, alertsBefore.split('\n').length, 'no line added or removed');

  const rule = parseYaml(read(copy.rule)) as { spec?: Groups };
  t.same(rule.spec?.groups, alerts.groups, 'the PrometheusRule carries the rebased alerts');

  const again = await script(copy, 'sync-prometheusrule.mjs', ['--runbook-base-url', base]);
  t.equal(again.code, 0, again.output);
  t.equal(read(copy.alerts), alertsBefore.replace(/(runbook_url: ")[^"#]*#/g, `$1${base}#`), 'idempotent');
});

t.test('--runbook-base-url refuses a base that is not absolute http(s) without a fragment', async (t) => {
  const copy = copyOfDocker(t);
  const alertsBefore = read(copy.alerts);
  const ruleBefore = read(copy.rule);
  for (const bad of ['RUNBOOKS.md', '/docs/RUNBOOKS.md', 'ftp://files.example.org/RUNBOOKS.md', 'https://wiki.example.org/runbooks#top']) {
    const { code, output } = await script(copy, 'sync-prometheusrule.mjs', ['--runbook-base-url', bad]);
    t.not(code, 0, `${bad} is refused`);
    t.match(output, /runbook-base-url/, 'the error names the option');
  }
  t.equal(read(copy.alerts), alertsBefore, 'the alerts file is untouched');
  t.equal(read(copy.rule), ruleBefore, 'the PrometheusRule is untouched');
});

t.test('sync-grafana-dashboard.mjs regenerates the checked-in ConfigMap and carries an edited dashboard verbatim', async (t) => {
  const copy = copyOfDocker(t);
  const before = read(copy.configMap);
  let result = await script(copy, 'sync-grafana-dashboard.mjs');
  t.equal(result.code, 0, result.output);
  t.equal(read(copy.configMap), before, 'byte for byte');

  const dashboard = JSON.parse(read(copy.dashboard)) as { title: string; description: string };
  dashboard.title = 'mtls-sidecar (staging)';
  dashboard.description = 'Quotes " backslashes \\ and a # that YAML must not read as a comment: key: value';
  const edited = `${JSON.stringify(dashboard, null, 2)}\n`;
  writeFileSync(copy.dashboard, edited);
  result = await script(copy, 'sync-grafana-dashboard.mjs');
  t.equal(result.code, 0, result.output);
  const cm = parseYaml(read(copy.configMap)) as { kind?: string; metadata?: { labels?: Record<string, string> }; data?: Record<string, string> };
  t.equal(cm.kind, 'ConfigMap');
  t.equal(cm.metadata?.labels?.grafana_dashboard, '1');
  t.equal(cm.data?.['mtls-sidecar.json'], edited, 'the data key holds the edited file');

  writeFileSync(copy.dashboard, '{ "title": ');
  result = await script(copy, 'sync-grafana-dashboard.mjs');
  t.not(result.code, 0, 'a dashboard that is not JSON is refused');
  t.equal(parseYaml(read(copy.configMap)).data['mtls-sidecar.json'], edited, 'and the ConfigMap is left as it was');
});
