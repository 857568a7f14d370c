// The Grafana dashboard and the Prometheus alerts in docker/observability/ query only metrics and
// labels that src/metrics.ts defines, every query is valid PromQL (the Prometheus project's own
// grammar, @prometheus-io/lezer-promql) as written and with the dashboard variables substituted
// the way Grafana does, the dashboard imports (ids, grid, datasource variable) and filters every
// selector by namespace, job, pod and instance, every alert links an existing section of
// RUNBOOKS.md by an absolute runbook_url, and, where promtool is installed (a real peer nobody
// here wrote), Prometheus itself accepts the rules and the dashboard's queries, each alert fires
// on the series it is meant for and not on the ones it is meant to ignore (the absent() guards
// included), and the variables' "All" matches series without Kubernetes labels. With CI set, a
// missing promtool is a failure, not a skip.
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { parser } from '@prometheus-io/lezer-promql';
import t from 'tap';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { createMetrics } from '../../src/metrics.js';

const DIR = join(import.meta.dirname, '../../docker/observability');
const DASHBOARD_FILE = join(DIR, 'grafana-dashboard.json');
const ALERTS_FILE = join(DIR, 'prometheus-alerts.yaml');
const RUNBOOKS_FILE = join(DIR, 'RUNBOOKS.md');

const run = promisify(execFile);

// ------------------------------------------------------------------------------------ files

interface GridPos { h?: unknown; w?: unknown; x?: unknown; y?: unknown }
interface Target { expr?: unknown; refId?: unknown; datasource?: unknown }
interface Panel {
  id?: unknown;
  type?: unknown;
  title?: unknown;
  gridPos?: GridPos;
  datasource?: unknown;
  targets?: Target[];
  panels?: Panel[];
  collapsed?: unknown;
}
interface Variable {
  name?: unknown;
  type?: unknown;
  query?: unknown;
  definition?: unknown;
  datasource?: unknown;
  current?: unknown;
  includeAll?: unknown;
  allValue?: unknown;
  multi?: unknown;
}
interface Dashboard {
  title?: unknown;
  uid?: unknown;
  schemaVersion?: unknown;
  panels?: Panel[];
  templating?: { list?: Variable[] };
  annotations?: { list?: { expr?: unknown; datasource?: unknown; builtIn?: unknown; name?: unknown }[] };
  time?: { from?: unknown; to?: unknown };
  refresh?: unknown;
  tags?: unknown;
  __inputs?: { name?: unknown; type?: unknown; pluginId?: unknown }[];
  __requires?: { type?: unknown; id?: unknown }[];
}
interface Rule {
  alert?: unknown;
  record?: unknown;
  expr?: unknown;
  for?: unknown;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}
interface RuleFile { groups?: { name?: unknown; rules?: Rule[] }[] }

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const ruleFile = parseYaml(readFileSync(ALERTS_FILE, 'utf8')) as RuleFile;
const runbooks = readFileSync(RUNBOOKS_FILE, 'utf8');

/** Every panel, rows' nested panels included (a collapsed row keeps its panels inside it). */
function allPanels(panels: Panel[] = dashboard.panels ?? []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const rules: Rule[] = (ruleFile.groups ?? []).flatMap((g) => g.rules ?? []);

// ------------------------------------------------------------------------ PromQL handling

/** Grafana's built-in interval variables, replaced by plain durations before parsing. */
const GRAFANA_BUILTINS: Record<string, string> = {
  __rate_interval: '5m',
  __interval: '1m',
  __range: '6h',
  __range_s: '21600',
  __interval_ms: '60000',
};

/** A query as Prometheus will see it once Grafana has interpolated its built-in variables. */
function interpolate(expr: string): string {
  return expr.replace(/\$\{?(__[a-z_]+)\}?/g, (all, name: string) => GRAFANA_BUILTINS[name] ?? all);
}

/** A selection of a multi-value variable with "All": every value, or the ones picked. */
type Selection = 'All' | readonly string[];

/**
 * Grafana's Prometheus data source escaping of a multi-value variable's values (its
 * prometheusSpecialRegexEscape): regex metacharacters get a backslash, doubled for the PromQL
 * string they land in.
 */
function grafanaRegexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/**
 * A dashboard query as Grafana sends it for these selections of the filter variables: "All" is
 * the variables' allValue `.*`, one value is itself escaped, several are `(a|b)`.
 */
function substitute(expr: string, selections: Readonly<Record<string, Selection>>): string {
  return interpolate(expr).replace(/\$\{?(\w+)\}?/g, (all, name: string) => {
    const picked = selections[name];
    if (picked === undefined) return all;
    if (picked === 'All') return '.*';
    const escaped = picked.map(grafanaRegexEscape);
    return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
  });
}

/** One PromQL expression to check, with where it came from. */
interface Query {
  readonly where: string;
  readonly expr: string;
  /** Dashboard queries must filter every selector by the job and instance variables. */
  readonly dashboard: boolean;
}

function dashboardQueries(): Query[] {
  const out: Query[] = [];
  for (const p of allPanels()) {
    for (const target of p.targets ?? []) {
      if (typeof target.expr === 'string') {
        out.push({ where: `panel ${String(p.id)} "${String(p.title)}" ${String(target.refId)}`, expr: target.expr, dashboard: true });
      }
    }
  }
  for (const a of dashboard.annotations?.list ?? []) {
    if (typeof a.expr === 'string') out.push({ where: `annotation "${String(a.name)}"`, expr: a.expr, dashboard: true });
  }
  // label_values(<selector>, <label>): the selector is PromQL, the label must exist on it.
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const text = typeof v.query === 'string' ? v.query : (v.query as { query?: unknown } | undefined)?.query;
    const m = typeof text === 'string' ? /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(text) : null;
    if (m) out.push({ where: `variable $${String(v.name)}`, expr: `group by (${m[2]}) (${m[1]})`, dashboard: false });
  }
  return out;
}

function alertQueries(): Query[] {
  return rules.map((r) => ({ where: `alert ${String(r.alert)}`, expr: String(r.expr), dashboard: false }));
}

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

function descendants(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  const walk = (n: SyntaxNode): void => {
    if (n.type.name === name) out.push(n);
    for (const c of children(n)) walk(c);
  };
  walk(node);
  return out;
}

/** What src/metrics.ts registers, read from a fresh registry. */
interface MetricInfo {
  readonly type: string;
  readonly labels: ReadonlySet<string>;
  readonly buckets: readonly number[];
}

async function loadCatalog(): Promise<Map<string, MetricInfo>> {
  const metrics = createMetrics();
  // Registered only with limits.store: redis (serve/device-limits.ts); the dashboard and an alert use it.
  metrics.registry.registerMetric(metrics.limitsStoreUp);
  const exposition = await metrics.registry.metrics();
  const catalog = new Map<string, MetricInfo>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (name === undefined || type === undefined) continue;
    // prom-client keeps labelNames and a histogram's upperBounds on the metric object; its
    // typings do not declare them.
    const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames?: readonly string[]; upperBounds?: readonly number[] } | undefined;
    catalog.set(name, { type, labels: new Set(metric?.labelNames ?? []), buckets: metric?.upperBounds ?? [] });
  }
  return catalog;
}

/**
 * Labels every scraped series has (added by Prometheus from the target): job and instance
 * everywhere, namespace and pod on the targets of a ServiceMonitor or PodMonitor.
 */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod'];

/** The dashboard variables, in the order of its selectors' matchers. */
const FILTER_VARIABLES = ['namespace', 'job', 'pod', 'instance'];
/** The matchers every dashboard selector starts with (the variables' "All" is `.*`). */
const DASHBOARD_FILTER = FILTER_VARIABLES.map((v) => `${v}=~"$${v}"`).join(', ');

/** A selector's metric resolved against the catalog. */
interface Resolved {
  /** The registered name (histogram suffix stripped). */
  readonly base: string;
  readonly info: MetricInfo;
  readonly labels: ReadonlySet<string>;
  /** 'bucket' | 'sum' | 'count' for a histogram's series. */
  readonly part?: string;
}

const UP: MetricInfo = { type: 'gauge', labels: new Set(), buckets: [] };

function resolve(name: string, catalog: Map<string, MetricInfo>): Resolved | undefined {
  if (name === 'up') return { base: 'up', info: UP, labels: new Set(TARGET_LABELS) };
  const direct = catalog.get(name);
  if (direct) return { base: name, info: direct, labels: new Set([...direct.labels, ...TARGET_LABELS]) };
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  const base = catalog.get(m[1]);
  if (!base || (base.type !== 'histogram' && !(base.type === 'summary' && m[2] !== 'bucket'))) return undefined;
  const extra = m[2] === 'bucket' ? ['le'] : [];
  return { base: m[1], info: base, labels: new Set([...base.labels, ...TARGET_LABELS, ...extra]), part: m[2] };
}

function unquote(literal: string): string {
  return literal.startsWith('`') ? literal.slice(1, -1) : (JSON.parse(literal.replace(/^'(.*)'$/s, '"$1"')) as string);
}

/** Lezer recovers from errors by inserting error nodes; the first one is the syntax error. */
function syntaxError(tree: ReturnType<typeof parser.parse>, text: string): string | undefined {
  let found: string | undefined;
  tree.iterate({
    enter(n) {
      if (n.type.isError && found === undefined) found = `syntax error at offset ${n.from} near ${JSON.stringify(text.slice(Math.max(0, n.from - 20), n.from + 20))}`;
    },
  });
  return found;
}

/** The result of checking one expression: problems found and the metric names it used. */
interface Analysis {
  readonly problems: string[];
  readonly metrics: Set<string>;
}

function analyse(query: Query, catalog: Map<string, MetricInfo>): Analysis {
  const problems: string[] = [];
  const used = new Set<string>();
  const text = query.dashboard ? interpolate(query.expr) : query.expr;
  const say = (msg: string): void => void problems.push(`${query.where}: ${msg}`);
  if (text.trim() === '') {
    say('empty expression');
    return { problems, metrics: used };
  }
  const tree = parser.parse(text);
  const top = tree.topNode;

  const syntax = syntaxError(tree, text);
  if (syntax !== undefined) {
    say(syntax);
    return { problems, metrics: used };
  }

  // Grafana's own variables ($job, $instance) may only appear inside string literals.
  const strings = descendants(top, 'StringLiteral');
  for (let i = text.indexOf('$'); i !== -1; i = text.indexOf('$', i + 1)) {
    if (!strings.some((s) => s.from <= i && i < s.to)) say(`variable outside a string at offset ${i}`);
  }

  const resolvedOf = new Map<number, Resolved>();
  const selectorsIn = (node: SyntaxNode): Resolved[] =>
    descendants(node, 'VectorSelector').flatMap((s) => {
      const r = resolvedOf.get(s.from);
      return r ? [r] : [];
    });

  for (const sel of descendants(top, 'VectorSelector')) {
    const ident = sel.getChild('Identifier');
    if (!ident) {
      say(`selector without a metric name: ${text.slice(sel.from, sel.to)}`);
      continue;
    }
    const name = text.slice(ident.from, ident.to);
    const resolved = resolve(name, catalog);
    if (!resolved) {
      say(`metric ${name} is not in the exposition of createMetrics()`);
      continue;
    }
    if (name !== 'up') used.add(resolved.base);
    resolvedOf.set(sel.from, resolved);
    const matchers = new Map<string, { op: string; value: string }>();
    for (const m of [...descendants(sel, 'UnquotedLabelMatcher'), ...descendants(sel, 'QuotedLabelMatcher')]) {
      const labelNode = m.getChild('LabelName') ?? m.getChild('QuotedLabelName');
      const valueNode = children(m).filter((c) => c.type.name === 'StringLiteral').pop();
      const op = m.getChild('MatchOp');
      if (!labelNode || !valueNode || !op) continue;
      const rawLabel = text.slice(labelNode.from, labelNode.to);
      const label = labelNode.type.name === 'QuotedLabelName' ? unquote(rawLabel) : rawLabel;
      const value = unquote(text.slice(valueNode.from, valueNode.to));
      matchers.set(label, { op: text.slice(op.from, op.to), value });
      if (!resolved.labels.has(label)) say(`label "${label}" is not a label of ${name} (has: ${[...resolved.labels].sort().join(', ')})`);
      if (label === 'le' && resolved.part === 'bucket') {
        const bounds = [...resolved.info.buckets.map(String), '+Inf'];
        if (!bounds.includes(value)) say(`${name}{le="${value}"} is not a bucket bound (${bounds.join(', ')})`);
      }
    }
    if (query.dashboard) {
      for (const v of FILTER_VARIABLES) {
        const m = matchers.get(v);
        if (!m || m.op !== '=~' || m.value !== `$${v}`) say(`${name} is not filtered by ${v}=~"$${v}"`);
      }
    }
  }

  // by (...) / without (...): each label must exist on some series the aggregation reads.
  for (const agg of descendants(top, 'AggregateExpr')) {
    const modifier = agg.getChild('AggregateModifier');
    if (!modifier) continue;
    const inner = selectorsIn(agg);
    for (const l of descendants(modifier, 'LabelName')) {
      const label = text.slice(l.from, l.to);
      if (!inner.some((r) => r.labels.has(label))) {
        say(`aggregation label "${label}" is on none of ${inner.map((r) => r.base).join(', ') || '(no selector)'}`);
      }
    }
  }
  // on (...) / ignoring (...) / group_left (...): each label must exist on one side.
  for (const clause of descendants(top, 'MatchingModifierClause')) {
    const binary = clause.parent;
    const inner = binary ? selectorsIn(binary) : [];
    for (const l of descendants(clause, 'LabelName')) {
      const label = text.slice(l.from, l.to);
      if (!inner.some((r) => r.labels.has(label))) say(`matching label "${label}" is on none of ${inner.map((r) => r.base).join(', ')}`);
    }
  }
  // rate()/increase() only over counters or a histogram's series; histogram_quantile over _bucket.
  for (const call of descendants(top, 'FunctionCall')) {
    const fnNode = call.getChild('FunctionIdentifier');
    const fn = fnNode ? text.slice(fnNode.from, fnNode.to) : '';
    const inner = selectorsIn(call);
    if (['rate', 'irate', 'increase'].includes(fn)) {
      for (const r of inner) {
        if (r.info.type !== 'counter' && r.part === undefined) say(`${fn}() over ${r.base}, a ${r.info.type}`);
      }
    }
    if (fn === 'histogram_quantile') {
      for (const r of inner) if (r.part !== 'bucket') say(`histogram_quantile() over ${r.base}${r.part ? '_' + r.part : ''}, not a _bucket series`);
    }
  }
  return { problems, metrics: used };
}

// ------------------------------------------------------------------------------ the tests

const catalog = await loadCatalog();

t.test('createMetrics() exposes the mtls_* metrics the files are checked against', async (t) => {
  const names = [...catalog.keys()].filter((n) => n.startsWith('mtls_'));
  t.ok(names.length >= 20, `found ${names.length} mtls_* metrics`);
  t.same([...(catalog.get('mtls_handshakes_total')?.labels ?? [])].sort(), ['reason', 'result', 'tls_version'], 'labelNames are readable');
  t.ok((catalog.get('mtls_client_cert_remaining_validity_seconds')?.buckets.length ?? 0) > 0, 'histogram bucket bounds are readable');
});

t.test('every PromQL expression parses and uses only metrics and labels of src/metrics.ts', async (t) => {
  const queries = [...dashboardQueries(), ...alertQueries()];
  t.ok(queries.length >= 40, `${queries.length} expressions`);
  const problems: string[] = [];
  const used = new Set<string>();
  for (const q of queries) {
    const a = analyse(q, catalog);
    problems.push(...a.problems);
    for (const m of a.metrics) used.add(m);
  }
  t.same(problems, [], 'no syntax errors, unknown metrics, unknown labels or unfiltered dashboard selectors');
  // The dashboard should show every metric the sidecar defines.
  const shown = new Set<string>();
  for (const q of dashboardQueries()) for (const m of analyse(q, catalog).metrics) shown.add(m);
  // Not an assertion: a metric added to src/metrics.ts should not break CI before it has a panel.
  const unshown = [...catalog.keys()].filter((n) => n.startsWith('mtls_') && !shown.has(n));
  if (unshown.length > 0) t.comment(`not on the dashboard yet: ${unshown.join(', ')}`);
});

t.test('the checker itself rejects what it should', async (t) => {
  const check = (expr: string, dashboardQuery = false): string[] => analyse({ where: 'x', expr, dashboard: dashboardQuery }, catalog).problems;
  t.match(check('sum(rate(mtls_handshakes_total[5m])'), [/syntax error/]);
  t.match(check('rate(mtls_handshake_total[5m])'), [/mtls_handshake_total is not in the exposition/]);
  t.match(check('sum by (reasn) (rate(mtls_handshakes_total[5m]))'), [/aggregation label "reasn"/]);
  t.match(check('mtls_requests_total{status="500"}'), [/label "status" is not a label/]);
  t.match(check('mtls_client_cert_remaining_validity_seconds_bucket{le="100"}'), [/not a bucket bound/]);
  t.match(check('rate(mtls_active_connections[5m])'), [/rate\(\) over mtls_active_connections, a gauge/]);
  t.match(check('histogram_quantile(0.9, rate(mtls_request_duration_seconds_count[5m]))'), [/not a _bucket series/]);
  t.match(check('frobnicate(mtls_active_connections)'), [/syntax error/]);
  t.match(check('mtls_active_connections{job=~"$job"}', true), [/not filtered by namespace/, /not filtered by pod/, /not filtered by instance/]);
  t.match(check('mtls_active_connections{job=~"$job", instance=~"$instance", pod=~"$pod"}', true), [/not filtered by namespace=~"\$namespace"/]);
  t.same(check(`mtls_active_connections{${DASHBOARD_FILTER}}`, true), []);
  t.match(check('rate(mtls_reloads_total{job=~"$job", instance=~"$instance"}[$bogus])', true), [/syntax error/]);
  t.same(check('histogram_quantile(0.99, sum by (le, route) (rate(mtls_upstream_duration_seconds_bucket[5m])))'), []);
  t.same(check('up{job="a"} == 0'), []);
});

t.test('the dashboard has what Grafana import needs', async (t) => {
  t.type(dashboard.title, 'string');
  t.ok(String(dashboard.title).length > 0, 'title');
  t.match(String(dashboard.uid), /^[a-zA-Z0-9_-]{1,40}$/, 'uid');
  t.ok(typeof dashboard.schemaVersion === 'number' && dashboard.schemaVersion >= 36, `schemaVersion ${String(dashboard.schemaVersion)}`);
  t.ok(typeof dashboard.time?.from === 'string' && typeof dashboard.time?.to === 'string', 'time range');
  t.type(dashboard.refresh, 'string', 'refresh');
  t.ok(Array.isArray(dashboard.tags) && dashboard.tags.length > 0, 'tags');

  // The datasource: an import input, a datasource variable that uses it, panels that use the variable.
  const input = dashboard.__inputs?.find((i) => i.type === 'datasource' && i.pluginId === 'prometheus');
  t.ok(input, '__inputs asks for a Prometheus datasource');
  const vars = dashboard.templating?.list ?? [];
  const dsVar = vars.find((v) => v.type === 'datasource');
  t.equal(dsVar?.query, 'prometheus', 'a datasource variable of type prometheus');
  t.equal(dsVar?.name, 'datasource');
  t.ok(JSON.stringify(dsVar?.current ?? {}).includes(`\${${String(input?.name)}}`), 'the datasource variable defaults to the import input');
  for (const name of ['job', 'instance']) {
    const v = vars.find((x) => x.name === name);
    t.equal(v?.type, 'query', `$${name} is a query variable`);
    t.same(v?.datasource, { type: 'prometheus', uid: '${datasource}' }, `$${name} queries the datasource variable`);
  }

  // Every datasource reference anywhere (panels, targets, variables, annotations) uses the
  // variable, except Grafana's built-in annotation source.
  const badRefs: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}[${i}]`));
    if (node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'datasource' && !(path.startsWith('$.annotations') && (v as { type?: unknown })?.type === 'grafana')) {
        const uid = typeof v === 'string' ? v : (v as { uid?: unknown } | null)?.uid;
        if (uid !== '${datasource}' && uid !== '$datasource') badRefs.push(`${path}.datasource = ${JSON.stringify(v)}`);
      }
      walk(v, `${path}.${k}`);
    }
  };
  walk(dashboard, '$');
  t.same(badRefs, [], 'no hard-coded datasource');

  const panels = allPanels();
  t.ok(panels.length >= 20, `${panels.length} panels`);
  const ids = panels.map((p) => p.id);
  t.ok(ids.every((id) => Number.isInteger(id) && (id as number) > 0), 'panel ids are positive integers');
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');

  const problems: string[] = [];
  const rects: { id: unknown; x: number; y: number; w: number; h: number }[] = [];
  const types = new Set<string>();
  for (const p of panels) {
    const name = `panel ${String(p.id)} "${String(p.title)}"`;
    if (typeof p.title !== 'string' || p.title === '') problems.push(`${name}: no title`);
    const g = p.gridPos ?? {};
    const [x, y, w, h] = [g.x, g.y, g.w, g.h];
    if (![x, y, w, h].every((n) => Number.isInteger(n))) {
      problems.push(`${name}: gridPos needs integer x, y, w, h`);
      continue;
    }
    const r = { id: p.id, x: x as number, y: y as number, w: w as number, h: h as number };
    if (r.x < 0 || r.y < 0 || r.w < 1 || r.h < 1 || r.x + r.w > 24) problems.push(`${name}: gridPos ${JSON.stringify(g)} outside the 24-column grid`);
    rects.push(r);
    if (typeof p.type !== 'string') {
      problems.push(`${name}: no type`);
      continue;
    }
    types.add(p.type);
    if (p.type === 'row') continue;
    if (!['timeseries', 'stat', 'bargauge', 'table', 'gauge', 'heatmap'].includes(p.type)) problems.push(`${name}: unexpected type ${p.type}`);
    const targets = p.targets ?? [];
    if (targets.length === 0) problems.push(`${name}: no targets`);
    const refIds = targets.map((x) => x.refId);
    if (new Set(refIds).size !== refIds.length) problems.push(`${name}: duplicate refId`);
    for (const target of targets) {
      if (typeof target.expr !== 'string' || target.expr.trim() === '') problems.push(`${name}: a target without expr`);
      if (typeof target.refId !== 'string' || target.refId === '') problems.push(`${name}: a target without refId`);
    }
  }
  for (let i = 0; i < rects.length; i++) {
    for (let j = i + 1; j < rects.length; j++) {
      const a = rects[i]!;
      const b = rects[j]!;
      if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) problems.push(`panels ${String(a.id)} and ${String(b.id)} overlap`);
    }
  }
  const required = new Set((dashboard.__requires ?? []).filter((r) => r.type === 'panel').map((r) => r.id));
  for (const type of types) if (type !== 'row' && !required.has(type)) problems.push(`panel type ${type} missing from __requires`);
  t.same(problems, [], 'panels are well-formed and do not overlap');
});

/** Variable selections the queries must survive, as Grafana substitutes them. */
const SELECTIONS: Readonly<Record<string, Readonly<Record<string, Selection>>>> = {
  'All of each': { namespace: 'All', job: 'All', pod: 'All', instance: 'All' },
  'one of each': { namespace: ['my-api'], job: ['mtls-sidecar-my-api'], pod: ['my-api-5d8f7c9b4-x2x7q'], instance: ['10.0.0.1:9090'] },
  'several of each': {
    namespace: ['my-api', 'payments'],
    job: ['mtls-sidecar-my-api', 'mtls-sidecar-payments'],
    pod: ['my-api-5d8f7c9b4-x2x7q', 'payments-0'],
    instance: ['10.0.0.1:9090', '[fd00::1]:9090'],
  },
};

/** A variable's query text (Grafana keeps it as a string or under query.query). */
function variableQuery(v: Variable | undefined): unknown {
  return typeof v?.query === 'string' ? v.query : (v?.query as { query?: unknown } | undefined)?.query;
}

t.test('the dashboard filters by namespace, job, pod and instance, each narrowing the next', async (t) => {
  const vars = dashboard.templating?.list ?? [];
  t.same(vars.map((v) => v.name), ['datasource', ...FILTER_VARIABLES], 'a data source variable, then the filters');
  FILTER_VARIABLES.forEach((name, i) => {
    const v = vars.find((x) => x.name === name);
    t.equal(v?.type, 'query', `$${name} is a query variable`);
    t.same(v?.datasource, { type: 'prometheus', uid: '${datasource}' }, `$${name} queries the datasource variable`);
    t.ok(v?.multi === true && v.includeAll === true && v.allValue === '.*', `$${name}: multi-value, with All = .* (which also matches a series without the label)`);
    // mtls_sidecar_build_info: one series per sidecar process, so every target is listed.
    const narrowing = FILTER_VARIABLES.slice(0, i).map((w) => `${w}=~"$${w}"`);
    const expected = `label_values(mtls_sidecar_build_info${narrowing.length ? `{${narrowing.join(', ')}}` : ''}, ${name})`;
    t.equal(variableQuery(v), expected, `$${name} lists the values left by the variables before it`);
    t.equal(v?.definition, expected, `$${name}: definition = query`);
  });
  const titles = allPanels().map((p) => p.title);
  for (const title of ['Connections closed after handshake by reason', 'Build per instance', 'Instances per version']) t.ok(titles.includes(title), `panel "${title}"`);
});

t.test('every dashboard query is valid PromQL once Grafana has substituted the variables', async (t) => {
  const problems: string[] = [];
  for (const [selection, values] of Object.entries(SELECTIONS)) {
    for (const q of dashboardQueries()) {
      const text = substitute(q.expr, values);
      const syntax = syntaxError(parser.parse(text), text);
      if (syntax !== undefined) problems.push(`${selection}: ${q.where}: ${syntax}`);
      if (text.includes('$')) problems.push(`${selection}: ${q.where}: a variable is left in ${text}`);
    }
  }
  t.same(problems, []);
  t.equal(substitute('up{instance=~"$instance"}', { instance: ['[fd00::1]:9090', 'a.b:1'] }), 'up{instance=~"(\\\\[fd00::1\\\\]:9090|a\\\\.b:1)"}', "Grafana's escaping");
});

const REQUIRED_ALERTS = [
  'MtlsHandshakeFailureRatioHigh',
  'MtlsHandshakeRejectReasonSpike',
  'MtlsServerCertExpiringSoon',
  'MtlsCaCertExpiringSoon',
  'MtlsCrlPastNextUpdate',
  'MtlsCrlNotRefreshed',
  'MtlsCrlRefreshFailing',
  'MtlsOcspResponderFailing',
  'MtlsRevocationFeedDown',
  'MtlsUpstreamErrors',
  'MtlsReloadFailing',
  'MtlsSidecarDown',
  'MtlsSidecarAbsent',
  'MtlsSidecarMetricsAbsent',
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const [, heading] of markdown.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    out.add(heading!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return out;
}

/** The `### <AlertName>` sections of RUNBOOKS.md: heading anchor -> section text. */
function runbookSections(markdown: string): Map<string, { heading: string; text: string }> {
  const out = new Map<string, { heading: string; text: string }>();
  const parts = markdown.split(/^### +/m).slice(1);
  for (const part of parts) {
    const heading = part.slice(0, part.indexOf('\n')).trim();
    const text = part.split(/^#{1,3} /m)[0] ?? '';
    for (const anchor of anchors(`### ${heading}`)) out.set(anchor, { heading, text });
  }
  return out;
}

const RUNBOOK_PARTS = ['Meaning', 'Impact', 'First checks', 'Fixes'];

t.test('every alert has for, severity, summary, description and a runbook_url', async (t) => {
  t.ok((ruleFile.groups ?? []).length > 0, 'groups');
  const names = rules.map((r) => r.alert);
  t.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const name of REQUIRED_ALERTS) t.ok(names.includes(name), `alert ${name} exists`);
  const problems: string[] = [];
  for (const r of rules) {
    const name = String(r.alert);
    if (typeof r.alert !== 'string') problems.push(`a rule without alert: ${String(r.record)}`);
    if (typeof r.for !== 'string' || !/^(\d+[smhdwy])+$/.test(r.for)) problems.push(`${name}: for`);
    if (!['critical', 'warning', 'info'].includes(String(r.labels?.severity))) problems.push(`${name}: labels.severity`);
    const a = r.annotations ?? {};
    for (const k of ['summary', 'description', 'runbook_url']) if (typeof a[k] !== 'string' || a[k] === '') problems.push(`${name}: annotations.${k}`);
    const extra = Object.keys(a).filter((k) => !['summary', 'description', 'runbook_url'].includes(k));
    if (extra.length) problems.push(`${name}: unexpected annotations ${extra.join(', ')} (runbook prose belongs in RUNBOOKS.md)`);
    // absent() returns one series without labels: there is nothing to name.
    const labelless = /^\s*absent\(/.test(String(r.expr));
    if (!labelless && !/\{\{ \$(labels\.\w+|value)/.test(`${String(a.summary)} ${String(a.description)}`)) problems.push(`${name}: summary/description use no {{ $labels }} / {{ $value }}`);
  }
  t.same(problems, [], 'alerts are complete');
});

t.test('every runbook_url is the one absolute base plus the anchor of its RUNBOOKS.md section', async (t) => {
  const sections = runbookSections(runbooks);
  const bases = new Set<string>();
  const problems: string[] = [];
  for (const r of rules) {
    const name = String(r.alert);
    const raw = String(r.annotations?.runbook_url);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      problems.push(`${name}: runbook_url ${JSON.stringify(raw)} is not an absolute URL`);
      continue;
    }
    if (!/^https?:$/.test(url.protocol)) problems.push(`${name}: runbook_url is ${url.protocol}, not http(s)`);
    if (url.href !== raw) problems.push(`${name}: runbook_url ${raw} is not in normal form (${url.href})`);
    bases.add(raw.slice(0, raw.length - url.hash.length));
    // The kubernetes-mixin convention: the anchor is the alert name in lower case.
    if (url.hash !== `#${name.toLowerCase()}`) problems.push(`${name}: runbook_url anchor ${url.hash || '(none)'} is not #${name.toLowerCase()}`);
    const section = sections.get(url.hash.slice(1));
    if (section === undefined) {
      problems.push(`${name}: RUNBOOKS.md has no heading with anchor ${url.hash}`);
      continue;
    }
    if (section.heading !== name) problems.push(`${name}: its runbook section is headed "${section.heading}"`);
    for (const part of RUNBOOK_PARTS) if (!section.text.includes(`**${part}**`)) problems.push(`${name}: its runbook section has no **${part}**`);
  }
  t.equal(bases.size, 1, `one runbook base for all alerts (sync-prometheusrule.mjs --runbook-base-url sets it): ${[...bases].join(', ')}`);
  const orphans = [...sections.values()].map((x) => x.heading).filter((h) => !rules.some((r) => r.alert === h));
  t.same(orphans, [], 'every RUNBOOKS.md section is an alert');
  t.same(problems, [], 'runbook links resolve');
});

// ---------------------------------------------------------------------------- promtool

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function promtool(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(PROMTOOL!, args, { cwd, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

const PROMTOOL = onPath('promtool');
const NO_PROMTOOL = 'promtool is not on PATH (Debian: apt-get install --no-install-recommends prometheus)';

if (!PROMTOOL && process.env.CI) {
  t.fail(`${NO_PROMTOOL}; with CI set the promtool checks must run`);
}

t.test('promtool check rules accepts the alert rules', { skip: PROMTOOL ? false : NO_PROMTOOL }, async (t) => {
  const { code, output } = await promtool(['check', 'rules', ALERTS_FILE], DIR);
  t.equal(code, 0, output);
  t.match(output, /SUCCESS: \d+ rules found/);
});

t.test("promtool accepts every dashboard query (as recording rules: Prometheus's parser and type checks)", { skip: PROMTOOL ? false : NO_PROMTOOL }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-dashboard-rules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // As written (the variables inside their strings) and as Grafana sends them.
  const queries = [
    ...dashboardQueries().map((q) => ({ where: q.where, expr: q.dashboard ? interpolate(q.expr) : q.expr })),
    ...Object.entries(SELECTIONS).flatMap(([selection, values]) => dashboardQueries().map((q) => ({ where: `${selection}: ${q.where}`, expr: substitute(q.expr, values) }))),
  ];
  const recording = { groups: [{ name: 'dashboard', rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })) }] };
  await writeFile(join(dir, 'dashboard-rules.yaml'), stringifyYaml(recording));
  const { code, output } = await promtool(['check', 'rules', 'dashboard-rules.yaml'], dir);
  const failed = /dashboard:query_(\d+)/.exec(output)?.[1];
  t.equal(code, 0, failed === undefined ? output : `${queries[Number(failed)]?.where}: ${output}`);
});

t.test("the dashboard's filter selects what the variables say, and All includes targets without Kubernetes labels (promtool)", { skip: PROMTOOL ? false : NO_PROMTOOL }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-dashboard-filter-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const build = 'version="0.1.0",node="v24.0.0",openssl="3.0.0"';
  const series = [
    `mtls_sidecar_build_info{job="mtls-sidecar-my-api",namespace="my-api",pod="my-api-5d8f7c9b4-x2x7q",instance="10.0.0.1:9090",${build}}`,
    `mtls_sidecar_build_info{job="mtls-sidecar-my-api",namespace="my-api",pod="my-api-5d8f7c9b4-k8p2d",instance="[fd00::1]:9090",${build}}`,
    `mtls_sidecar_build_info{job="mtls-sidecar-payments",namespace="payments",pod="payments-0",instance="10.0.1.7:9090",${build}}`,
    // docker-compose or a static scrape config: no namespace, no pod.
    `mtls_sidecar_build_info{job="mtls-sidecar",instance="sidecar:9090",${build}}`,
  ];
  const all: Record<string, Selection> = { namespace: 'All', job: 'All', pod: 'All', instance: 'All' };
  const cases: { name: string; pick: Record<string, Selection>; count: number }[] = [
    { name: 'All', pick: {}, count: 4 },
    { name: 'one namespace', pick: { namespace: ['my-api'] }, count: 2 },
    { name: 'two namespaces', pick: { namespace: ['my-api', 'payments'] }, count: 3 },
    { name: 'one pod', pick: { pod: ['payments-0'] }, count: 1 },
    { name: 'an instance with regex metacharacters', pick: { instance: ['[fd00::1]:9090'] }, count: 1 },
    { name: 'one job outside Kubernetes', pick: { job: ['mtls-sidecar'] }, count: 1 },
  ];
  const unitTest = {
    tests: [
      {
        interval: '1m',
        input_series: series.map((s) => ({ series: s, values: '1x10' })),
        promql_expr_test: cases.map((c) => ({
          expr: `count(mtls_sidecar_build_info{${substitute(DASHBOARD_FILTER, { ...all, ...c.pick })}})`,
          eval_time: '5m',
          exp_samples: [{ labels: '{}', value: c.count }],
        })),
      },
    ],
  };
  await writeFile(join(dir, 'filter-test.yaml'), stringifyYaml(unitTest));
  const { code, output } = await promtool(['test', 'rules', 'filter-test.yaml'], dir);
  t.equal(code, 0, `${cases.map((c) => c.name).join(', ')}\n${output}`);
});

// ------------------------------------------------------------------ alert behaviour (promtool)

/** Series in promtool's expanding notation, one sample a minute from t=0 (time() = 0 then). */
type Series = Record<string, string>;
interface Expect { at: string; alert: string; firing: Record<string, string>[] }
interface Scenario { name: string; series: Series; expect: Expect[] }

const J = 'job="mtls-sidecar"';
const I1 = `${J},instance="10.0.0.1:9090"`;
const I2 = `${J},instance="10.0.0.2:9090"`;
const I3 = `${J},instance="10.0.0.3:9090"`;
const job = { job: 'mtls-sidecar' };
const inst = (n: number): Record<string, string> => ({ ...job, instance: `10.0.0.${n}:9090` });
const hs = (labels: string): string => `mtls_handshakes_total{${I1},${labels}}`;
const ACCEPTED = 'result="accepted",reason="none",tls_version="TLSv1.3"';
const rejected = (reason: string): string => `result="rejected",reason="${reason}",tls_version="TLSv1.3"`;

const SCENARIOS: Scenario[] = [
  {
    name: '9 % of handshakes rejected at 1/s pages',
    series: { [hs(ACCEPTED)]: '0+600x40', [hs(rejected('expired'))]: '0+60x40' },
    expect: [
      { at: '20m', alert: 'MtlsHandshakeFailureRatioHigh', firing: [{ ...job, severity: 'critical' }] },
      { at: '20m', alert: 'MtlsHandshakeRejectReasonSpike', firing: [] },
    ],
  },
  {
    name: 'a quiet night: one rejection every 5 minutes (6 %, under the 0.1/s floor) does not page',
    series: { [hs(ACCEPTED)]: '0+3x40', [hs(rejected('expired'))]: '0+0.2x40' },
    expect: [{ at: '20m', alert: 'MtlsHandshakeFailureRatioHigh', firing: [] }],
  },
  {
    name: 'a reason jumping from 0.1/s to 2/s is a spike; a steady 2/s is not',
    series: {
      [hs(rejected('unknown_ca'))]: '0+6x70 540+120x20',
      [hs(rejected('expired'))]: '0+120x90',
      [hs(ACCEPTED)]: '0+6000x90',
    },
    expect: [{ at: '80m', alert: 'MtlsHandshakeRejectReasonSpike', firing: [{ ...job, reason: 'unknown_ca', severity: 'warning' }] }],
  },
  {
    name: 'a reason never seen before is a spike too',
    series: { [hs(rejected('revoked'))]: '_x70 0+120x20', [hs(ACCEPTED)]: '0+6000x90' },
    expect: [{ at: '78m', alert: 'MtlsHandshakeRejectReasonSpike', firing: [{ ...job, reason: 'revoked', severity: 'warning' }] }],
  },
  {
    name: 'handshake p99 above 1 s',
    series: Object.fromEntries([
      ...[['0.5', '0+0x40'], ['1', '0+0x40'], ['2.5', '0+600x40'], ['+Inf', '0+600x40']].map(([le, v]) => [`mtls_handshake_duration_seconds_bucket{${I1},result="accepted",le="${le}"}`, v!]),
      [`mtls_handshake_duration_seconds_count{${I1},result="accepted"}`, '0+600x40'],
    ]),
    expect: [{ at: '25m', alert: 'MtlsHandshakeLatencyHigh', firing: [{ ...job, severity: 'warning' }] }],
  },
  {
    name: 'serving certificate: 10 days left warns, 2 days left pages, an unset gauge (0) is ignored',
    series: {
      [`mtls_server_cert_expiry_timestamp_seconds{${I1}}`]: `${10 * 86400}+0x30`,
      [`mtls_server_cert_expiry_timestamp_seconds{${I2}}`]: '0+0x30',
      [`mtls_server_cert_expiry_timestamp_seconds{${I3}}`]: `${2 * 86400}+0x30`,
    },
    expect: [
      { at: '20m', alert: 'MtlsServerCertExpiringSoon', firing: [{ ...inst(1), severity: 'warning' }, { ...inst(3), severity: 'warning' }] },
      { at: '20m', alert: 'MtlsServerCertExpiryCritical', firing: [{ ...inst(3), severity: 'critical' }] },
    ],
  },
  {
    name: 'a CA expiring in 20 days alerts once per job, not per replica',
    series: {
      [`mtls_ca_cert_expiry_timestamp_seconds{${I1},ca="Device CA 2024"}`]: `${20 * 86400}+0x30`,
      [`mtls_ca_cert_expiry_timestamp_seconds{${I2},ca="Device CA 2024"}`]: `${20 * 86400}+0x30`,
      [`mtls_ca_cert_expiry_timestamp_seconds{${I1},ca="Device CA 2025"}`]: `${400 * 86400}+0x30`,
    },
    expect: [{ at: '20m', alert: 'MtlsCaCertExpiringSoon', firing: [{ ...job, ca: 'Device CA 2024', severity: 'warning' }] }],
  },
  {
    name: 'a CRL past nextUpdate and not refreshed for 2 h; a fresh one is fine',
    series: {
      [`mtls_crl_next_update_timestamp_seconds{${I1},issuer="Device CA"}`]: '3600+0x200',
      [`mtls_crl_last_refresh_timestamp_seconds{${I1},issuer="Device CA"}`]: '60+0x200',
      [`mtls_crl_next_update_timestamp_seconds{${I1},issuer="Other CA"}`]: '86400+0x200',
      [`mtls_crl_last_refresh_timestamp_seconds{${I1},issuer="Other CA"}`]: '0+60x200',
    },
    expect: [
      { at: '3h', alert: 'MtlsCrlPastNextUpdate', firing: [{ ...inst(1), issuer: 'Device CA', severity: 'critical' }] },
      { at: '3h', alert: 'MtlsCrlNotRefreshed', firing: [{ ...inst(1), issuer: 'Device CA', severity: 'warning' }] },
      { at: '50m', alert: 'MtlsCrlPastNextUpdate', firing: [] },
    ],
  },
  {
    name: 'CRL refresh failing every minute alerts; a single failure does not',
    series: {
      [`mtls_crl_refresh_failures_total{${I1},issuer="Device CA"}`]: '0+1x40',
      [`mtls_crl_refresh_failures_total{${I2},issuer="Device CA"}`]: '0 1+0x40',
    },
    expect: [{ at: '20m', alert: 'MtlsCrlRefreshFailing', firing: [{ ...inst(1), issuer: 'Device CA', severity: 'warning' }] }],
  },
  {
    name: 'OCSP: 20 % errors alerts, a dead responder (no round trips) alerts',
    series: {
      [`mtls_ocsp_errors_total{${I1},kind="timeout"}`]: '0+6x40',
      [`mtls_ocsp_request_duration_seconds_count{${I1}}`]: '0+30x40',
      [`mtls_ocsp_errors_total{job="dead",instance="x",kind="timeout"}`]: '0+6x40',
      [`mtls_ocsp_request_duration_seconds_count{job="dead",instance="x"}`]: '0+0x40',
      [`mtls_ocsp_errors_total{job="healthy",instance="y",kind="timeout"}`]: '0+1x40',
      [`mtls_ocsp_request_duration_seconds_count{job="healthy",instance="y"}`]: '0+600x40',
    },
    expect: [{ at: '25m', alert: 'MtlsOcspResponderFailing', firing: [{ ...job, severity: 'warning' }, { job: 'dead', severity: 'warning' }] }],
  },
  {
    name: 'a feed down for 5 minutes alerts; a reconnect within a minute does not',
    series: {
      [`mtls_revocation_feed_connected{${I1}}`]: '1 0x10',
      [`mtls_revocation_feed_connected{${I2}}`]: '1 0 1x10',
    },
    expect: [
      { at: '4m', alert: 'MtlsRevocationFeedDown', firing: [] },
      { at: '8m', alert: 'MtlsRevocationFeedDown', firing: [{ ...inst(1), severity: 'warning' }] },
    ],
  },
  {
    name: 'connections refused at the cap for 10 minutes alert; a burst does not',
    series: {
      [`mtls_connections_refused_total{${I1},reason="max_connections"}`]: '0+30x30',
      [`mtls_connections_refused_total{${I2},reason="max_connections"}`]: '0 50 50x30',
      [`mtls_connections_refused_total{${I3},reason="device_connections"}`]: '0+30x30',
    },
    expect: [{ at: '20m', alert: 'MtlsConnectionCapReached', firing: [{ ...inst(1), severity: 'warning' }] }],
  },
  {
    name: 'a Redis limits store down for 5 minutes alerts; a blip does not',
    series: {
      [`mtls_limits_store_up{${I1}}`]: '1 0x10',
      [`mtls_limits_store_up{${I2}}`]: '1 0 1x10',
    },
    expect: [
      { at: '4m', alert: 'MtlsLimitsStoreDown', firing: [] },
      { at: '8m', alert: 'MtlsLimitsStoreDown', firing: [{ ...inst(1), severity: 'warning' }] },
    ],
  },
  {
    name: 'upstream refused at 10 % of requests alerts; a trickle of resets does not',
    series: {
      [`mtls_requests_total{${I1},route="api",method="GET",status_class="2xx"}`]: '0+600x40',
      [`mtls_upstream_errors_total{${I1},kind="refused"}`]: '0+60x40',
      [`mtls_upstream_errors_total{${I1},kind="reset"}`]: '0+3x40',
    },
    expect: [{ at: '25m', alert: 'MtlsUpstreamErrors', firing: [{ ...job, kind: 'refused', severity: 'warning' }] }],
  },
  {
    name: 'the first reload failure ever alerts (a labelled counter that appears at 1), then clears',
    series: {
      [`mtls_reloads_total{${I1},result="failure"}`]: '_x10 1+0x40',
      [`mtls_reloads_total{${I1},result="success"}`]: '1+0x50',
      [`mtls_reloads_total{${I2},result="failure"}`]: '0+1x50',
    },
    expect: [
      { at: '20m', alert: 'MtlsReloadFailing', firing: [{ ...inst(1), severity: 'warning' }, { ...inst(2), severity: 'warning' }] },
      { at: '45m', alert: 'MtlsReloadFailing', firing: [{ ...inst(2), severity: 'warning' }] },
    ],
  },
  {
    name: 'a down sidecar pages; another job being down does not',
    series: { [`up{${I1}}`]: '1 1 0x10', [`up{${I2}}`]: '1x12', 'up{job="node",instance="z"}': '0x12' },
    expect: [{ at: '10m', alert: 'MtlsSidecarDown', firing: [{ ...inst(1), severity: 'critical' }] }],
  },
  {
    name: 'no sidecar target at all (only other jobs are scraped) pages after 15 minutes',
    series: { 'up{job="node",instance="z"}': '1x30' },
    expect: [
      { at: '10m', alert: 'MtlsSidecarAbsent', firing: [] },
      { at: '20m', alert: 'MtlsSidecarAbsent', firing: [{ severity: 'critical' }] },
    ],
  },
  {
    name: 'sidecar targets that vanish at 10m: absent once their last sample is 5 minutes old, paging 15 minutes later',
    series: { [`up{${I1}}`]: '1x10', [`up{${I2}}`]: '1x10', 'up{job="node",instance="z"}': '1x60' },
    expect: [
      { at: '10m', alert: 'MtlsSidecarAbsent', firing: [] },
      { at: '25m', alert: 'MtlsSidecarAbsent', firing: [] },
      { at: '35m', alert: 'MtlsSidecarAbsent', firing: [{ severity: 'critical' }] },
    ],
  },
  {
    name: 'a scraped sidecar is not absent, even while it is down',
    series: { [`up{${I1}}`]: '1x30', [`up{${I2}}`]: '0x30' },
    expect: [{ at: '25m', alert: 'MtlsSidecarAbsent', firing: [] }],
  },
  {
    name: 'an instance scraped without the sidecar metrics warns; one exporting them, or down, does not',
    series: {
      [`up{${I1}}`]: '1x30',
      [`mtls_sidecar_build_info{${I1},version="0.1.0",node="v24.0.0",openssl="3.0.0"}`]: '1x30',
      [`up{${I2}}`]: '1x30',
      [`up{${I3}}`]: '0x30',
      'up{job="node",instance="z"}': '1x30',
    },
    expect: [
      { at: '5m', alert: 'MtlsSidecarMetricsAbsent', firing: [] },
      { at: '15m', alert: 'MtlsSidecarMetricsAbsent', firing: [{ ...inst(2), severity: 'warning' }] },
    ],
  },
  {
    name: 'sidecar metrics that stop while the target stays up (a ServiceMonitor moved to the app port) warn',
    series: {
      [`up{${I1}}`]: '1x40',
      [`mtls_sidecar_build_info{${I1},version="0.1.0",node="v24.0.0",openssl="3.0.0"}`]: '1x10',
    },
    expect: [
      { at: '10m', alert: 'MtlsSidecarMetricsAbsent', firing: [] },
      { at: '30m', alert: 'MtlsSidecarMetricsAbsent', firing: [{ ...inst(1), severity: 'warning' }] },
    ],
  },
  {
    name: 'fleet: 10 % of handshakes with < 1 day left for over an hour',
    series: {
      [`mtls_client_cert_remaining_validity_seconds_bucket{${I1},le="86400"}`]: '0+10x120',
      [`mtls_client_cert_remaining_validity_seconds_count{${I1}}`]: '0+100x120',
    },
    expect: [{ at: '100m', alert: 'MtlsClientCertsNearExpiry', firing: [{ ...job, severity: 'warning' }] }],
  },
];

t.test('each alert fires on the series it is meant for (promtool test rules)', { skip: PROMTOOL ? false : NO_PROMTOOL }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-alert-tests-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // promtool compares rendered annotations verbatim; the behaviour under test is expr, for and
  // labels, so the replayed copy drops annotations (check rules above validates their templates).
  const stripped = {
    groups: (ruleFile.groups ?? []).map((g) => ({ ...g, rules: (g.rules ?? []).map(({ annotations: _annotations, ...rest }) => rest) })),
  };
  await writeFile(join(dir, 'rules.yaml'), stringifyYaml(stripped));
  const tested = new Set(SCENARIOS.flatMap((s) => s.expect.map((e) => e.alert)));
  const untested = rules.map((r) => String(r.alert)).filter((name) => !tested.has(name));
  t.same(untested, [], 'every alert has a scenario');
  for (const s of SCENARIOS) {
    const unitTest = {
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          name: s.name,
          interval: '1m',
          input_series: Object.entries(s.series).map(([series, values]) => ({ series, values })),
          alert_rule_test: s.expect.map((e) => ({ eval_time: e.at, alertname: e.alert, exp_alerts: e.firing.map((labels) => ({ exp_labels: labels })) })),
        },
      ],
    };
    const file = `test-${SCENARIOS.indexOf(s)}.yaml`;
    await writeFile(join(dir, file), stringifyYaml(unitTest));
    const { code, output } = await promtool(['test', 'rules', file], dir);
    t.equal(code, 0, `${s.name}${code === 0 ? '' : `\n${output}`}`);
  }
});
