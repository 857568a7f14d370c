// The device CA's three listeners route from one table each: a path no route has is a 404, a path
// served under other methods is a 405 naming them in Allow, both with the JSON error body clients
// parse. An admin POST to anything but /v1/admin/codes or /v1/admin/revoke revokes nothing. Metric
// labels stay in the process: no answer carries an x-error-code header, and every refusal is
// still counted under its error code.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createCsr, generateKey } from '../../src/pki/index.js';
import { call, type CallResult } from '../fixtures/client.js';
import { startTestCa, type Reply } from '../fixtures/device-ca.js';
import { verifyPinSet } from '../fixtures/pin-set-verifier.js';

const run = promisify(execFile);
const ca = await startTestCa((c) => {
  c.enroll.rateLimit = { perMinute: 100_000, burst: 10_000 };
});
t.teardown(() => ca.close());

const enrollPort = Number(new URL(ca.ca.enrollUrl).port);
const onEnroll = (method: string, path: string): Promise<CallResult> => call({ port: enrollPort, ca: ca.rootPem, method, path });
const errorBody = (code: string) => ({ error: { code, message: String } });

async function enrolled(deviceId: string): Promise<{ serial: string; pem: string }> {
  const csr = (await createCsr(await generateKey('p256'), 'CN=ignored')).pem;
  const r = await ca.enroll('/v1/enroll', JSON.stringify({ deviceId, code: await ca.code(deviceId), csr }));
  if (r.status !== 201) throw new Error(`enroll ${deviceId}: ${r.status} ${r.body.toString()}`);
  return { serial: r.json.serial, pem: r.json.certificate };
}

/** The responseStatus ENUMERATED right after the OCSPResponse SEQUENCE header; -1 if not there. */
function responseStatus(der: Buffer): number {
  const at = der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2;
  return der[0] === 0x30 && der[at] === 0x0a && der[at + 1] === 1 ? der[at + 2]! : -1;
}

async function result(api: string, route: string, code: string): Promise<number> {
  const text = await ca.ca.metrics.registry.getSingleMetricAsString('mtls_ca_requests_total');
  const line = text.split('\n').find((l) => l.startsWith('mtls_ca_requests_total{') && l.includes(`api="${api}"`) && l.includes(`route="${route}"`) && l.includes(`result="${code}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

t.test('unknown paths are 404, known paths under another method are 405 with Allow', async (t) => {
  const cases: Array<[string, () => Promise<Reply | CallResult>, number, string | undefined]> = [
    ['enroll: unknown path', () => ca.enroll('/v1/nope', '{}'), 404, undefined],
    ['enroll: GET /v1/enroll', () => onEnroll('GET', '/v1/enroll'), 405, 'POST'],
    ['enroll: POST /v1/pins', () => ca.enroll('/v1/pins', '{}'), 405, 'GET'],
    ['admin: unknown path', () => ca.admin('GET', '/v1/admin/nope'), 404, undefined],
    ['admin: DELETE /v1/admin/codes', () => ca.admin('DELETE', '/v1/admin/codes'), 405, 'POST'],
    ['admin: GET /v1/admin/revoke', () => ca.admin('GET', '/v1/admin/revoke'), 405, 'POST'],
    ['admin: PUT /v1/admin/devices/x', () => ca.admin('PUT', '/v1/admin/devices/x', {}), 405, 'GET'],
    ['publish: unknown path', () => ca.publish('GET', '/nope'), 404, undefined],
    ['publish: POST /crl', () => ca.publish('POST', '/crl', Buffer.from('x')), 405, 'GET, HEAD'],
    ['publish: GET /ocsp', () => ca.publish('GET', '/ocsp'), 405, 'POST'],
  ];
  for (const [name, send, status, allow] of cases) {
    const r = await send();
    t.equal(r.status, status, `${name}: ${status}`);
    t.same(r.headers?.allow, allow, `${name}: Allow ${allow ?? 'absent'}`);
    t.match(r.json ?? JSON.parse(String((r as Reply).body)), errorBody(status === 404 ? 'not_found' : 'method_not_allowed'), `${name}: the JSON error body`);
  }
});

t.test('an admin POST to an unknown path is a 404 and revokes nothing', async (t) => {
  const device = await enrolled('dev-post');
  for (const path of ['/v1/admin/nope', '/v1/admin/revoke/now', '/v1/admin/revoke/', '/v1/admin/devices/dev-post/revoke', '/v1/admin/codes/revoke', '/v1/admin']) {
    const r = await ca.admin('POST', path, { deviceId: 'dev-post', serial: device.serial, reason: 'keyCompromise' });
    t.equal(r.status, 404, `POST ${path}: 404`);
    t.match(r.json, errorBody('not_found'));
  }
  const after = await ca.admin('GET', '/v1/admin/devices/dev-post');
  t.equal(after.json.certificates[0].status, 'valid', 'the certificate is still valid');
  t.equal((await ca.admin('POST', '/v1/admin/nope', {}, '')).status, 401, 'unauthenticated, an unknown admin path is 401 like every admin path');
});

t.test('no answer carries an x-error-code header; refusals are still counted by code', async (t) => {
  const before = {
    deviceId: await result('enroll', 'enroll', 'invalid_device_id'),
    notFound: await result('publish', 'other', 'not_found'),
    methodNotAllowed: await result('admin', 'other', 'method_not_allowed'),
    unauthorized: await result('admin', 'other', 'unauthorized'),
    unauthorizedNamed: await result('admin', 'list-devices', 'unauthorized'),
    mediaType: await result('admin', 'create-code', 'unsupported_media_type'),
  };
  const answers: Array<Reply | CallResult> = [
    await ca.enroll('/v1/enroll', JSON.stringify({ deviceId: 'a,O=evil', code: '1', csr: 'x' })),
    await ca.publish('GET', '/nope'),
    await ca.admin('DELETE', '/v1/admin/codes'),
    await ca.admin('GET', '/v1/admin/devices', undefined, ''),
    await ca.admin('POST', '/v1/admin/codes', undefined),
    await onEnroll('GET', '/healthz'),
  ];
  for (const r of answers) t.notOk(Object.keys(r.headers ?? {}).some((h) => h.startsWith('x-')), `${r.status}: no x- header`);
  t.equal(answers[0]!.status, 400);
  t.equal(await result('enroll', 'enroll', 'invalid_device_id'), before.deviceId + 1, 'enroll/enroll/invalid_device_id');
  t.equal(await result('publish', 'other', 'not_found'), before.notFound + 1, 'publish/other/not_found');
  t.equal(await result('admin', 'other', 'method_not_allowed'), before.methodNotAllowed + 1, 'admin/other/method_not_allowed');
  // Counted, but not under the route's name: /metrics needs no credential, and would map the admin routes.
  t.equal(await result('admin', 'other', 'unauthorized'), before.unauthorized + 1, 'admin/other/unauthorized');
  t.equal(await result('admin', 'list-devices', 'unauthorized'), before.unauthorizedNamed, 'no admin/list-devices/unauthorized');
  t.equal(await result('admin', 'create-code', 'unsupported_media_type'), before.mediaType + 1, 'admin/create-code/unsupported_media_type');
});

t.test('bodies are checked field by field with the codes clients switch on', async (t) => {
  const codes = async (body: unknown) => (await ca.admin('POST', '/v1/admin/codes', body)).json?.error?.code;
  t.equal(await codes({}), 'invalid_device_id', 'no deviceId');
  t.equal(await codes({ deviceId: 7 }), 'invalid_device_id', 'a number as deviceId');
  t.equal(await codes({ deviceId: 'ok-1', ttlSeconds: 29 }), 'bad_request', 'ttlSeconds too short');
  t.equal(await codes({ deviceId: 'ok-1', ttlSeconds: 60.5 }), 'bad_request', 'ttlSeconds not whole');
  t.equal(await codes({ deviceId: 'ok-1', userId: null }), 'bad_request', 'userId null');
  const revoke = async (body: unknown) => (await ca.admin('POST', '/v1/admin/revoke', body)).json?.error;
  t.match(await revoke({ deviceId: 'x', serial: 'ab' }), { code: 'bad_request', message: /exactly one of serial/ }, 'both serial and deviceId');
  t.match(await revoke({}), { code: 'bad_request', message: /exactly one of serial/ }, 'neither');
  t.match(await revoke({ deviceId: 'x', reason: 'because' }), { code: 'bad_request', message: /reason must be one of/ }, 'an unknown reason');
  t.match(await revoke({ serial: 'zz' }), { code: 'bad_request' }, 'a serial that is not hex');
  const enroll = async (body: unknown) => (await ca.enroll('/v1/enroll', JSON.stringify(body))).json?.error;
  t.match(await enroll({ deviceId: 'dev-z', code: '', csr: 'x' }), { code: 'bad_request', message: /code must be a non-empty string/ });
  t.match(await enroll({ deviceId: 'dev-z', code: '12345678', csr: 5 }), { code: 'bad_request', message: /csr must be a string/ });
});

t.test('GET /v1/admin/devices/{id} decodes the id; OCSP GET answers like POST', async (t) => {
  await enrolled('dev:1');
  const byId = await ca.admin('GET', `/v1/admin/devices/${encodeURIComponent('dev:1')}`);
  t.equal(byId.status, 200);
  t.equal(byId.json.deviceId, 'dev:1');
  t.equal((await ca.admin('GET', '/v1/admin/devices/nobody')).json?.error?.code, 'not_found');
  t.equal((await ca.admin('GET', '/v1/admin/devices?limit=1')).json.limit, 1, 'the query string reaches the route');

  const device = await enrolled('dev-ocsp');
  const leaf = join(ca.dir, 'dev-ocsp.pem');
  const request = join(ca.dir, 'ocsp-request.der');
  writeFileSync(leaf, device.pem);
  await run('openssl', ['ocsp', '-issuer', ca.issuingFile, '-cert', leaf, '-no_nonce', '-reqout', request]);
  const der = readFileSync(request);
  const posted = await ca.publish('POST', '/ocsp', der, { 'content-type': 'application/ocsp-request' });
  t.equal(posted.status, 200);
  t.equal(posted.headers['content-type'], 'application/ocsp-response');
  t.equal(responseStatus(posted.body), 0, 'POST: responseStatus successful');
  const base64 = der.toString('base64');
  for (const path of [`/ocsp/${encodeURIComponent(base64)}`, `/ocsp/${base64}`]) {
    const got = await ca.publish('GET', path);
    t.equal(got.status, 200, `GET ${path.length > 40 ? `${path.slice(0, 40)}…` : path}`);
    t.equal(got.headers['content-type'], 'application/ocsp-response');
    t.equal(got.body[0], 0x30, 'a DER OCSPResponse');
    t.equal(responseStatus(got.body), 0, 'responseStatus successful, like the POST answer');
  }
  // Not even percent-encoding: still an OCSP request, a malformed one (RFC 6960 §2.3), not a 404.
  for (const path of ['/ocsp/%', '/ocsp/%E0%A4%A']) {
    const got = await ca.publish('GET', path);
    t.equal(got.status, 200, `GET ${path}`);
    t.equal(got.headers['content-type'], 'application/ocsp-response');
    t.equal(responseStatus(got.body), 1, 'responseStatus malformedRequest');
  }
  t.equal((await ca.publish('GET', '/crl%')).status, 400, 'any other undecodable URL is a 400');
});

t.test('GET /v1/pins on the enrollment and publish listeners: a pin set an app accepts', async (t) => {
  const shipped = readFileSync(join(ca.dir, 'pin-signing.pub.pem'), 'utf8');
  for (const [where, r] of [['enroll', await onEnroll('GET', '/v1/pins')], ['publish', await ca.publish('GET', '/v1/pins')]] as const) {
    t.equal(r.status, 200, `${where}: 200`);
    t.equal(r.headers?.['content-type'], 'application/jose');
    const claims = await verifyPinSet(String(r.body), shipped, { minVersion: 1 });
    t.equal(claims.version, 1, `${where}: verifies with pin-signing.pub.pem`);
    t.ok(claims.pins.some((p) => p.role === 'current') && claims.pins.some((p) => p.role === 'backup'), `${where}: current and backup pins`);
  }
});
