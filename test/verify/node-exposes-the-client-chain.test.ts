// The path builder needs the intermediates a client sends, and Node offers them only through
// getPeerX509Certificate().issuerCertificate on the server side. Node 24.21.0 and 26.8.x lost them
// (nodejs/node#65579): every client whose issuing CA is not configured was then refused
// unknown_ca. This names that failure directly instead of leaving it to ~250 integration failures.
import { readFileSync } from 'node:fs';
import { createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { presentedCertificates } from '../../src/verify/index.js';
import { createTestPki } from '../fixtures/pki.js';

const pki = await createTestPki();
t.teardown(() => pki.cleanup());

t.test(`Node ${process.version} shows a TLS server the intermediate its client sent`, async (t) => {
  const client = await pki.client({ deviceId: 'chain-probe' });
  const seen = new Promise<string[]>((resolve) => {
    const server = createServer(
      { cert: pki.serverCertPem, key: readFileSync(pki.serverKeyFile, 'utf8'), ca: [pki.rootPem], requestCert: true, rejectUnauthorized: true },
      (socket: TLSSocket) => {
        resolve(presentedCertificates(socket.getPeerX509Certificate()).map((c) => c.subject));
        socket.end();
        server.close();
      },
    );
    server.listen(0, '127.0.0.1', () => {
      const c = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
      c.on('error', () => undefined);
      c.on('close', () => undefined);
      c.resume();
    });
  });
  const subjects = await seen;
  t.ok(subjects.some((s) => s.includes('Test Device Issuing CA')), `the client-sent intermediate is visible (saw: ${JSON.stringify(subjects)})`);
});
