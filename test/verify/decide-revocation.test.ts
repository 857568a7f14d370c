// How a path's revocation answers become one verdict: revoked anywhere refuses, unknown anywhere
// is onUnknown's call, and the answer that decided is the one reported.
import t from 'tap';
import { decideRevocation, type RevocationOutcome } from '../../src/verify/index.js';

const o = (status: RevocationOutcome['status'], detail = status): RevocationOutcome => ({ status, method: 'crl', cached: true, detail });
const G = o('good');
const R = o('revoked');
const U = o('unknown');

const cases: Array<[string, RevocationOutcome[], 'fail-closed' | 'fail-open', boolean, number]> = [
  ['all good', [G, G], 'fail-closed', true, 0],
  ['leaf revoked', [R, G], 'fail-open', false, 0],
  ['intermediate revoked, fail-open too', [G, R], 'fail-open', false, 1],
  ['revoked beats unknown whatever the order', [U, R], 'fail-open', false, 1],
  ['intermediate unknown, fail-closed', [G, U], 'fail-closed', false, 1],
  ['intermediate unknown, fail-open', [G, U], 'fail-open', true, 1],
  ['leaf only, unknown, fail-closed', [U], 'fail-closed', false, 0],
  ['three levels, deepest revoked', [G, G, R], 'fail-closed', false, 2],
];

for (const [name, outcomes, onUnknown, accept, index] of cases) {
  t.test(name, async (t) => {
    const d = decideRevocation(outcomes, onUnknown);
    t.equal(d.accept, accept, 'accept');
    t.equal(d.index, index, 'index of the deciding answer');
    t.equal(d.outcome, outcomes[index], 'that answer is reported');
  });
}
