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

/** A request-target ready for route rules: what is judged, and what is forwarded. */
export interface NormalizedTarget {
  /**
   * The decoded path (no query) that route rules judge: every `%XX` decoded as UTF-8, empty
   * segments merged. The upstream's own decoding of {@link url} gives this same path.
   */
  readonly path: string;
  /** The target to forward instead of the client's: unreserved characters decoded, other escapes upper-cased, `//` merged, the query as sent. */
  readonly url: string;
}

/** Anything that needs more than a copy: an escape, a backslash, a dot, a `#`, an empty segment, a byte outside printable ASCII. */
const NEEDS_NORMALIZING = /[%\\.#]|\/\/|[^\x21-\x7e]/;
/**
 * Readings that could make a separator or that ordinary clients never send: refused. A raw `#`
 * too: no client sends a fragment (RFC 9112 §3.2), and an upstream that parses the target as a
 * URL ends the path there, so `/admin#x` would be judged as itself but served as `/admin`.
 */
const REFUSED_FOR_RULES = /[\\#]|%2f|%5c|%7f|%(?![0-9A-Fa-f]{2})|[^\x21-\x7e]/i;
const ESCAPE = /%([0-9A-Fa-f]{2})/g;
/** RFC 3986 §2.3 unreserved: decoding these changes no URI's meaning. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const MERGE_SLASHES = /\/{2,}/g;

/** `%61` → `a` (unreserved), `%3f` → `%3F` (anything else stays escaped, in upper case). */
function normalizeEscape(escape: string, hex: string): string {
  const c = String.fromCharCode(Number.parseInt(hex, 16));
  return UNRESERVED.test(c) ? c : escape.toUpperCase();
}

/**
 * Normalises `url` for route rules, or refuses it (`undefined`, answered 400 `bad_request_target`
 * like {@link isForwardableTarget}'s refusals, which it includes). Why both a judged and a
 * forwarded form: rules must see what the upstream will see, whichever of the equivalent spellings
 * the client chose (`/%61dmin` is `/admin`), and the upstream must receive only a spelling whose
 * every standard decoding is the judged path. So:
 * - `%XX` is decoded for judging (invalid UTF-8 is refused); in the forwarded form only the
 *   unreserved characters are decoded, the rest stay escaped (`%3F` must not become a query);
 * - `%2f`, `%5c` and `\` are refused: whether an encoded slash separates segments depends on the
 *   upstream, so no single judged path would be true for every upstream (Envoy can refuse them
 *   too); so are a raw `#` in the path (the upstream may read it as the path's end), `%7f`, a `%` not followed by two hex digits, raw bytes outside printable ASCII,
 *   and {@link isForwardableTarget}'s quirk escapes (`%25`, controls, `%u`, overlong UTF-8);
 * - a dot segment after decoding (`/%2e%2e/`, `/./`, `/..;x/`) is refused, never resolved;
 * - `//` is merged into `/` in both forms, so the rule that judged `/admin` also sees what an
 *   upstream that does not merge slashes receives;
 * - case is kept: rules compare case-sensitively unless one says `ignoreCase` (paths are
 *   case-sensitive in HTTP; folding them here would change what a case-sensitive upstream gets).
 * Pure; never throws; for a path without `%`, `\`, `.`, `//` or non-ASCII it costs one regex test.
 */
export function normalizeTarget(url: string | undefined): NormalizedTarget | undefined {
  if (url === undefined || url.charCodeAt(0) !== 0x2f /* '/' */) return undefined;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!NEEDS_NORMALIZING.test(path)) return { path, url };
  if (QUIRK_ESCAPE.test(path) || REFUSED_FOR_RULES.test(path)) return undefined;
  const escaped = path.includes('%');
  let forwarded = escaped ? path.replace(ESCAPE, normalizeEscape) : path;
  if (forwarded.includes('//')) forwarded = forwarded.replace(MERGE_SLASHES, '/');
  let judged = forwarded;
  if (escaped) {
    try {
      judged = decodeURIComponent(forwarded); // throws on invalid UTF-8 (overlong forms included)
    } catch {
      return undefined;
    }
  }
  if (DOT_SEGMENT.test(judged)) return undefined;
  return { path: judged, url: forwarded === path ? url : q === -1 ? forwarded : forwarded + url.slice(q) };
}
