// Telemetry must not break the data path: its hooks run in socket and request events, where a
// throw is an uncaught exception that takes the whole sidecar down. A real sidecar whose metrics
// refuse every update (an injected fault) still answers its clients, and says what failed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/index.js';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { createMetrics } from '../../src/metrics.js';
import { startSidecar } from '../../src/serve/index.js';
import { call } from '../fixtures/client.js';
import { createTestPki } from '../fixtures/pki.js';
import { baseConfig, type LogRecord } from '../fixtures/sidecar.js';

const pki = await createTestPki();
const echo = await startEchoUpstream();
t.teardown(async () => {
  await echo.close();
  pki.cleanup();
});

t.test('a sidecar whose metrics throw keeps serving and logs the failing hooks', async (t) => {
  const metrics = createMetrics();
  const refuse = () => {
    throw new Error('injected: metric refused the update');
  };
  // The handshake counter (verdict hook) and the request counter (requestDone hook).
  metrics.handshakes.inc = refuse;
  metrics.requests.inc = refuse;
  const logs: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogRecord);
      cb();
    },
  });
  const configFile = join(pki.dir, 'telemetry-faults.yaml');
  writeFileSync(configFile, stringify(baseConfig(pki, echo.url)));
  const sidecar = await startSidecar(loadConfigFile(configFile), { logger: pino({ level: 'info' }, sink), metrics });
  t.teardown(() => sidecar.close(1_000));

  const client = await pki.client();
  for (const path of ['/first', '/second']) {
    const res = await call({ port: sidecar.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, path });
    t.equal(res.status, 200, `${path}: answered`);
    t.equal((res.json as { url?: string }).url, path, `${path}: forwarded`);
  }
  const failed = logs.filter((l) => l.event === 'telemetry_failed').map((l) => l.hook);
  t.ok(failed.includes('verdict'), 'the verdict hook failure is logged');
  t.ok(failed.includes('requestDone'), 'the requestDone hook failure is logged');
});
