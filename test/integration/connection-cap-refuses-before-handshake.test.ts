// limits.maxConnections: past the cap a new TCP connection is closed before its TLS handshake
// (no certificate is even looked at), counted as max_connections; a closed connection makes room.
import tls from 'node:tls';
import t from 'tap';
import { openKeepAlive, sleep, type KaConn } from '../fixtures/keep-alive.js';
import { sampleValue, scrapeMetrics } from '../fixtures/metrics-text.js';
import { startSidecarWithEcho } from '../fixtures/sidecar.js';

const { pki, sc } = await startSidecarWithEcho(t, { limits: { maxConnections: 2 } });
const device = await pki.client({ deviceId: 'cap-device' });

/** A TLS handshake's outcome: 'ok' or the error code. */
function handshake(): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: sc.port, servername: 'localhost', ca: pki.rootPem, cert: device.chainPem, key: device.keyPem }, () => {
      s.destroy();
      resolve('ok');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

t.test('the third connection is closed before its handshake; room comes back', async (t) => {
  const held: KaConn[] = [];
  t.teardown(() => held.forEach((c) => c.close()));
  for (let i = 0; i < 2; i++) {
    held.push(await openKeepAlive({ port: sc.port, ca: pki.rootPem, cert: device.chainPem, key: device.keyPem }));
    t.equal((await held[i]!.get()).status, 200);
  }
  t.not(await handshake(), 'ok', 'no handshake past the cap');
  let text = await scrapeMetrics(sc.adminUrl);
  t.equal(sampleValue(text, 'mtls_connections_refused_total', { reason: 'max_connections' }), 1);
  t.equal(sampleValue(text, 'mtls_connections_max'), 2, 'the cap is exported');
  t.equal(sampleValue(text, 'mtls_handshakes_total', { result: 'rejected', reason: 'tls_error', tls_version: 'none' }), 0, 'not a handshake failure: there was no handshake');
  held.pop()!.close();
  await sleep(100);
  t.equal(await handshake(), 'ok', 'a closed connection makes room');
  text = await scrapeMetrics(sc.adminUrl);
  t.equal(sampleValue(text, 'mtls_connections_refused_total', { reason: 'max_connections' }), 1);
});
