/**
 * The benchmark upstream: a minimal keep-alive HTTP/1.1 server on 127.0.0.1 that answers every
 * request with the same small body. Started as its own process by side-by-side.mjs, so its CPU
 * is a process of its own that the kernel schedules like the others, not a share of the client's
 * or the target's event loop.
 *
 *   node test/bench/upstream.mjs [port]      # prints {"port":N} on stdout once listening
 *
 * It is deliberately not node:http: it parses nothing but the end of each request head and
 * writes a prebuilt response, so the ceiling it sets is as high as this machine allows and the
 * CPU it takes away from the target is small. It only understands requests without a body (GET),
 * which is all the benchmark sends; anything else gets the connection closed.
 */
import net from 'node:net';

const BODY = Buffer.from('{"ok":true,"from":"bench-upstream","pad":"0123456789abcdef0123456789abcdef"}\n');
const RESPONSE = Buffer.concat([
  Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=300\r\n\r\n`, 'latin1'),
  BODY,
]);
const END = Buffer.from('\r\n\r\n');

const server = net.createServer({ noDelay: true }, (socket) => {
  // The last 3 bytes of an unfinished head, so a head end split across chunks is still found.
  let tail = Buffer.alloc(0);
  let pending = 0; // bytes of the current unfinished head
  socket.on('data', (chunk) => {
    const data = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    let count = 0;
    let last = -1;
    for (let at = data.indexOf(END); at !== -1; at = data.indexOf(END, at + 4)) {
      count++;
      last = at;
    }
    const rest = last === -1 ? data : data.subarray(last + 4);
    pending = last === -1 ? pending + chunk.length : rest.length;
    // A request body would be misread as a head: there are none in the benchmark; refuse them.
    if (pending > 65536) return socket.destroy();
    tail = Buffer.from(rest.subarray(Math.max(0, rest.length - 3)));
    if (count === 1) socket.write(RESPONSE);
    else if (count > 1) socket.write(Buffer.concat(Array(count).fill(RESPONSE)));
  });
  socket.on('error', () => socket.destroy());
});
server.maxConnections = 100_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', 4096, () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// The benchmark closes our stdin when it ends; never outlive it.
process.stdin.on('end', () => process.exit(0)).resume();
