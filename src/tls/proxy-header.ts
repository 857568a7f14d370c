/**
 * A strict reader of the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
 * that a load balancer puts in front of the client's first byte. Pure and incremental: it is
 * called again with more bytes until it answers something other than `incomplete`, so a header
 * split across TCP segments and a header followed by the ClientHello in one segment both work.
 *
 * Hand-written rather than taken from npm: the parsers there (proxy-protocol-js and kin) read a
 * complete buffer with a regular expression, accept v1 lines of any length and addresses they
 * never check, and cannot say "not enough bytes yet"; the one that stands between a client and
 * the address our logs and limits believe has to refuse all of that.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatIpv6 } from '../pki/index.js';

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's bound on a v1 line, `PROXY … \r\n` included. */
export const MAX_V1_BYTES = 107;
/**
 * Our bound on a whole v2 header. The spec sets none beyond the 16-bit length; addresses take at
 * most 216 bytes (AF_UNIX) and load balancers add a few short TLVs (AWS's VPC endpoint id,
 * Azure's link id, GCP's PSC data), so 2 KiB leaves room without letting a peer make us buffer 64 KiB.
 */
export const MAX_V2_BYTES = 2_048;
const V2_FIXED = 16;

/** The client a header names; only a PROXY command over TCP carries one. */
export interface ProxiedClient {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

export type ProxyHeaderResult =
  /** Every byte so far fits a header; more are needed to decide. */
  | { readonly kind: 'incomplete' }
  /** The bytes do not start with a PROXY signature at all (a plain TLS client, say). */
  | { readonly kind: 'absent' }
  /** A signature followed by something the spec does not allow; `detail` is for logs. */
  | { readonly kind: 'invalid'; readonly detail: string }
  /**
   * A complete header of `length` bytes. `client` is undefined when the header names no TCP
   * client (v2 LOCAL, as in health checks; v1 UNKNOWN; v2 AF_UNIX or AF_UNSPEC): the socket's own
   * address stands then.
   */
  | { readonly kind: 'header'; readonly version: 1 | 2; readonly length: number; readonly client: ProxiedClient | undefined };

const INCOMPLETE: ProxyHeaderResult = Object.freeze({ kind: 'incomplete' });
const ABSENT: ProxyHeaderResult = Object.freeze({ kind: 'absent' });
const invalid = (detail: string): ProxyHeaderResult => ({ kind: 'invalid', detail });

/** How far `data` agrees with `signature`: `full`, `prefix` (data ran out first) or `no`. */
function matchSignature(data: Buffer, signature: Buffer): 'full' | 'prefix' | 'no' {
  const n = Math.min(data.length, signature.length);
  for (let i = 0; i < n; i++) if (data[i] !== signature[i]) return 'no';
  return n === signature.length ? 'full' : 'prefix';
}

/**
 * Whether `data` (the first bytes of a connection) starts like a PROXY header: `yes`, `no`, or
 * `maybe` while it is shorter than a signature and agrees with one so far. Sync, never throws.
 */
export function startsLikeProxyHeader(data: Buffer): 'yes' | 'no' | 'maybe' {
  const v1 = matchSignature(data, V1_PREFIX);
  const v2 = matchSignature(data, V2_SIGNATURE);
  if (v1 === 'full' || v2 === 'full') return 'yes';
  return v1 === 'prefix' || v2 === 'prefix' ? 'maybe' : 'no';
}

/** Reads the header at the start of `data` (everything received so far). Sync, never throws. */
export function parseProxyHeader(data: Buffer): ProxyHeaderResult {
  if (data.length === 0) return INCOMPLETE;
  const v1 = matchSignature(data, V1_PREFIX);
  if (v1 === 'full') return parseV1(data);
  const v2 = matchSignature(data, V2_SIGNATURE);
  if (v2 === 'full') return parseV2(data);
  return v1 === 'prefix' || v2 === 'prefix' ? INCOMPLETE : ABSENT;
}

/** A decimal port as the spec writes it: 0–65535, no sign, no leading zero. */
function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65_535 ? port : undefined;
}

function parseV1(data: Buffer): ProxyHeaderResult {
  const window = Math.min(data.length, MAX_V1_BYTES);
  let end = -1;
  for (let i = V1_PREFIX.length; i < window; i++) {
    const b = data[i]!;
    if (b === 0x0d) {
      end = i;
      break;
    }
    // Printable US-ASCII only: the line is text, and this also stops at a stray LF.
    if (b < 0x20 || b > 0x7e) return invalid('v1: a byte that is not printable ASCII before CRLF');
  }
  if (end === -1) return data.length >= MAX_V1_BYTES ? invalid(`v1: no CRLF within ${MAX_V1_BYTES} bytes`) : INCOMPLETE;
  if (end + 1 >= data.length) return INCOMPLETE;
  if (data[end + 1] !== 0x0a) return invalid('v1: CR not followed by LF');
  const length = end + 2;
  const fields = data.toString('latin1', V1_PREFIX.length, end).split(' ');
  if (fields[0] === 'UNKNOWN') return { kind: 'header', version: 1, length, client: undefined };
  if (fields.length !== 5) return invalid('v1: expected "TCP4|TCP6 source destination sport dport"');
  const [proto, src, dst, sport, dport] = fields as [string, string, string, string, string];
  const isFamily = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined;
  if (isFamily === undefined) return invalid('v1: protocol is not TCP4, TCP6 or UNKNOWN');
  if (!isFamily(src) || !isFamily(dst)) return invalid(`v1: an address is not a valid ${proto} address`);
  const port = parsePort(sport);
  if (port === undefined || parsePort(dport) === undefined) return invalid('v1: a port is not a decimal 0-65535');
  return { kind: 'header', version: 1, length, client: { address: src, port, family: proto === 'TCP4' ? 'IPv4' : 'IPv6' } };
}

function parseV2(data: Buffer): ProxyHeaderResult {
  if (data.length < V2_FIXED) return INCOMPLETE;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`v2: version ${versionCommand >> 4}, not 2`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`v2: command ${command} is neither LOCAL nor PROXY`);
  const family = data[13]! >> 4;
  const transport = data[13]! & 0x0f;
  const payload = data.readUInt16BE(14);
  const length = V2_FIXED + payload;
  if (length > MAX_V2_BYTES) return invalid(`v2: header of ${length} bytes exceeds ${MAX_V2_BYTES}`);
  if (data.length < length) return INCOMPLETE;
  // LOCAL: the proxy speaks for itself (health checks); whatever the address block says is ignored.
  if (command === 0) return { kind: 'header', version: 2, length, client: undefined };
  if (family > 3 || transport > 2) return invalid(`v2: unknown address family ${family} or transport ${transport}`);
  // AF_UNSPEC and AF_UNIX name no TCP client: the socket's address stands, and the block is skipped.
  if (family === 0 || family === 3) return { kind: 'header', version: 2, length, client: undefined };
  if (transport !== 1) return invalid('v2: PROXY over a transport other than STREAM');
  // The TLVs after the addresses are skipped as a whole: `length` already bounds them.
  if (family === 1) {
    if (payload < 12) return invalid('v2: AF_INET address block shorter than 12 bytes');
    const address = `${data[16]}.${data[17]}.${data[18]}.${data[19]}`;
    return { kind: 'header', version: 2, length, client: { address, port: data.readUInt16BE(24), family: 'IPv4' } };
  }
  if (payload < 36) return invalid('v2: AF_INET6 address block shorter than 36 bytes');
  return { kind: 'header', version: 2, length, client: { address: readIpv6(data, 16), port: data.readUInt16BE(48), family: 'IPv6' } };
}

/** The 16 bytes at `offset` in the form Node reports for a socket (`::1`, `::ffff:192.0.2.1`). */
function readIpv6(data: Buffer, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(data.readUInt16BE(offset + i * 2));
  return formatIpv6(groups);
}
