// Which access-log flag each upstream failure gets: the timeouts split by where they struck.
import t from 'tap';
import { upstreamFlag } from '../../src/proxy/response-flags.js';

const err = (code?: string) => Object.assign(new Error('x'), code === undefined ? {} : { code });

t.test('upstream failures map to Envoy-style flags', async (t) => {
  t.equal(upstreamFlag('refused', err('ECONNREFUSED')), 'UF');
  t.equal(upstreamFlag('dns', err('ENOTFOUND')), 'UF');
  t.equal(upstreamFlag('tls', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'UF');
  t.equal(upstreamFlag('timeout', err('UND_ERR_CONNECT_TIMEOUT')), 'UF', 'the connect timeout: no connection was made');
  t.equal(upstreamFlag('timeout', err('ETIMEDOUT')), 'UF');
  t.equal(upstreamFlag('timeout', err('UND_ERR_HEADERS_TIMEOUT')), 'UT');
  t.equal(upstreamFlag('timeout', err('UND_ERR_BODY_TIMEOUT')), 'UT');
  t.equal(upstreamFlag('reset', err('ECONNRESET')), 'UC');
  t.equal(upstreamFlag('reset', err('UND_ERR_SOCKET')), 'UC');
  t.equal(upstreamFlag('other', err()), 'UPE');
});
