// A resumed TLS session (tickets, TLS 1.2 and 1.3) carries the same verified identity, a session
// that had no certificate never becomes verified by resuming, and a certificate that expired since
// the full handshake is refused on resumption.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { call } from '../fixtures/client.js';
import { startSidecarWithEcho } from '../fixtures/sidecar.js';

const { pki, echo, sc } = await startSidecarWithEcho(t, { clientAuth: { failureMode: 'http' } });

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  const v = { minVersion: version, maxVersion: version };
  t.test(`${version}: resumption with a certificate keeps the identity`, async (t) => {
    const client = await pki.client({ deviceId: `resume-${version}` });
    const first = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, ...v });
    t.equal(first.status, 200);
    t.equal(first.reused, false);
    t.ok(first.session, 'got a session ticket');
    // The resuming client offers no certificate: on resumption none is sent; the server must take
    // the identity from the session, and only from it.
    const second = await call({ port: sc.port, ca: pki.rootPem, session: first.session, ...v });
    t.equal(second.reused, true, 'the session was resumed');
    t.equal(second.status, 200);
    t.equal(second.json?.headers['x-device-id'], `resume-${version}`);
    t.equal(second.json?.headers['x-client-cert-fingerprint-sha256'], first.json?.headers['x-client-cert-fingerprint-sha256']);
  });

  t.test(`${version}: a session without a certificate stays unverified when resumed`, async (t) => {
    const before = echo.requests();
    const first = await call({ port: sc.port, ca: pki.rootPem, ...v });
    t.equal(first.status, 401);
    t.ok(first.session);
    const client = await pki.client();
    // Even offering a certificate now changes nothing: a resumed handshake does not authenticate.
    const second = await call({ port: sc.port, ca: pki.rootPem, session: first.session, cert: client.chainPem, key: client.keyPem, ...v });
    if (second.reused) {
      t.equal(second.status, 401, 'resumed: still no certificate');
      t.equal(second.json?.reason, 'no_certificate');
    } else {
      t.equal(second.status, 200, 'not resumed: a full handshake with the certificate');
    }
    const third = await call({ port: sc.port, ca: pki.rootPem, session: first.session, ...v });
    t.equal(third.reused, true);
    t.equal(third.status, 401);
    t.equal(echo.requests(), before + (second.reused ? 0 : 1), 'no unverified request reached the upstream');
  });
}

t.test('a certificate that expires after the full handshake is refused on resumption', async (t) => {
  const client = await pki.client({ notAfter: new Date(Date.now() + 2_500) });
  const first = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem, maxVersion: 'TLSv1.3' });
  t.equal(first.status, 200);
  await sleep(3_000);
  const before = echo.requests();
  const second = await call({ port: sc.port, ca: pki.rootPem, session: first.session, maxVersion: 'TLSv1.3' });
  t.equal(second.reused, true);
  t.equal(second.status, 403);
  t.equal(second.json?.reason, 'expired');
  t.equal(echo.requests(), before);
});
