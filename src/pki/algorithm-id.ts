/** AlgorithmIdentifier (RFC 5280 §4.1.1.2) and RSASSA-PSS parameters (RFC 4055 §3.1), read from DER. */
import { TAG, childrenOf, derError, encodingOf, readOid, readTlv, type Tlv } from './asn1/index.js';

/** An AlgorithmIdentifier: dotted OID plus the DER of its parameters, if any (NULL counts as none). */
export interface SignatureAlgorithm {
  readonly oid: string;
  readonly params?: Uint8Array;
}

/** Reads the AlgorithmIdentifier SEQUENCE `seq` of `buf`. Sync; throws `derError` if malformed. */
export function readAlgorithmIdentifier(buf: Uint8Array, seq: Tlv): SignatureAlgorithm {
  const [oid, params] = childrenOf(buf, seq);
  if (oid === undefined) throw derError('empty AlgorithmIdentifier');
  const p = params === undefined || params.tag === TAG.NULL ? undefined : encodingOf(buf, params);
  return p === undefined ? { oid: readOid(buf, oid) } : { oid: readOid(buf, oid), params: p };
}

/** RSASSA-PSS-params as written: dotted hash OIDs (absent = SHA-1 default) and the salt length. */
export interface RsaPssParams {
  readonly hashOid?: string;
  readonly mgfHashOid?: string;
  readonly saltLength: number;
}

/** Reads RSASSA-PSS-params (the DER of an AlgorithmIdentifier's parameters). Sync; throws `derError` if malformed. */
export function readRsaPssParams(params: Uint8Array): RsaPssParams {
  const seq = readTlv(params, 0, params.length);
  let hashOid: string | undefined;
  let mgfHashOid: string | undefined;
  let saltLength = 20;
  for (const field of childrenOf(params, seq)) {
    const inner = readTlv(params, field.contentStart, field.end);
    if (field.tag === 0xa0) {
      hashOid = readOid(params, readTlv(params, inner.contentStart, inner.end));
    } else if (field.tag === 0xa1) {
      const [, mgfParams] = childrenOf(params, inner);
      if (mgfParams !== undefined) mgfHashOid = readOid(params, readTlv(params, mgfParams.contentStart, mgfParams.end));
    } else if (field.tag === 0xa2 && inner.tag === TAG.INTEGER) {
      saltLength = 0;
      for (let i = inner.contentStart; i < inner.end; i++) saltLength = saltLength * 256 + (params[i] as number);
    }
  }
  return { ...(hashOid === undefined ? {} : { hashOid }), ...(mgfHashOid === undefined ? {} : { mgfHashOid }), saltLength };
}
