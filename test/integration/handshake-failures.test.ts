// Failures inside the TLS handshake itself: a silent client (handshake_timeout), garbage bytes and
// too-old protocol versions (tls_error), TLS 1.3-only mode, and refused renegotiation.
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { call } from '../fixtures/client.js';
import { startSidecarWithEcho, startTestSidecar } from '../fixtures/sidecar.js';

const { pki, echo, sc } = await startSidecarWithEcho(t, { tls: { handshakeTimeoutMs: 300 } });
const client = await pki.client();

const waitFor = async (pred: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return pred();
};

t.test('a client that never finishes its handshake: handshake_timeout', async (t) => {
  const s = net.connect(sc.port, '127.0.0.1');
  const closed = new Promise((r) => s.on('close', r));
  s.on('error', () => undefined);
  await closed;
  t.ok(await waitFor(() => sc.logs.some((l) => l.event === 'handshake_failed' && l.reason === 'handshake_timeout')));
});

t.test('garbage instead of a ClientHello: tls_error', async (t) => {
  const s = net.connect(sc.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  s.on('error', () => undefined);
  await new Promise((r) => s.on('close', r));
  t.ok(await waitFor(() => sc.logs.some((l) => l.event === 'handshake_failed' && l.reason === 'tls_error')));
});

t.test('TLS 1.1 is refused; TLS 1.2 and 1.3 are accepted', async (t) => {
  const old = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
  t.ok(old.error, `TLS 1.1 refused (${old.error?.code})`);
  for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
    const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, minVersion: v, maxVersion: v });
    t.equal(res.status, 200, v);
  }
});

t.test('minVersion TLSv1.3 refuses TLS 1.2', async (t) => {
  const only13 = await startTestSidecar(pki, echo.url, { tls: { minVersion: 'TLSv1.3' } });
  t.teardown(() => only13.close());
  const res = await call({ port: only13.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, maxVersion: 'TLSv1.2' });
  t.ok(res.error, `refused (${res.error?.code})`);
  t.equal((await call({ port: only13.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem })).status, 200);
});

t.test('client-initiated renegotiation is refused', async (t) => {
  const s = tls.connect({ host: '127.0.0.1', port: sc.port, servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, maxVersion: 'TLSv1.2' });
  await new Promise((r) => s.once('secureConnect', r));
  const outcome = await new Promise<string>((resolve) => {
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    s.on('close', () => resolve('closed'));
    const ok = s.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err ? `error ${(err as NodeJS.ErrnoException).code ?? err.message}` : 'renegotiated'));
    if (!ok) resolve('not attempted');
  });
  s.destroy();
  t.not(outcome, 'renegotiated', `renegotiation did not succeed (${outcome})`);
  t.equal((await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem })).status, 200, 'still serving');
});
