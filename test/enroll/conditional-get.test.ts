/**
 * The CRL route's preconditions (RFC 9110 §13.1.1, §13.1.3, §13.2.2): If-None-Match lists with
 * weak comparison and `*`, If-None-Match deciding over If-Modified-Since, and every doubtful case
 * (bad syntax, a date after the CA's clock, a Last-Modified shared by two CRLs) answering in full.
 * Over real HTTP with curl: test/integration/ca-crl-conditional-requests.test.ts.
 */
import t from 'tap';
import { isNotModified, type Validators } from '../../src/enroll/http/conditional-get.js';

const modified = new Date('2026-12-03T10:00:00Z');
const now = modified.getTime() + 60_000;
const v: Validators = { etag: '"2a-abc"', lastModified: modified, lastModifiedIsUnique: true };
const lm = modified.toUTCString();

t.test('If-None-Match: any member of the list, weak comparison, or *', async (t) => {
  const match = (inm: string, validators = v) => isNotModified({ 'if-none-match': inm }, validators, now);
  t.ok(match('"2a-abc"'));
  t.ok(match('W/"2a-abc"'), 'W/ is ignored (weak comparison)');
  t.ok(match('"x", "y",W/"2a-abc"'), 'a list');
  t.ok(match(' , "x" ,, "2a-abc" , '), 'empty list elements and spaces');
  t.ok(match('*'));
  t.notOk(match('"2a-abd"'));
  t.notOk(match('"2A-ABC"'), 'entity tags are case-sensitive');
  t.notOk(match('2a-abc'), 'unquoted: not an entity tag');
  t.notOk(match('"x" "2a-abc"'), 'members without a comma: bad syntax, answered in full');
  t.notOk(match('w/"2a-abc"'), 'the weak prefix is case-sensitive');
  t.notOk(match(''));
  t.notOk(match(`${'"x", '.repeat(2_000)}"y"`), 'a long list is walked once');
});

t.test('If-None-Match decides; If-Modified-Since only without it', async (t) => {
  t.notOk(isNotModified({ 'if-none-match': '"other"', 'if-modified-since': lm }, v, now), 'a non-matching tag wins over a matching date');
  t.ok(isNotModified({ 'if-none-match': '"2a-abc"', 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }, v, now));
});

t.test('If-Modified-Since: not newer → 304; unparsable, future or shared → full answer', async (t) => {
  const since = (ims: string, validators = v) => isNotModified({ 'if-modified-since': ims }, validators, now);
  t.ok(since(lm), 'the Last-Modified it was given');
  t.ok(since(new Date(modified.getTime() + 30_000).toUTCString()), 'a later date');
  t.notOk(since(new Date(modified.getTime() - 1_000).toUTCString()), 'an earlier date');
  t.notOk(since('yesterday'), 'not a date');
  t.notOk(since(new Date(now + 5_000).toUTCString()), "a date after the CA's clock is ignored");
  t.notOk(since(lm, { ...v, lastModifiedIsUnique: false }), 'two CRLs signed within the same second: the date cannot tell them apart');
  t.notOk(isNotModified({}, v, now), 'no precondition');
});
