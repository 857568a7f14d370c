// The quarantine list: file syntax (all or nothing), canonical entries, and the two sources kept apart.
import t from 'tap';
import type { CertIdentity } from '../../src/identity/index.js';
import { createQuarantine, parseQuarantineEntry, parseQuarantineFile } from '../../src/policy/index.js';

const FP = 'ab'.repeat(32);
const identity = (over: Partial<CertIdentity>): CertIdentity => ({ deviceId: 'd', fingerprintSha256: '00'.repeat(32), serialHex: '01', ...over }) as CertIdentity;

t.test('file: one kind:value per line, comments and blanks ignored, values canonical', async (t) => {
  const parsed = parseQuarantineFile(`# investigating\n\ndevice:kiosk-17\nfingerprint: ${FP.toUpperCase().match(/../g)!.join(':')}\nserial:00:0A:1b\ndevice:spiffe://td/x\n`);
  t.same(parsed, {
    entries: [
      { kind: 'device', value: 'kiosk-17' },
      { kind: 'fingerprint', value: FP },
      { kind: 'serial', value: 'A1B' },
      { kind: 'device', value: 'spiffe://td/x' },
    ],
  });
});

t.test('file: any bad line refuses the whole file, naming every bad line', async (t) => {
  const parsed = parseQuarantineFile('device:ok\nfingerprint:abc\nnonsense\nhost:x\n');
  t.ok('errors' in parsed);
  if (!('errors' in parsed)) return;
  t.equal(parsed.errors.length, 3);
  t.match(parsed.errors[0], /^line 2: a fingerprint/);
  t.match(parsed.errors[1], /^line 3: expected kind:value/);
  t.match(parsed.errors[2], /^line 4: unknown kind "host"/);
});

t.test('entries match by device id, fingerprint or serial (leading zeros ignored)', async (t) => {
  const q = createQuarantine();
  t.equal(q.has(identity({})), false);
  q.replace('file', [parseQuarantineEntry('serial', '000001') as never]);
  t.equal(q.has(identity({ serialHex: '01' })), true);
  t.equal(q.has(identity({ serialHex: '02' })), false);
  q.add(parseQuarantineEntry('fingerprint', FP) as never);
  t.equal(q.has(identity({ serialHex: '02', fingerprintSha256: FP })), true);
  t.equal(parseQuarantineEntry('device', 'a\nb').hasOwnProperty('error'), true, 'no control characters');
});

t.test('file and API entries are separate sources', async (t) => {
  const q = createQuarantine();
  const a = { kind: 'device', value: 'a' } as const;
  const b = { kind: 'device', value: 'b' } as const;
  t.same(q.replace('file', [a]), [a], 'a file entry new to the list is reported as added');
  t.equal(q.add(a), true, 'the API may hold the same device');
  t.same(q.replace('file', []), [], 'dropping it from the file…');
  t.equal(q.has(identity({ deviceId: 'a' })), true, '…keeps the API entry in force');
  t.equal(q.remove(b), false);
  t.equal(q.remove(a), true);
  t.equal(q.has(identity({ deviceId: 'a' })), false);
  t.same(q.replace('api', [b]), [b]);
  t.same(q.list('api'), [b]);
});
