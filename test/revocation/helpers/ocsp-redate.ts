/**
 * Re-dates a real OCSP response and signs it again with the same key: for answers `openssl ocsp`
 * will not write, since it always stamps thisUpdate with its own "now" (an old thisUpdate, with
 * or without a nextUpdate).
 */
import { createPrivateKey, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Issued } from './pki.js';

/**
 * `body` (a successful basic OCSPResponse signed by `signer`, an EC P-256 key) with every
 * SingleResponse's thisUpdate (and producedAt) set to `thisUpdate` and nextUpdate set to
 * `nextUpdate`, or removed when it is undefined; re-signed with ECDSA SHA-256.
 */
export async function redateOcspResponse(body: Buffer, signer: Issued, thisUpdate: Date, nextUpdate?: Date): Promise<Buffer> {
  const response = pkijs.OCSPResponse.fromBER(body);
  const bytes = response.responseBytes;
  if (bytes === undefined) throw new Error('not a successful OCSP response');
  const basic = pkijs.BasicOCSPResponse.fromBER(bytes.response.valueBlock.valueHexView);
  basic.tbsResponseData.producedAt = thisUpdate;
  for (const single of basic.tbsResponseData.responses) {
    single.thisUpdate = thisUpdate;
    single.nextUpdate = nextUpdate;
  }
  const pkcs8 = createPrivateKey(await readFile(signer.keyPath)).export({ type: 'pkcs8', format: 'der' });
  const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  await basic.sign(key, 'SHA-256');
  bytes.response = new asn1js.OctetString({ valueHex: basic.toSchema().toBER() });
  return Buffer.from(response.toSchema().toBER());
}
