/**
 * Encodings that put certificate-derived text into HTTP header values. Certificate fields are
 * chosen by whoever obtained the certificate; whatever they hold, the output of these functions
 * contains no CR, LF, NUL, other control byte or non-ASCII byte, so it can neither split a header
 * nor be rewritten differently by the next HTTP implementation on the way.
 */

// Printable ASCII except the list and parameter delimiters of HTTP field values, and `%` (the escape).
const TOKEN_SAFE = /^[\x21-\x7e]*$/;
const TOKEN_RESERVED = /[,";%]/;
const TOKEN_UNSAFE_PRINTABLE = new Set([...',";%'].map((c) => c.charCodeAt(0)));
const XFCC_NEEDS_QUOTES = /[,;="\\ ]/;

/**
 * Percent-encodes (`%XX` of the UTF-8 bytes, upper-case hex) every byte outside printable ASCII
 * 0x21-0x7E, plus `,` `"` `;` and `%` itself; every other byte is copied. The result can stand
 * alone in a header value or as one item of a comma-separated list, and the encoding is injective:
 * percent-decoding (`decodeURIComponent`) gives the input back exactly, so two different device
 * ids never share a header value (`a,b` → `a%2Cb`, `a%2Cb` → `a%252Cb`).
 *
 * The price: a SAN URI that is itself percent-encoded is encoded again (`urn:a%20b` →
 * `urn:a%2520b`); decode once to get the URI as issued. The one input that does not round-trip
 * is a lone UTF-16 surrogate: it has no UTF-8 form and is encoded as U+FFFD (`%EF%BF%BD`), so
 * decoding gives `value.toWellFormed()`. Pure; never throws.
 */
export function encodeHeaderToken(value: string): string {
  if (TOKEN_SAFE.test(value) && !TOKEN_RESERVED.test(value)) return value;
  return percentEncode(value, (b) => b < 0x21 || b > 0x7e || TOKEN_UNSAFE_PRINTABLE.has(b));
}

/**
 * Formats one value of Envoy's `X-Forwarded-Client-Cert` element (`Key=value;Key=value`).
 * Control and non-ASCII bytes are first percent-encoded as `%XX` (space, `%` and the rest of
 * printable ASCII stay). The value is then double-quoted when `always` is set (Envoy always
 * quotes `Subject`), when it contains `,` `;` or `=` (Envoy's rule), or when it contains a space,
 * `"` or `\`; inside the quotes `"` and `\` are escaped with a backslash. Envoy's documentation
 * only names `\"`; `\\` is escaped as well because a value ending in a backslash would otherwise
 * escape the closing quote, which lets it run into the next key. A consumer that does not
 * unescape `\\` sees an RFC 4514 subject's escapes doubled. Pure; never throws.
 */
export function quoteXfccValue(value: string, options: { always?: boolean } = {}): string {
  const safe = percentEncode(value, (b) => b < 0x20 || b > 0x7e);
  if (!options.always && !XFCC_NEEDS_QUOTES.test(safe)) return safe;
  return `"${safe.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * An RFC 8941 structured-field Byte Sequence: `:` base64 (standard alphabet, padded) `:`. With
 * a certificate's DER this is the value of the RFC 9440 `Client-Cert` header; a `Client-Cert-Chain`
 * is such items joined by ", ". Pure; never throws; empty input gives `::`.
 */
export function sfBinary(der: Uint8Array): string {
  return `:${Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')}:`;
}

function percentEncode(value: string, unsafe: (byte: number) => boolean): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    out += unsafe(b) ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}
