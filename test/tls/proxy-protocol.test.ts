// The PROXY protocol front on its own: what it hands to the data server is exactly the bytes after
// the header, whichever way they were split, and the client address it reports comes only from a
// trusted header. The data server here is an EventEmitter standing in for the https.Server.
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import t from 'tap';
import { createProxyProtocolListener, type ProxyRefusal } from '../../src/tls/index.js';

async function front(trustedSources: string[], cap?: number) {
  const dataServer = Object.assign(new EventEmitter(), cap === undefined ? {} : { maxConnections: cap, dropMaxConnection: true });
  const refused: ProxyRefusal[] = [];
  const listener = createProxyProtocolListener(dataServer as unknown as TlsServer, { trustedSources, headerTimeoutMs: 1_000 }, {
    accepted: () => {},
    refused: (reason) => refused.push(reason),
  });
  await new Promise<void>((r) => listener.server.listen(0, '127.0.0.1', r));
  const port = (listener.server.address() as net.AddressInfo).port;
  t.teardown(() => new Promise((r) => listener.server.close(r)));
  /** Writes `parts` (a pause between each) and resolves with the socket handed over and every byte it then yields. */
  async function send(parts: Array<string | Buffer>): Promise<{ address: string | undefined; bytes: string }> {
    const handed = once(dataServer, 'connection') as Promise<[net.Socket]>;
    const client = net.connect(port, '127.0.0.1');
    for (const part of parts) {
      client.write(part);
      await new Promise((r) => setTimeout(r, 20));
    }
    client.end();
    const [socket] = await handed;
    let bytes = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (bytes += c));
    socket.resume(); // handed over paused, as the TLS layer expects
    await once(socket, 'end');
    socket.destroy();
    return { address: listener.clientAddressOf(socket), bytes };
  }
  return { send, refused, listener, port, dataServer };
}

t.test('a trusted header: its client, and exactly the bytes after it', async (t) => {
  const f = await front(['127.0.0.1']);
  const header = 'PROXY TCP4 198.51.100.3 127.0.0.1 5000 443\r\n';
  t.same(await f.send([`${header}\x16\x03\x01hello`]), { address: '198.51.100.3', bytes: '\x16\x03\x01hello' }, 'header and data in one write');
  t.same(await f.send([header.slice(0, 7), header.slice(7, 30), header.slice(30) + 'AB', 'CD']), { address: '198.51.100.3', bytes: 'ABCD' }, 'split across writes');
  t.same(await f.send([header]), { address: '198.51.100.3', bytes: '' }, 'nothing after it');
  t.same(f.refused, []);
});

t.test('an untrusted source: handed over untouched as itself; a header from it is refused', async (t) => {
  const f = await front(['10.0.0.0/8']);
  t.same(await f.send(['\x16\x03', '\x01hello']), { address: '127.0.0.1', bytes: '\x16\x03\x01hello' });
  const client = net.connect(f.port, '127.0.0.1');
  client.write('PROXY TCP4 10.1.1.1 127.0.0.1 1 2\r\n');
  await once(client, 'close');
  t.same(f.refused, ['untrusted_source']);
});

t.test("the data server's connection cap applies at the front, and its drops are reported on the data server", async (t) => {
  const f = await front(['127.0.0.1'], 1);
  const drops: unknown[] = [];
  (f.dataServer as EventEmitter).on('drop', (d) => drops.push(d));
  const held = net.connect(f.port, '127.0.0.1');
  await once(held, 'connect');
  await new Promise((r) => setTimeout(r, 50));
  const over = net.connect(f.port, '127.0.0.1');
  over.on('error', () => {});
  await once(over, 'close');
  t.equal(drops.length, 1, 'the second connection was dropped and reported');
  held.destroy();
});
