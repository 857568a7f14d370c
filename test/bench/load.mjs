/**
 * The benchmark's load generator: a lean HTTP/1.1 keep-alive client on raw `net`/`tls` sockets
 * (not `https.request`) that presents a client certificate. wrk cannot present one, and a Node
 * client built on the http module would be the bottleneck before the target is.
 *
 *   node test/bench/load.mjs --port N [--tls --cert F --key F --ca F] [--connections 32]
 *        [--warmup 1] [--duration 5] [--start-at EPOCH_MS]             closed loop (peak req/s)
 *        ... --rate R                                                   open loop, R req/s
 *        ... --idle N [--handshakes 64]                                 hold N idle connections
 *
 * Closed loop: every connection sends one request, waits for the whole response, sends the next
 * (no pipelining). Responses completed inside the measuring window [start+warmup, +duration] are
 * counted and their latency (write of the request to the last byte of the response) recorded.
 *
 * Open loop (--rate): requests are due at fixed times (R per second, however fast the target
 * answers); a due request goes out on an idle connection, or waits for one. Two latencies are
 * recorded: `service` (write to response) and `corrected` (due time to response: it also holds
 * queueing and the ~1 ms granularity of the dispatch timer, and does not hide a stall the way a
 * closed loop does).
 *
 * Idle (--idle N): opens N connections (at most --handshakes handshakes at a time), sends one
 * request on each so the target has surely accepted and verified it, prints
 * {"mode":"idle","established":n,...} and then holds them idle until stdin closes or SIGTERM.
 *
 * The request bytes are built once; a response is parsed only for its status and Content-Length.
 * One JSON line is written to stdout at the end: counts, errors, latency histogram buckets (1 %
 * wide, in microseconds, so several processes' results can be merged exactly), and this
 * process's own CPU time and event-loop utilisation over the window (how close the client itself
 * was to being the bottleneck).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    tls: { type: 'boolean', default: false },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    servername: { type: 'string', default: 'localhost' },
    path: { type: 'string', default: '/bench' },
    connections: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5' },
    'start-at': { type: 'string' },
    rate: { type: 'string' },
    idle: { type: 'string' },
    handshakes: { type: 'string', default: '64' },
    'idle-timeout': { type: 'string', default: '120' },
  },
});
if (!opt.port) throw new Error('--port is required');

const port = Number(opt.port);
const connections = Number(opt.connections);
const tlsOptions = opt.tls
  ? {
      host: opt.host,
      port,
      servername: opt.servername,
      // One context for every connection: passing cert/key/ca to each tls.connect would parse
      // them and build a CA store per connection, which costs more than the handshake.
      secureContext: tls.createSecureContext({ cert: readFileSync(opt.cert), key: readFileSync(opt.key), ca: readFileSync(opt.ca) }),
      // One full handshake per connection; a keep-alive run does not measure resumption.
      sessionTimeout: 0,
    }
  : undefined;
const REQUEST = Buffer.from(`GET ${opt.path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: mtls-sidecar-bench\r\nAccept: */*\r\n\r\n`, 'latin1');
const END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

// --- a mergeable latency histogram: bucket i holds values in (1.01^(i-1), 1.01^i] µs -----------
const LOG_STEP = Math.log(1.01);
const BUCKETS = 2400; // up to ~23 s
function createHistogram() {
  const counts = new Uint32Array(BUCKETS);
  let n = 0;
  let sum = 0;
  let max = 0;
  return {
    record(us) {
      const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_STEP));
      counts[i]++;
      n++;
      sum += us;
      if (us > max) max = us;
    },
    toJSON() {
      const sparse = [];
      for (let i = 0; i < BUCKETS; i++) if (counts[i]) sparse.push([i, counts[i]]);
      return { n, sumUs: sum, maxUs: max, buckets: sparse };
    },
  };
}

// --- connections -------------------------------------------------------------------------------
const now = () => performance.now();
const epochToPerf = (ms) => ms - performance.timeOrigin;
const startPerf = opt['start-at'] ? epochToPerf(Number(opt['start-at'])) : now();
const warmEnd = startPerf + Number(opt.warmup) * 1000;
const endPerf = warmEnd + Number(opt.duration) * 1000;

const all = new Set();
const errors = {};
const countError = (what) => (errors[what] = (errors[what] ?? 0) + 1);

/**
 * Opens one connection. `onResponse(conn, status)` is called for each complete response;
 * `onReady(conn)` once the TLS (or TCP) handshake is done; `onGone(conn)` if it closes.
 */
function openConnection({ onReady, onResponse, onGone }) {
  const socket = tlsOptions ? tls.connect(tlsOptions) : net.connect({ host: opt.host, port });
  socket.setNoDelay(true);
  const conn = { socket, busy: false, sentAt: 0, dueAt: 0, head: null, bodyLeft: -1, status: 0, alive: true };
  all.add(conn);
  socket.once(tlsOptions ? 'secureConnect' : 'connect', () => onReady(conn));
  socket.on('data', (chunk) => {
    let data = chunk;
    while (data.length) {
      if (conn.bodyLeft > 0) {
        const take = Math.min(conn.bodyLeft, data.length);
        conn.bodyLeft -= take;
        data = data.subarray(take);
        if (conn.bodyLeft === 0) complete(conn);
        continue;
      }
      if (conn.head) data = Buffer.concat([conn.head, data]);
      const end = data.indexOf(END);
      if (end === -1) {
        conn.head = Buffer.from(data);
        if (conn.head.length > 65536) fail(conn, 'response_head_too_large');
        return;
      }
      conn.head = null;
      const head = data.toString('latin1', 0, end);
      conn.status = Number(head.slice(9, 12));
      const m = CONTENT_LENGTH.exec(head);
      if (!m) return fail(conn, 'no_content_length');
      conn.bodyLeft = Number(m[1]);
      data = data.subarray(end + 4);
      if (conn.bodyLeft === 0) complete(conn);
    }
  });
  function complete(c) {
    c.bodyLeft = -1;
    c.busy = false;
    onResponse(c, c.status);
  }
  function fail(c, what) {
    countError(what);
    c.socket.destroy();
  }
  socket.on('error', (err) => countError(err.code ?? 'socket_error'));
  socket.on('close', () => {
    conn.alive = false;
    all.delete(conn);
    if (conn.busy) countError('closed_mid_request');
    onGone?.(conn);
  });
  return conn;
}

function send(conn, dueAt) {
  conn.busy = true;
  conn.sentAt = now();
  conn.dueAt = dueAt ?? conn.sentAt;
  conn.socket.write(REQUEST);
}

function finish(result) {
  for (const c of all) c.socket.destroy();
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

/** CPU and event-loop use of this process between two marks. */
function usageMarks() {
  let cpu0;
  let elu0;
  return {
    start() {
      cpu0 = process.cpuUsage();
      elu0 = performance.eventLoopUtilization();
    },
    end(seconds) {
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0);
      return { clientCpuSeconds: (cpu.user + cpu.system) / 1e6, clientCpuCores: (cpu.user + cpu.system) / 1e6 / seconds, clientEventLoopUtilization: elu.utilization };
    },
  };
}

function schedule(at, fn) {
  setTimeout(fn, Math.max(0, at - now()));
}

// --- closed loop -------------------------------------------------------------------------------
function runClosedLoop() {
  const hist = createHistogram();
  const usage = usageMarks();
  let count = 0;
  let non2xx = 0;
  let running = true;
  const onResponse = (c, status) => {
    const t = now();
    if (t >= warmEnd && t <= endPerf) {
      count++;
      hist.record((t - c.sentAt) * 1000);
      if (status < 200 || status > 299) non2xx++;
    }
    if (running) send(c);
  };
  const spawn = () =>
    openConnection({
      onReady: (c) => running && send(c),
      onResponse,
      onGone: () => running && setTimeout(spawn, 10), // replace a lost connection, gently
    });
  schedule(startPerf, () => {
    for (let i = 0; i < connections; i++) spawn();
  });
  schedule(warmEnd, () => usage.start());
  schedule(endPerf, () => {
    running = false;
    const seconds = (endPerf - warmEnd) / 1000;
    finish({ mode: 'closed', connections, seconds, responses: count, rps: count / seconds, non2xx, errors, latency: hist, ...usage.end(seconds) });
  });
}

// --- open loop ---------------------------------------------------------------------------------
function runOpenLoop(rate) {
  const service = createHistogram();
  const corrected = createHistogram();
  const usage = usageMarks();
  const idle = [];
  const queue = []; // due times of requests waiting for a connection
  let qHead = 0;
  let issued = 0;
  let count = 0;
  let non2xx = 0;
  let lagSum = 0;
  let running = true;
  const interval = 1000 / rate;
  const dispatch = (c) => {
    if (qHead < queue.length) {
      const due = queue[qHead++];
      if (qHead > 4096 && qHead * 2 > queue.length) queue.splice(0, qHead), (qHead = 0);
      send(c, due);
    } else idle.push(c);
  };
  const onResponse = (c, status) => {
    const t = now();
    if (c.dueAt >= warmEnd && t <= endPerf) {
      count++;
      service.record((t - c.sentAt) * 1000);
      corrected.record((t - c.dueAt) * 1000);
      lagSum += c.sentAt - c.dueAt;
      if (status < 200 || status > 299) non2xx++;
    }
    if (running) dispatch(c);
  };
  const spawn = () => openConnection({ onReady: (c) => running && dispatch(c), onResponse, onGone: (c) => {
    const i = idle.indexOf(c);
    if (i !== -1) idle.splice(i, 1);
    if (running) setTimeout(spawn, 10);
  } });
  // Connections are opened during the first half of the warm-up; requests start at its middle.
  const firstDue = startPerf + (warmEnd - startPerf) / 2;
  const tick = () => {
    if (!running) return;
    const t = now();
    const due = Math.floor((Math.min(t, endPerf) - firstDue) / interval);
    while (issued < due) queue.push(firstDue + issued++ * interval);
    while (idle.length && qHead < queue.length) dispatch(idle.pop());
    if (t < endPerf) setTimeout(tick, 1);
  };
  schedule(startPerf, () => {
    for (let i = 0; i < connections; i++) spawn();
  });
  schedule(firstDue, tick);
  schedule(warmEnd, () => usage.start());
  schedule(endPerf, () => {
    running = false;
    const seconds = (endPerf - warmEnd) / 1000;
    const wanted = Math.floor((endPerf - warmEnd) / interval);
    finish({
      mode: 'open', rate, connections, seconds, wanted, responses: count, rps: count / seconds, non2xx, errors,
      backlogAtEnd: queue.length - qHead, meanDispatchLagMs: count ? lagSum / count : 0,
      latency: service, correctedLatency: corrected, ...usage.end(seconds),
    });
  });
}

// --- idle connections --------------------------------------------------------------------------
function runIdle(total) {
  const parallel = Number(opt.handshakes);
  const t0 = now();
  let started = 0;
  let established = 0;
  let failed = 0;
  let reported = false;
  const settled = () => established + failed;
  const report = () => {
    if (reported) return;
    reported = true;
    const mem = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ mode: 'idle', wanted: total, established, failed, open: all.size, seconds: (now() - t0) / 1000, errors, clientRssBytes: mem.rss })}\n`);
  };
  const next = () => {
    while (started < total && started - settled() < parallel) {
      started++;
      let done = false;
      const settle = (ok) => {
        if (done) return;
        done = true;
        if (ok) established++;
        else failed++;
        if (settled() === total) report();
        else setImmediate(next);
      };
      openConnection({
        onReady: (c) => send(c),
        onResponse: (c, status) => settle(status === 200),
        onGone: () => settle(false),
      });
    }
  };
  next();
  setTimeout(report, Number(opt['idle-timeout']) * 1000).unref();
  const stop = () => {
    for (const c of all) c.socket.destroy();
    process.exit(0);
  };
  process.stdin.on('end', stop).resume();
  process.on('SIGTERM', stop);
}

process.on('SIGINT', () => process.exit(130));
if (opt.idle) runIdle(Number(opt.idle));
else if (opt.rate) runOpenLoop(Number(opt.rate));
else runClosedLoop();
