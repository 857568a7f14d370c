import { SidecarError } from '../errors.js';

/** The subject alternative names an identity is made of, each list in certificate order. */
export interface SubjectAltNames {
  uri: string[];
  dns: string[];
  email: string[];
  /** IPv4 dotted quads; IPv6 in RFC 5952 form (`fe80::1`, `::ffff:192.0.2.1`). */
  ip: string[];
}

const SAN_TYPE = /^[A-Za-z][A-Za-z0-9]*(?: [A-Za-z0-9]+)*$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6_NODE = /^[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}$/;

/**
 * Parses the subject-alternative-name string of Node's `X509Certificate.subjectAltName` (the
 * same as `tlsSocket.getPeerCertificate().subjectaltname`) into URIs, DNS names, e-mail
 * addresses and IP addresses; other kinds (DirName, othername, Registered ID, X400Name,
 * EdiPartyName, anything new) are skipped.
 *
 * The format is `TYPE:value` entries joined by ", ". Since Node 17 (CVE-2021-44532) a value that
 * holds `,` `"` `\` `'`, a control byte or (in IA5String kinds) a non-ASCII byte is printed as a
 * JSON string literal, `URI:"urn:a\u002cb"`; only such literals can contain a comma, so the
 * split here is exact: an attacker's `DNS:a, DNS:b` stays one DNS name. (Node started with
 * `--security-revert=CVE-2021-44532` prints the old, ambiguous format: do not run it so.)
 *
 * Values are returned unescaped and may hold control characters, spaces and quotes: encode them
 * before they reach a header. Pure and synchronous; `undefined` (no extension) gives empty lists.
 * Fails closed with a `SidecarError` `ERR_PKI` (fault `subjectAltName`) and returns nothing when:
 * the text is not in Node's format; `null` (Node could not print the extension); a URI, DNS
 * name or e-mail holds a non-ASCII byte (RFC 5280 makes them IA5String; Go refuses such
 * certificates as well, and dropping the one entry could let it slip past a deny rule); an IP
 * entry is not 4 or 16 bytes.
 */
export function parseSubjectAltName(s: string | null | undefined): SubjectAltNames {
  const out: SubjectAltNames = { uri: [], dns: [], email: [], ip: [] };
  if (s === undefined) return out;
  if (s === null) throw malformed('Node could not print the subjectAltName extension');
  let pos = 0;
  while (pos < s.length) {
    const colon = s.indexOf(':', pos);
    if (colon < 0) throw malformed(`entry without a type at offset ${pos}`);
    const type = s.slice(pos, colon);
    // Node's kinds are fixed words ("DNS", "IP Address", "othername" ...). Anything else means
    // the text was not split where Node joined it, and reading on could misplace a value.
    if (!SAN_TYPE.test(type)) throw malformed(`bad entry type ${JSON.stringify(type)} at offset ${pos}`);
    let value: string;
    if (s[colon + 1] === '"') {
      const end = closingQuote(s, colon + 1);
      value = parseJsonString(s.slice(colon + 1, end + 1));
      pos = end + 1;
    } else {
      // Node quotes every value holding a comma, so the next ", " ends an unquoted one; one
      // holding what Node would have quoted means the text was not made by Node.
      const comma = s.indexOf(', ', colon + 1);
      pos = comma < 0 ? s.length : comma;
      value = s.slice(colon + 1, pos);
      if (/[,"'\\\x00-\x1f\x7f]/.test(value)) throw malformed(`unquoted ${type} value ${JSON.stringify(value)}`);
    }
    if (pos < s.length) {
      if (!s.startsWith(', ', pos)) throw malformed(`expected ", " after the ${type} entry at offset ${pos}`);
      pos += 2;
    }
    switch (type) {
      case 'URI':
        out.uri.push(ia5(type, value));
        break;
      case 'DNS':
        out.dns.push(ia5(type, value));
        break;
      case 'email':
        out.email.push(ia5(type, value));
        break;
      case 'IP Address':
        out.ip.push(formatIp(value));
        break;
      default:
        break;
    }
  }
  return out;
}

// The literal starts at `open`; a backslash always escapes the next character (the four hex
// digits of \uXXXX are never a quote), so the first unescaped quote closes it.
function closingQuote(s: string, open: number): number {
  for (let j = open + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j;
  }
  throw malformed(`unterminated quoted value at offset ${open}`);
}

function parseJsonString(literal: string): string {
  let value: unknown;
  try {
    value = JSON.parse(literal);
  } catch (cause) {
    throw malformed(`bad quoted value ${literal}`, cause);
  }
  if (typeof value !== 'string') throw malformed(`bad quoted value ${literal}`);
  return value;
}

// Node escapes each byte of an IA5String kind as \u00XX, so a code point above 0x7F is a
// non-ASCII byte in the certificate, not a character.
function ia5(type: string, value: string): string {
  if (/[^\x00-\x7f]/.test(value)) throw malformed(`non-ASCII byte in a ${type} entry, which must be an IA5String`);
  return value;
}

function formatIp(value: string): string {
  const v4 = IPV4.exec(value);
  if (v4) {
    if (v4.slice(1).some((octet) => Number(octet) > 255)) throw malformed(`bad IP address ${value}`);
    return value;
  }
  if (!IPV6_NODE.test(value)) throw malformed(`bad IP address ${JSON.stringify(value)}`);
  return formatIpv6(value.split(':').map((group) => Number.parseInt(group, 16)));
}

/**
 * Eight 16-bit groups as RFC 5952 text: lower case, no leading zeros, the first longest run of two
 * or more zero groups as "::", and an IPv4-mapped address with its IPv4 part dotted (the form Node
 * reports for a socket; Node prints a SAN as `FE80:0:0:0:0:0:0:1`). Sync, never throws.
 */
export function formatIpv6(groups: readonly number[]): string {
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6);
    return `::ffff:${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  let best = { start: -1, length: 1 };
  for (let i = 0; i < groups.length; ) {
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

function malformed(detail: string, cause?: unknown): SidecarError {
  return new SidecarError(
    'ERR_PKI',
    'subjectAltName',
    `not a subjectAltName as Node prints it: ${detail}`,
    cause === undefined ? undefined : { cause },
  );
}
