import { SidecarError } from '../errors.js';

/** One attribute type and value of an RDN; the value as the UTF-8 bytes it stands for. */
interface Ava {
  type: string;
  value: Uint8Array;
}

// Node prints OpenSSL's short name (CN, emailAddress, RSA-SHA512/224 ...) or a dotted OID.
const ATTRIBUTE_TYPE = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
const HEX_PAIR = /^[0-9A-Fa-f]{2}$/;
// RFC 4514 section 2.4: escaped anywhere in a value.
const SPECIAL = new Set([...'"+,;<>\\'].map((c) => c.charCodeAt(0)));
const SPACE = 0x20;
const SHARP = 0x23;

/**
 * Turns the distinguished name Node prints for `X509Certificate.subject` / `.issuer` into an
 * RFC 4514 string made only of printable ASCII (0x20-0x7E), fit for an HTTP header value.
 *
 * Input: one RDN per line in certificate order, the AVAs of a multi-valued RDN joined by " + ",
 * values escaped by OpenSSL (`ASN1_STRFLGS_ESC_2253 | ESC_CTRL | UTF8_CONVERT`): `\,` style for
 * RFC 2253 specials, `\0A` style for control bytes, everything else raw UTF-8.
 * Output: RDNs last-to-first joined by ","; the AVAs of a multi-valued RDN reversed too and joined
 * by "+", which is byte for byte what `openssl x509 -nameopt RFC2253` prints for the same name
 * in all but three cases: a value that is only "#" (OpenSSL forgets to escape it; here `\#`), a
 * leading or trailing space (`\20` here, never `\ `, so that a header parser trimming whitespace
 * cannot strip the space off a trailing backslash), and an attribute OpenSSL has no name for or
 * whose value is not a string, which OpenSSL dumps as `#<hex DER>` but Node prints as text (a
 * non-string value as its DER bytes read as Latin-1). Each value is unescaped to its
 * bytes and escaped again: RFC 4514 specials with a backslash, and every control or non-ASCII
 * byte as `\XX` of its UTF-8 encoding (e.g. "Zoë" becomes `Zo\C3\AB`).
 *
 * The result contains commas: quote or encode it before it goes into a list-valued header.
 * Node's text does not keep the ASN.1 string type, so two names that differ only in it (or a
 * text value and a DER value that reads the same) give the same string; compare DER when that
 * matters. Pure and synchronous. `undefined` (what Node gives for an empty name) and "" give "".
 * Throws a `SidecarError` `ERR_PKI` (fault `dn`) on text that is not in Node's format: a line
 * without "=", an attribute type that is neither a short name nor an OID, a dangling or
 * malformed escape. It never passes such text through.
 */
export function formatRfc4514(nodeName: string | undefined): string {
  if (nodeName === undefined || nodeName === '') return '';
  return nodeName
    .split('\n')
    .map(parseRdn)
    .reverse()
    .map((rdn) => rdn.reverse().map((ava) => `${ava.type}=${escapeValue(ava.value)}`).join('+'))
    .join(',');
}

/** One attribute of a name: its type as Node prints it (`CN`, `OU`, `O`, or a dotted OID) and its value as text. */
export interface NameAttribute {
  readonly type: string;
  readonly value: string;
}

/**
 * The attributes of a name as Node prints it (see {@link formatRfc4514}), in certificate order,
 * each value unescaped and decoded as UTF-8 (invalid bytes become U+FFFD, so a value that is not
 * text can never equal one an operator wrote). For matching on subject fields without parsing
 * RFC 4514 again. Pure; throws the same `SidecarError` as formatRfc4514 on text not in Node's format.
 */
export function nameAttributes(nodeName: string | undefined): NameAttribute[] {
  if (nodeName === undefined || nodeName === '') return [];
  return nodeName.split('\n').flatMap((line) => parseRdn(line).map((ava) => ({ type: ava.type, value: Buffer.from(ava.value).toString('utf8') })));
}

// OpenSSL escapes every "+" in a value and every control byte, so an unescaped " + " always
// separates AVAs and a raw "\n" always separates RDNs; escapes are consumed left to right so
// that an escaped backslash or space next to a separator is read correctly.
function parseRdn(line: string): Ava[] {
  const avas: Ava[] = [];
  let i = 0;
  for (;;) {
    const eq = line.indexOf('=', i);
    const type = eq < 0 ? '' : line.slice(i, eq);
    if (!ATTRIBUTE_TYPE.test(type)) throw malformed(`no attribute type before "=" in ${JSON.stringify(line)}`);
    const bytes: number[] = [];
    i = eq + 1;
    while (i < line.length && !line.startsWith(' + ', i)) {
      if (line[i] === '\\') {
        const next = line.codePointAt(i + 1);
        if (next === undefined) throw malformed(`dangling "\\" in ${JSON.stringify(line)}`);
        if (/[0-9A-Fa-f]/.test(String.fromCodePoint(next))) {
          // OpenSSL never backslash-escapes a hex digit, so this must be a `\XX` byte.
          const pair = line.slice(i + 1, i + 3);
          if (!HEX_PAIR.test(pair)) throw malformed(`bad "\\${pair}" escape in ${JSON.stringify(line)}`);
          bytes.push(Number.parseInt(pair, 16));
          i += 3;
        } else {
          bytes.push(...utf8(next));
          i += 1 + (next > 0xffff ? 2 : 1);
        }
      } else {
        const cp = line.codePointAt(i) as number;
        bytes.push(...utf8(cp));
        i += cp > 0xffff ? 2 : 1;
      }
    }
    avas.push({ type, value: Uint8Array.from(bytes) });
    if (i >= line.length) return avas;
    i += 3; // past " + "
  }
}

function escapeValue(bytes: Uint8Array): string {
  let out = '';
  bytes.forEach((b, i) => {
    const edge = i === 0 || i === bytes.length - 1;
    if (b < 0x20 || b > 0x7e || (b === SPACE && edge)) out += `\\${hex(b)}`;
    else if (SPECIAL.has(b) || (b === SHARP && i === 0)) out += `\\${String.fromCharCode(b)}`;
    else out += String.fromCharCode(b);
  });
  return out;
}

function utf8(codePoint: number): Buffer {
  return Buffer.from(String.fromCodePoint(codePoint), 'utf8');
}

function hex(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}

function malformed(detail: string): SidecarError {
  return new SidecarError('ERR_PKI', 'dn', `not a distinguished name as Node prints it: ${detail}`);
}

/**
 * Escapes text for use as one attribute value inside an RFC 4514 string (RFC 4514 §2.4), so an
 * untrusted value (a device id) can never add or change an attribute of the name. Pure.
 */
export function escapeRdnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}
