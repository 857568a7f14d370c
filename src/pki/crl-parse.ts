/**
 * CRL (RFC 5280 §5) parsing in two steps, so a million-entry CRL never blocks the event loop:
 * `parseCrlHeader` reads everything but the entries (O(1) in their number: the revoked list is
 * skipped by its length), and `collectRevokedSerials` walks the entries in time-boxed slices,
 * yielding to the event loop between slices. Entries become one compact `SerialSet`.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { SidecarError } from '../errors.js';
import { readAlgorithmIdentifier, type SignatureAlgorithm } from './algorithm-id.js';
import {
  TAG, childrenOf, contentOf, contextTag, decodeTime, derError, encodingOf, expectTlv, isCriticalFlag, readOid,
  readTlv, serialKeyOf, type Tlv
} from './asn1/index.js';
import { createSerialSetBuilder, type SerialSet } from './serial-set.js';
import { extensionRoot, uriNamesOf } from './x509-fields.js';

/** Which certificates a CRL speaks for (from its Issuing Distribution Point, RFC 5280 §5.2.5). */
export interface CrlScope {
  /** Distribution point URIs the CRL is for; `undefined` = a full CRL for the issuer. */
  readonly urls?: readonly string[];
  readonly onlyUserCerts: boolean;
  readonly onlyCaCerts: boolean;
}

/** Everything in a CRL except its entries, plus where the entries are. */
export interface CrlHeader {
  readonly der: Buffer;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly signature: Uint8Array;
  readonly issuerName: Uint8Array;
  readonly thisUpdate: number;
  readonly nextUpdate: number;
  /** CRL number as hex, if present. */
  readonly crlNumber?: string;
  readonly scope: CrlScope;
  /** Hex of the IDP extension value ('' if none): CRLs of one issuer with different scopes coexist. */
  readonly scopeKey: string;
  /** The revokedCertificates SEQUENCE, if present. */
  readonly revoked?: Tlv;
}

const EXT = {
  crlNumber: '2.5.29.20',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  authorityKeyIdentifier: '2.5.29.35',
  issuerAltName: '2.5.29.18',
  freshestCrl: '2.5.29.46',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;
const UNDERSTOOD = new Set<string>([EXT.crlNumber, EXT.issuingDistributionPoint, EXT.authorityKeyIdentifier, EXT.issuerAltName, EXT.freshestCrl, EXT.authorityInfoAccess]);

function unsupported(message: string): SidecarError {
  return new SidecarError('ERR_REVOCATION_SOURCE', 'crl-unsupported', message);
}

/**
 * Parses a DER CRL without its entries. Sync; throws `SidecarError` for malformed DER (fault
 * 'der') or a CRL we must not use (fault 'crl-unsupported'): a delta CRL, an indirect or
 * reason-partitioned CRL, an unknown critical extension, or no nextUpdate (without it we could
 * never tell it is stale). Verifies nothing: see revocation/crl-load.ts.
 */
export function parseCrlHeader(der: Buffer): CrlHeader {
  const outer = expectTlv(der, 0, der.length, TAG.SEQUENCE, 'CertificateList');
  if (outer.end !== der.length) throw derError('trailing bytes after CRL');
  const tbs = expectTlv(der, outer.contentStart, outer.end, TAG.SEQUENCE, 'TBSCertList');
  const sigAlg = expectTlv(der, tbs.end, outer.end, TAG.SEQUENCE, 'signatureAlgorithm');
  const sigValue = expectTlv(der, sigAlg.end, outer.end, TAG.BIT_STRING, 'signatureValue');
  // version, signature, issuer, thisUpdate, nextUpdate, revokedCertificates, crlExtensions.
  const f = childrenOf(der, tbs, 7);
  let i = 0;
  if (f[i]?.tag === TAG.INTEGER) i++; // version v2
  const innerAlg = f[i++];
  if (innerAlg?.tag !== TAG.SEQUENCE) throw derError('TBSCertList signature missing');
  if (!Buffer.from(encodingOf(der, innerAlg)).equals(encodingOf(der, sigAlg))) {
    throw derError('inner and outer signature algorithms differ'); // RFC 5280 §5.1.1.2
  }
  const issuer = f[i++];
  if (issuer?.tag !== TAG.SEQUENCE) throw derError('CRL issuer missing');
  const thisUpdate = f[i++];
  if (thisUpdate === undefined) throw derError('CRL thisUpdate missing');
  let nextUpdate: number | undefined;
  if (f[i]?.tag === TAG.UTC_TIME || f[i]?.tag === TAG.GENERALIZED_TIME) nextUpdate = decodeTime(der, f[i++] as Tlv);
  let revoked: Tlv | undefined;
  if (f[i]?.tag === TAG.SEQUENCE) revoked = f[i++];
  let crlNumber: string | undefined;
  let scope: CrlScope = { onlyUserCerts: false, onlyCaCerts: false };
  let scopeKey = '';
  const exts = f[i];
  if (exts?.tag === contextTag(0, true)) {
    const list = expectTlv(der, exts.contentStart, exts.end, TAG.SEQUENCE, 'crlExtensions');
    for (const ext of childrenOf(der, list)) {
      const [oidTlv, second, third] = childrenOf(der, ext);
      if (oidTlv === undefined || second === undefined) throw derError('short CRL extension');
      const oid = readOid(der, oidTlv);
      const critical = isCriticalFlag(der, second);
      const valueTlv = second.tag === TAG.BOOLEAN ? third : second;
      if (valueTlv?.tag !== TAG.OCTET_STRING) throw derError('CRL extension value');
      const value = contentOf(der, valueTlv);
      if (oid === EXT.deltaCrlIndicator) throw unsupported('delta CRLs are not supported');
      if (oid === EXT.crlNumber) crlNumber = Buffer.from(contentOf(value, extensionRoot(value))).toString('hex');
      if (oid === EXT.issuingDistributionPoint) {
        scope = parseIssuingDistributionPoint(value);
        scopeKey = Buffer.from(value).toString('hex');
      }
      if (critical && !UNDERSTOOD.has(oid)) throw unsupported(`unknown critical CRL extension ${oid}`);
    }
  }
  if (nextUpdate === undefined) throw unsupported('CRL has no nextUpdate');
  const header: CrlHeader = {
    der,
    tbs: encodingOf(der, tbs),
    signatureAlgorithm: readAlgorithmIdentifier(der, sigAlg),
    signature: der.subarray(sigValue.contentStart + 1, sigValue.end),
    issuerName: encodingOf(der, issuer),
    thisUpdate: decodeTime(der, thisUpdate),
    nextUpdate,
    scope,
    scopeKey,
    ...(crlNumber === undefined ? {} : { crlNumber }),
    ...(revoked === undefined ? {} : { revoked }),
  };
  return header;
}

function parseIssuingDistributionPoint(value: Uint8Array): CrlScope {
  let urls: string[] | undefined;
  let onlyUserCerts = false;
  let onlyCaCerts = false;
  const flag = (t: Tlv): boolean => value[t.contentStart] !== 0;
  for (const field of childrenOf(value, extensionRoot(value))) {
    if (field.tag === contextTag(0, true)) {
      const fullName = childrenOf(value, field).find((n) => n.tag === contextTag(0, true));
      if (fullName === undefined) throw unsupported('IDP with a relative name is not supported');
      urls = uriNamesOf(value, fullName);
    } else if (field.tag === contextTag(1, false)) onlyUserCerts = flag(field);
    else if (field.tag === contextTag(2, false)) onlyCaCerts = flag(field);
    else if (field.tag === contextTag(3, false)) throw unsupported('reason-partitioned CRLs are not supported');
    else if (field.tag === contextTag(4, false) && flag(field)) throw unsupported('indirect CRLs are not supported');
    else if (field.tag === contextTag(5, false) && flag(field)) throw unsupported('attribute-certificate CRLs are not supported');
  }
  return urls === undefined ? { onlyUserCerts, onlyCaCerts } : { urls, onlyUserCerts, onlyCaCerts };
}

/** Slicing knobs for `collectRevokedSerials`. */
export interface CollectOptions {
  /** Longest stretch (ms) spent walking entries before yielding to the event loop. */
  readonly sliceMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Walks the revoked entries and returns the set of their serials. Async: yields to the event loop
 * every `sliceMs`; rejects with `SidecarError` on malformed entries (fault 'der'), an abort
 * ('aborted'), or an entry extension we must not ignore ('crl-unsupported', see
 * `checkEntryExtensions`): the whole CRL is then unusable. reasonCode, invalidityDate and
 * holdInstructionCode do not change the answer (certificateHold entries count as revoked).
 */
export async function collectRevokedSerials(header: CrlHeader, options: CollectOptions): Promise<SerialSet> {
  const list = header.revoked;
  // Bounds: an entry is at least 20 octets (SEQ, INTEGER, UTCTime headers and time), and a
  // conforming serial (≤ 20 octets) is at most ~52% of its entry.
  const listBytes = list === undefined ? 0 : list.end - list.contentStart;
  const serials = createSerialSetBuilder(Math.ceil(listBytes * 0.52), Math.ceil(listBytes / 20));
  if (list === undefined) return serials.finish(options.sliceMs);
  const buf = header.der;
  const end = list.end;
  let pos = list.contentStart;
  let sliceStart = performance.now();
  let count = 0;
  while (pos < end) {
    // Hand-inlined readTlv for the entry and its serial: this loop runs a million times.
    if (buf[pos] !== TAG.SEQUENCE) throw derError(`CRL entry at ${pos} is not a SEQUENCE`);
    let len = buf[pos + 1] as number;
    let p = pos + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw derError(`bad entry length at ${pos}`);
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + (buf[p + k] as number);
      p += n;
    }
    const entryEnd = p + len;
    if (entryEnd > end || p + 2 > entryEnd) throw derError(`CRL entry at ${pos} overruns the list`);
    if (buf[p] !== TAG.INTEGER) throw derError(`CRL entry at ${pos} has no serial`);
    const serialLen = buf[p + 1] as number;
    let serialEnd: number;
    if (serialLen & 0x80 || serialLen === 0) {
      // Long-form or empty serial: not RFC 5280 (≤ 20 octets), take the slow, checked path.
      const t = readTlv(buf, p, entryEnd);
      serials.addKey(serialKeyOf(contentOf(buf, t)));
      serialEnd = t.end;
    } else {
      let s = p + 2;
      serialEnd = s + serialLen;
      if (serialEnd > entryEnd) throw derError(`CRL entry serial at ${p} overruns its entry`);
      if ((buf[s] as number) & 0x80) serials.addKey(serialKeyOf(buf.subarray(s, serialEnd)));
      else {
        while (s < serialEnd && buf[s] === 0) s++;
        serials.addBytes(buf, s, serialEnd);
      }
    }
    // A short-form revocationDate that ends the entry means no extensions: one octet read decides.
    const dateLen = buf[serialEnd + 1] as number;
    if (dateLen >= 0x80 || serialEnd + 2 + dateLen !== entryEnd) checkEntryExtensions(buf, serialEnd, entryEnd);
    pos = entryEnd;
    if ((++count & 0xff) === 0 && performance.now() - sliceStart >= options.sliceMs) {
      await yieldToEventLoop();
      if (options.signal?.aborted) throw new SidecarError('ERR_REVOCATION_SOURCE', 'aborted', 'CRL load aborted');
      sliceStart = performance.now();
    }
  }
  return serials.finish(options.sliceMs);
}

/** Entry extensions that do not change whether a listed serial is revoked (RFC 5280 §5.3). */
const REASON_CODE = 21;
const HOLD_INSTRUCTION_CODE = 23;
const INVALIDITY_DATE = 24;
const CERTIFICATE_ISSUER = 29;

/**
 * Checks the rest of one entry, `buf[pos, end)` after its serial: a revocationDate, then optional
 * crlEntryExtensions. Sync; throws `SidecarError` 'der' if malformed, and 'crl-unsupported' for
 * a certificateIssuer extension (critical or not: it moves the following entries to another
 * issuer, an indirect CRL) or any other unrecognised critical extension (RFC 5280 §5.3: such a
 * CRL must not be used). Runs only for entries that carry more than a date, and allocates
 * nothing for the extensions we know (a million-entry CRL may carry one on every entry).
 */
function checkEntryExtensions(buf: Buffer, pos: number, end: number): void {
  if (buf[pos] !== TAG.UTC_TIME && buf[pos] !== TAG.GENERALIZED_TIME) throw derError(`CRL entry at ${pos}: no revocationDate`);
  const listAt = tlvEnd(buf, pos, end);
  if (listAt === end) return;
  if (buf[listAt] !== TAG.SEQUENCE || tlvEnd(buf, listAt, end) !== end) throw derError(`CRL entry at ${pos}: bad crlEntryExtensions`);
  for (let p = contentStartOf(buf, listAt); p < end; ) {
    const extEnd = tlvEnd(buf, p, end);
    const oidAt = contentStartOf(buf, p);
    if (buf[p] !== TAG.SEQUENCE || buf[oidAt] !== TAG.OID) throw derError(`CRL entry extension at ${p}`);
    const oidEnd = tlvEnd(buf, oidAt, extEnd);
    p = extEnd;
    // Every extension we know is 2.5.29.n, encoded 06 03 55 1D n: compare octets, decode nothing.
    const arc = oidEnd - oidAt === 5 && buf[oidAt + 2] === 0x55 && buf[oidAt + 3] === 0x1d ? buf[oidAt + 4] : -1;
    if (arc === REASON_CODE || arc === INVALIDITY_DATE || arc === HOLD_INSTRUCTION_CODE) continue;
    if (arc === CERTIFICATE_ISSUER) throw unsupported('CRL entry extension certificateIssuer (2.5.29.29): indirect CRLs are not supported');
    if (oidEnd < extEnd && isCriticalFlag(buf, readTlv(buf, oidEnd, extEnd))) {
      throw unsupported(`unknown critical CRL entry extension ${readOid(buf, readTlv(buf, oidAt, oidEnd))}`);
    }
  }
}

/** End of the TLV at `pos`, checked against `limit` (`readTlv` without the object). Sync; throws 'der'. */
function tlvEnd(buf: Buffer, pos: number, limit: number): number {
  const len = buf[pos + 1] as number;
  const e = pos + 2 + len;
  return len < 0x80 && e <= limit ? e : readTlv(buf, pos, limit).end;
}

/** Where the content of a TLV already bounds-checked by `tlvEnd` starts. */
function contentStartOf(buf: Buffer, pos: number): number {
  const len = buf[pos + 1] as number;
  return len < 0x80 ? pos + 2 : pos + 2 + (len & 0x7f);
}
