// Two devices whose ids differ must never reach the upstream under the same X-Device-Id (issue 13):
// `urn:device:a,b` and `urn:device:a%2Cb` once both arrived as `a%2Cb`. Every value the upstream
// gets percent-decodes back to the id as issued.
import t from 'tap';
import { call } from '../fixtures/client.js';
import { startSidecarWithEcho } from '../fixtures/sidecar.js';

const { pki, sc } = await startSidecarWithEcho(t);

async function seenBy(id: string, dns: string[] = []): Promise<Record<string, string>> {
  const client = await pki.client({ deviceId: id, subject: 'CN=collide,O=Test Devices', san: { uri: [`urn:device:${id}`], dns } });
  const res = await call({ port: sc.port, ca: pki.rootPem, cert: client.chainPem, key: client.keyPem });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${res.body ?? res.error?.message}`);
  return res.json.headers as Record<string, string>;
}

t.test('ids that differ only by an escape get different X-Device-Id values', async (t) => {
  const table = [
    ['a,b', 'a%2Cb'],
    ['a;b', 'a%3Bb'],
    ['50%', '50%25'],
  ] as const;
  for (const [one, other] of table) {
    const a = await seenBy(one);
    const b = await seenBy(other);
    t.not(a['x-device-id'], b['x-device-id'], `${one} vs ${other}`);
    t.equal(decodeURIComponent(a['x-device-id']!), one, 'decodes to the id as issued');
    t.equal(decodeURIComponent(b['x-device-id']!), other, 'decodes to the id as issued');
    t.equal(decodeURIComponent(b['x-client-cert-san-uri']!), `urn:device:${other}`, 'SAN URI list items decode too');
  }
});

t.test('SAN lists: each item decodes on its own after splitting on ", "', async (t) => {
  const h = await seenBy('list%2C1', ['a.example', 'b.example']);
  t.equal(h['x-client-cert-san-uri'], 'urn:device:list%252C1');
  t.same(h['x-client-cert-san-dns']!.split(', ').map(decodeURIComponent), ['a.example', 'b.example']);
});
