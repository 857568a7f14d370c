import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { SignJWT, UnsecuredJWT, calculateJwkThumbprint, decodeProtectedHeader, type JWK } from 'jose';
import { generateKey, issueCertificate, issueCrl, type GeneratedKey } from '../../src/pki/index.js';
import {
  PIN_SET_JWS_TYPE,
  pinSetKeyId,
  signPinSet,
  spkiPin,
  spkiPinsOfBundle,
  validatePinSet,
  type PinSet,
} from '../../src/enroll/pins.js';
import { pinSetOfClaims, verifyPinSet } from '../fixtures/pin-set-verifier.js';
import { androidNetworkSecurityConfig, androidPinExpiration, iosPinnedDomainsPlist, wrapInPlistDocument } from '../../src/enroll/pin-formats.js';

/** The pin as the brief defines it, by the openssl CLI pipeline (not our code). */
function opensslPin(certPem: string): string {
  const pipeline = 'openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64';
  return execFileSync('sh', ['-c', pipeline], { input: certPem, encoding: 'utf8' }).trim();
}

/** Runs a python3 script with `input` on stdin and parses the JSON it prints. */
function python(script: string, input: string): unknown {
  return JSON.parse(execFileSync('python3', ['-c', script], { input, encoding: 'utf8' }));
}

const publicPem = (k: GeneratedKey): string => createPublicKey(k.privateKeyPem).export({ type: 'spki', format: 'pem' }) as string;

const ca = await (async () => {
  const key = await generateKey('p256');
  return { key, ...(await issueCertificate({ subject: 'CN=Test Root', key, isCa: true })) };
})();
async function leaf(alg: 'p256' | 'rsa2048' | 'p384') {
  const key = await generateKey(alg);
  const cert = await issueCertificate({ subject: `CN=api ${alg}`, key, issuer: ca, san: { dns: ['api.example.com'] }, extendedKeyUsage: ['serverAuth'] });
  return { key, cert };
}
const p256 = await leaf('p256');
const rsa = await leaf('rsa2048');
const signer = await generateKey('p256');
const other = await generateKey('p256');

const ISSUED = new Date('2030-01-01T00:00:00Z');
const EXPIRES = new Date('2030-01-31T00:00:00Z');
const DURING = new Date('2030-01-15T00:00:00Z');
const pinA = spkiPin(p256.cert.pem);
const pinB = spkiPin(rsa.cert.pem);
const pinC = spkiPin(ca.pem);
function pinSet(over: Partial<PinSet> = {}): PinSet {
  return {
    version: 7,
    domains: ['api.example.com', 'Auth.Example.com'],
    includeSubdomains: true,
    pins: { current: [pinA], next: [pinB], backup: [pinC] },
    issuedAt: ISSUED,
    expiresAt: EXPIRES,
    ...over,
  };
}
const rejectsWith = (code: string) => ({ code, name: /./ });

t.test('spkiPin equals the openssl pipeline for a P-256 and an RSA certificate', async (t) => {
  for (const { cert } of [p256, rsa]) {
    const pin = spkiPin(cert.pem);
    t.match(pin, /^[A-Za-z0-9+/]{43}=$/);
    t.equal(pin, opensslPin(cert.pem), cert.certificate.subject);
  }
  t.not(pinA, pinB);
});

t.test('spkiPin: the same pin from the certificate, its public key and its private key in every PEM form', async (t) => {
  for (const { key, cert } of [p256, rsa]) {
    const priv = createPrivateKey(key.privateKeyPem);
    const legacy = priv.export({ type: key.algorithm === 'p256' ? 'sec1' : 'pkcs1', format: 'pem' }) as string;
    const forms = [key.privateKeyPem, legacy, publicPem(key), `junk before\n${cert.pem}junk after\n`];
    if (key.algorithm === 'rsa2048') forms.push(createPublicKey(priv).export({ type: 'pkcs1', format: 'pem' }) as string);
    for (const [i, pem] of forms.entries()) t.equal(spkiPin(pem), spkiPin(cert.pem), `${key.algorithm} form #${i}`);
  }
  // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key: it is not a second key.
  const ecparam = execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey'], { encoding: 'utf8' });
  t.match(ecparam, /EC PARAMETERS[\s\S]*EC PRIVATE KEY/);
  const fromOpenssl = execFileSync('openssl', ['pkey', '-pubout'], { input: ecparam, encoding: 'utf8' });
  t.equal(spkiPin(ecparam), spkiPin(fromOpenssl));
});

t.test('spkiPin throws a TypeError naming the problem for anything else', async (t) => {
  const encrypted = createPrivateKey(p256.key.privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
  const crl = await issueCrl({ issuer: ca, nextUpdate: new Date(Date.now() + 86_400_000) });
  const broken = p256.cert.pem.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
  const cases: Array<[unknown, RegExp]> = [
    ['', /no PEM block/],
    ['not a pem at all', /no PEM block/],
    [`${p256.cert.pem}${ca.pem}`, /found 2 .*spkiPinsOfBundle/],
    [`${p256.cert.pem}${p256.key.privateKeyPem}`, /found 2 \(CERTIFICATE, PRIVATE KEY\)/],
    [encrypted, /encrypted/],
    [crl.pem, /"X509 CRL" PEM block holds no key/],
    [broken, /CERTIFICATE block does not parse/],
    ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', /PUBLIC KEY block does not parse/],
    [Buffer.from(p256.cert.pem), /expected PEM text/],
  ];
  for (const [input, message] of cases) t.throws(() => spkiPin(input as string), { name: 'TypeError', message }, String(message));
});

t.test('spkiPinsOfBundle: one pin per certificate in file order, matching openssl; a key file gives its one pin', async (t) => {
  t.same(spkiPinsOfBundle(`${p256.cert.pem}${ca.pem}`), [opensslPin(p256.cert.pem), opensslPin(ca.pem)]);
  t.same(spkiPinsOfBundle(`${rsa.cert.pem}${rsa.key.privateKeyPem}`), [pinB], 'the key of a combined file is ignored');
  t.same(spkiPinsOfBundle(p256.key.privateKeyPem), [pinA]);
  t.same(spkiPinsOfBundle(publicPem(rsa.key)), [pinB]);
  const broken = ca.pem.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
  t.throws(() => spkiPinsOfBundle(`${p256.cert.pem}${broken}`), { name: 'TypeError', message: /certificate #2 does not parse/ });
  t.throws(() => spkiPinsOfBundle('nothing'), { name: 'TypeError', message: /no PEM block/ });
});

t.test('validatePinSet: normalizes, copies and freezes; throws a TypeError for each broken rule', async (t) => {
  const input = pinSet();
  const valid = validatePinSet(input);
  t.same(valid.domains, ['api.example.com', 'auth.example.com'], 'domains lower-cased');
  t.ok(Object.isFrozen(valid) && Object.isFrozen(valid.pins.current));
  input.pins.current.push(pinC);
  t.same(valid.pins.current, [pinA], 'a copy, not a view');
  const broken: Array<[Partial<PinSet>, RegExp]> = [
    [{ version: 0 }, /version/],
    [{ version: 1.5 }, /version/],
    [{ version: 2 ** 31 }, /version/],
    [{ domains: [] }, /domains/],
    [{ domains: ['*.example.com'] }, /not a host name/],
    [{ domains: ['10.0.0.1'] }, /not a host name/],
    [{ domains: ['example.com.'] }, /not a host name/],
    [{ domains: ['a<b>.example.com'] }, /not a host name/],
    [{ domains: ['bücher.example'] }, /punycode/],
    [{ domains: ['a.example', 'A.example'] }, /a\.example is listed twice/],
    [{ pins: { current: [], next: [pinA], backup: [] } }, /current must not be empty/],
    [{ pins: { current: ['sha256/abc'], next: [], backup: [] } }, /not a base64 SHA-256 pin/],
    [{ pins: { current: [pinA], next: [], backup: [pinA] } }, /listed in current and again in backup/],
    [{ expiresAt: ISSUED }, /at least a second/],
    [{ issuedAt: new Date('nope') }, /valid Dates/],
  ];
  for (const [over, message] of broken) t.throws(() => validatePinSet(pinSet(over)), { name: 'TypeError', message }, JSON.stringify(over));
});

t.test('signPinSet: ES256 compact JWS with an explicit typ and the key thumbprint as kid', async (t) => {
  const jws = await signPinSet(pinSet(), signer.privateKeyPem);
  const [h, p, s] = jws.split('.');
  t.ok(h && p && s && jws.split('.').length === 3);
  const kid = await calculateJwkThumbprint(createPublicKey(signer.privateKeyPem).export({ format: 'jwk' }) as JWK, 'sha256');
  t.same(decodeProtectedHeader(jws), { alg: 'ES256', typ: 'pinset+jwt', kid });
  t.equal(PIN_SET_JWS_TYPE, 'pinset+jwt');
  t.equal(await pinSetKeyId(publicPem(signer)), kid);
  t.equal(await pinSetKeyId(signer.privateKeyPem), kid, 'the same id from the private key');
  t.same(JSON.parse(Buffer.from(p!, 'base64url').toString()), {
    version: 7,
    domains: ['api.example.com', 'auth.example.com'],
    includeSubdomains: true,
    pins: [
      { sha256: pinA, role: 'current' },
      { sha256: pinB, role: 'next' },
      { sha256: pinC, role: 'backup' },
    ],
    iat: 1893456000,
    exp: 1896048000,
  });
  t.equal(decodeProtectedHeader(await signPinSet(pinSet(), signer.privateKeyPem, 'pins-2030')).kid, 'pins-2030');
  const sec1 = createPrivateKey(signer.privateKeyPem).export({ type: 'sec1', format: 'pem' }) as string;
  t.equal(decodeProtectedHeader(await signPinSet(pinSet(), sec1)).kid, kid, 'a SEC1 "EC PRIVATE KEY" file signs too');
});

t.test('the JWS verifies with jose and, independently, with node:crypto over header.payload', async (t) => {
  const jws = await signPinSet(pinSet(), signer.privateKeyPem);
  const claims = await verifyPinSet(jws, publicPem(signer), { currentDate: DURING });
  t.equal(claims.version, 7);
  t.same(claims.pins.map((p) => p.role), ['current', 'next', 'backup']);
  const [h, p, s] = jws.split('.') as [string, string, string];
  const sig = Buffer.from(s, 'base64url');
  t.equal(sig.length, 64, 'a raw r||s signature (IEEE P1363), as JWS requires');
  const key = createPublicKey(publicPem(signer));
  t.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, sig), 'node:crypto accepts it');
  t.notOk(verify('sha256', Buffer.from(`${h}.${p}x`), { key, dsaEncoding: 'ieee-p1363' }, sig), '... and only over those bytes');
  const cert = await issueCertificate({ subject: 'CN=pin signer', key: signer });
  t.equal((await verifyPinSet(jws, cert.pem, { currentDate: DURING })).version, 7, 'a certificate of the key verifies too');
  t.same(pinSetOfClaims(claims), validatePinSet(pinSet()), 'claims turn back into the same set');
});

t.test('verifyPinSet rejects a tampered payload or signature, another key and a non-P-256 key', async (t) => {
  const jws = await signPinSet(pinSet(), signer.privateKeyPem);
  const [h, p, s] = jws.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
  payload.pins[0].sha256 = pinC.replace(/^./, pinC.startsWith('A') ? 'B' : 'A');
  const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
  const key = createPublicKey(publicPem(signer));
  t.notOk(verify('sha256', Buffer.from(tampered.split('.').slice(0, 2).join('.')), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')));
  const opts = { currentDate: DURING };
  await t.rejects(verifyPinSet(tampered, publicPem(signer), opts), rejectsWith('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'), 'tampered payload');
  const flipped = Buffer.from(s, 'base64url');
  flipped[10]! ^= 1;
  await t.rejects(verifyPinSet(`${h}.${p}.${flipped.toString('base64url')}`, publicPem(signer), opts), rejectsWith('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'), 'tampered signature');
  await t.rejects(verifyPinSet(jws, publicPem(other), opts), rejectsWith('ERR_JWS_SIGNATURE_VERIFICATION_FAILED'), 'wrong key');
  await t.rejects(verifyPinSet(jws, publicPem(rsa.key), opts), { name: 'TypeError', message: /EC P-256 key, not rsa 2048-bit/ });
  await t.rejects(verifyPinSet('a.b', publicPem(signer), opts), rejectsWith('ERR_JWS_INVALID'), 'not a JWS');
  await t.rejects(verifyPinSet(jws, 'not a key', opts), { name: 'TypeError', message: /verification key is not/ });
});

t.test('signPinSet rejects non-P-256 and unreadable keys, an invalid set and an empty kid with a TypeError', async (t) => {
  const p384 = await generateKey('p384');
  await t.rejects(signPinSet(pinSet(), rsa.key.privateKeyPem), { name: 'TypeError', message: /ES256 needs an EC P-256 key, not rsa 2048-bit/ });
  await t.rejects(signPinSet(pinSet(), p384.privateKeyPem), { name: 'TypeError', message: /not ec secp384r1/ });
  await t.rejects(signPinSet(pinSet(), publicPem(signer)), { name: 'TypeError', message: /signing key is not an unencrypted private key/ });
  const encrypted = createPrivateKey(signer.privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string;
  await t.rejects(signPinSet(pinSet(), encrypted), { name: 'TypeError' });
  await t.rejects(signPinSet(pinSet({ version: -1 }), signer.privateKeyPem), { name: 'TypeError', message: /version/ });
  await t.rejects(signPinSet(pinSet(), signer.privateKeyPem, ''), { name: 'TypeError', message: /keyId/ });
  await t.rejects(pinSetKeyId(publicPem(rsa.key)), { name: 'TypeError' });
});

t.test('expiry: verifyPinSet rejects an expired set (ERR_JWT_EXPIRED), never returns it; tolerance is opt-in', async (t) => {
  const jws = await signPinSet(pinSet(), signer.privateKeyPem);
  const pub = publicPem(signer);
  const past = await signPinSet(pinSet({ issuedAt: new Date(Date.now() - 10 * 86_400_000), expiresAt: new Date(Date.now() - 60_000) }), signer.privateKeyPem);
  await t.rejects(verifyPinSet(past, pub), rejectsWith('ERR_JWT_EXPIRED'), 'expired a minute ago, by the real clock');
  t.equal((await verifyPinSet(past, pub, { clockToleranceSeconds: 300 })).version, 7, 'within an explicit clock tolerance');
  await t.rejects(verifyPinSet(jws, pub, { currentDate: EXPIRES }), rejectsWith('ERR_JWT_EXPIRED'), 'void from the exp second on');
  t.ok(await verifyPinSet(jws, pub, { currentDate: new Date(EXPIRES.getTime() - 1000) }), 'valid the second before');
  const live = await signPinSet(pinSet({ issuedAt: new Date(), expiresAt: new Date(Date.now() + 86_400_000) }), signer.privateKeyPem);
  t.ok(await verifyPinSet(live, pub), 'a current set verifies by the real clock');
});

t.test('verifyPinSet enforces typ, alg, the payload rules and minVersion (anti-rollback)', async (t) => {
  const key = createPrivateKey(signer.privateKeyPem);
  const pub = publicPem(signer);
  const opts = { currentDate: DURING };
  const good = JSON.parse(Buffer.from((await signPinSet(pinSet(), signer.privateKeyPem)).split('.')[1]!, 'base64url').toString());
  const sign = (payload: object, typ?: string) =>
    new SignJWT(payload as Record<string, unknown>).setProtectedHeader(typ ? { alg: 'ES256', typ } : { alg: 'ES256' }).sign(key);
  await t.rejects(verifyPinSet(await sign(good, 'JWT'), pub, opts), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' }, 'another JWT of the same key');
  await t.rejects(verifyPinSet(await sign(good), pub, opts), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' }, 'no typ');
  t.ok(await verifyPinSet(await sign(good, `application/${PIN_SET_JWS_TYPE}`), pub, opts), 'the media-type spelling of typ is the same typ');
  await t.rejects(verifyPinSet(new UnsecuredJWT(good).encode(), pub, opts), rejectsWith('ERR_JOSE_ALG_NOT_ALLOWED'), 'alg none');
  const { exp: _exp, ...noExp } = good;
  await t.rejects(verifyPinSet(await sign(noExp, PIN_SET_JWS_TYPE), pub, opts), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'exp' });
  const noCurrent = { ...good, pins: good.pins.filter((p: { role: string }) => p.role !== 'current') };
  await t.rejects(verifyPinSet(await sign(noCurrent, PIN_SET_JWS_TYPE), pub, opts), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', message: /current must not be empty/ });
  const badRole = { ...good, pins: [...good.pins, { sha256: pinA.replace(/^./, 'Z'), role: 'spare' }] };
  await t.rejects(verifyPinSet(await sign(badRole, PIN_SET_JWS_TYPE), pub, opts), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'pins' });
  await t.rejects(verifyPinSet(await sign({ ...good, domains: 'api.example.com' }, PIN_SET_JWS_TYPE), pub, opts), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
  const jws = await signPinSet(pinSet(), signer.privateKeyPem);
  t.equal((await verifyPinSet(jws, pub, { ...opts, minVersion: 7 })).version, 7, 'the same version is accepted again');
  await t.rejects(verifyPinSet(jws, pub, { ...opts, minVersion: 8 }), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'version', message: /older than 8/ });
});

const ANDROID_PY = `
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read().encode())
dc = root.find('domain-config')
ps = dc.find('pin-set')
print(json.dumps({
  'root': root.tag,
  'domains': [[d.text, d.get('includeSubdomains')] for d in dc.findall('domain')],
  'expiration': ps.get('expiration'),
  'pins': [[p.get('digest'), p.text] for p in ps.findall('pin')],
}))`;

t.test('Android network_security_config.xml parses with python ElementTree and carries every pin', async (t) => {
  const text = androidNetworkSecurityConfig(pinSet());
  t.match(text, /^<\?xml version="1\.0" encoding="utf-8"\?>\n/);
  t.same(python(ANDROID_PY, text), {
    root: 'network-security-config',
    domains: [
      ['api.example.com', 'true'],
      ['auth.example.com', 'true'],
    ],
    expiration: '2030-01-30',
    pins: [pinA, pinB, pinC].map((p) => ['SHA-256', p]),
  });
  const noSub = python(ANDROID_PY, androidNetworkSecurityConfig(pinSet({ includeSubdomains: false, pins: { current: [pinA], next: [], backup: [pinC] } }))) as { domains: string[][]; pins: string[][] };
  t.same(noSub.domains.map((d) => d[1]), ['false', 'false']);
  t.same(noSub.pins, [['SHA-256', pinA], ['SHA-256', pinC]], 'a backup alone is enough');
  t.notMatch(text, /<pin digest[^>]*>\s|\s<\/pin>/, 'no whitespace inside <pin> (older Android base64-decodes the raw text)');
});

t.test('Android: expiration is the UTC date of expiresAt minus 12 h; a backup pin and 2 days of validity are required', async (t) => {
  const at = (iso: string) => androidPinExpiration(pinSet({ expiresAt: new Date(iso) }));
  t.equal(at('2030-01-31T11:59:59Z'), '2030-01-30', 'midnight of the 31st in UTC-12 would be after expiresAt');
  t.equal(at('2030-01-31T12:00:00Z'), '2030-01-31');
  t.equal(at('2030-01-31T23:00:00Z'), '2030-01-31');
  t.equal(androidPinExpiration(pinSet({ expiresAt: new Date(ISSUED.getTime() + 2 * 86_400_000) })), '2030-01-02');
  t.throws(() => androidPinExpiration(pinSet({ expiresAt: new Date(ISSUED.getTime() + 2 * 86_400_000 - 1000) })), { name: 'TypeError', message: /at least 2 days/ });
  t.throws(() => androidNetworkSecurityConfig(pinSet({ pins: { current: [pinA, pinB], next: [], backup: [] } })), { name: 'TypeError', message: /Android pinning needs a backup pin/ });
  t.throws(() => androidNetworkSecurityConfig(pinSet({ domains: ['a"b.example'] })), { name: 'TypeError', message: /not a host name/ });
});

const IOS_PY = 'import sys, json, plistlib\nprint(json.dumps(plistlib.loads(sys.stdin.read().encode())))';

t.test('iOS NSPinnedDomains plist parses with python plistlib into the ATS structure', async (t) => {
  const fragment = iosPinnedDomainsPlist(pinSet());
  t.match(fragment, /^<key>NSAppTransportSecurity<\/key>\n<dict>\n\t<key>NSPinnedDomains<\/key>/);
  const identities = [pinA, pinB, pinC].map((p) => ({ 'SPKI-SHA256-BASE64': p }));
  const expected = {
    NSAppTransportSecurity: {
      NSPinnedDomains: {
        'api.example.com': { NSIncludesSubdomains: true, NSPinnedLeafIdentities: identities },
        'auth.example.com': { NSIncludesSubdomains: true, NSPinnedLeafIdentities: identities },
      },
    },
  };
  t.same(python(IOS_PY, wrapInPlistDocument(fragment)), expected, 'the fragment, wrapped');
  const full = iosPinnedDomainsPlist(pinSet(), { fullPlist: true });
  t.match(full, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"/);
  t.equal(full, wrapInPlistDocument(fragment));
  t.same(python(IOS_PY, full), expected, 'the fullPlist option');
  const noSub = python(IOS_PY, iosPinnedDomainsPlist(pinSet({ includeSubdomains: false, domains: ['x.example'] }), { fullPlist: true }));
  t.same(noSub, { NSAppTransportSecurity: { NSPinnedDomains: { 'x.example': { NSIncludesSubdomains: false, NSPinnedLeafIdentities: identities } } } });
  t.throws(() => iosPinnedDomainsPlist(pinSet({ pins: { current: [pinA], next: [], backup: [] } })), { name: 'TypeError', message: /iOS pinning needs a backup pin/ });
});
