/**
 * Which request-targets the sidecar forwards. The forwarder joins the path of `upstream.url` and
 * the client's target by concatenation (`/base` + `/x?q`), so a target is forwarded only when that
 * join cannot leave the base path: origin-form (starts with `/`) with no dot segment.
 *
 * Why refuse dot segments rather than normalise them (RFC 3986 §5.2.4): the upstream decodes the
 * path by its own rules — `%2e` as `.`, `%2f` or `\` as `/`, `..;x` as `..` (Tomcat) — and a
 * normalisation here would have to reproduce all of them; one missed reading is a traversal.
 * Refusing every segment that is `.` or `..` under any of those readings is exact, and costs real
 * clients nothing: browsers, curl and HTTP libraries remove dot segments before sending (strict
 * proxies such as nginx refuse the encoded ones too).
 *
 * Escapes that only an upstream with its own decoding quirks would read as a dot or separator
 * are refused outright, since no ordinary client sends them: `%25` (a second decoding turns
 * `%252e` into `.`), `%00`–`%1f` (a NUL or control cut: `..%00`), `%u` (IIS: `%u002e`) and
 * `%c0`/`%c1` (overlong UTF-8: `%c0%ae`). `%3b` is read as `;` for the segment test (`.%2e%3b`).
 * Not covered: an upstream that applies Unicode normalisation (NFKC) to paths, which would read
 * the fullwidth `%ef%bc%8e` as `.`.
 *
 * Absolute-form (`http://evil/x`, which undici would send on verbatim), authority-form and
 * asterisk-form (`*`, OPTIONS included: undici cannot send it, so it would surface as a 502) are
 * refused as well.
 */

/** A path with none of these holds no dot segment in any reading: the common case costs one test. */
const MAY_HIDE_DOT_SEGMENT = /[.%\\]/;
/** Escapes ordinary clients never send and quirky decoders read as a dot, a separator or an end. */
const QUIRK_ESCAPE = /%(?:25|[01][0-9a-f]|u|c[01])/i;
const ENCODED_DOT = /%2e/gi;
const ENCODED_SEMICOLON = /%3b/gi;
const SEPARATOR_READINGS = /%2f|%5c|\\/gi;
/** After the readings above: a segment that is `.` or `..`, possibly with `;params` (Tomcat), or ending the path. */
const DOT_SEGMENT = /\/\.\.?(?:[/;#]|$)/;

/**
 * True when `url` (the request-target as received, `req.url`) may be joined to the upstream base
 * path. Pure; never throws; one regex test for a path without `.`, `%` or `\`.
 */
export function isForwardableTarget(url: string | undefined): boolean {
  if (url === undefined || url.charCodeAt(0) !== 0x2f /* '/' */) return false;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!MAY_HIDE_DOT_SEGMENT.test(path)) return true;
  if (QUIRK_ESCAPE.test(path)) return false;
  return !DOT_SEGMENT.test(path.replace(ENCODED_DOT, '.').replace(ENCODED_SEMICOLON, ';').replace(SEPARATOR_READINGS, '/'));
}
