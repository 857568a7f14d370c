import t from 'tap';
import { SidecarError, isSidecarError } from '../src/errors.js';

t.test('SidecarError carries a stable code, what is at fault and its cause', async (t) => {
  const cause = new Error('ENOENT');
  const err = new SidecarError('ERR_TLS_MATERIAL', 'tls.key', 'cannot read key', { cause });
  t.equal(err.code, 'ERR_TLS_MATERIAL');
  t.equal(err.fault, 'tls.key');
  t.equal(err.cause, cause);
  t.ok(isSidecarError(err));
  t.notOk(isSidecarError(new Error('x')));
});
