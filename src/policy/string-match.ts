/**
 * Text matchers compiled once from config: exact, prefix, or a glob whose only special character
 * is `*`. A glob is split at its stars into literal pieces when compiled; matching checks the
 * first piece as a prefix, the last as a suffix, and finds the middle ones left to right with
 * `indexOf`. Taking each middle piece at its leftmost place is always right for star-only
 * patterns (a later place leaves less room, never more), so there is no backtracking: time is
 * bounded by the text length times the number of pieces, and no character of a pattern can act
 * as anything but itself (unlike a pattern turned into a RegExp).
 */

/** What config gives: a plain string is exact. */
export type TextMatchSpec = string | { readonly exact?: string | undefined; readonly prefix?: string | undefined; readonly glob?: string | undefined };

/** A compiled matcher. Pure; never throws. */
export type TextMatcher = (value: string) => boolean;

/** Compiles one text matcher (of an object, the one key given). Pure. */
export function compileTextMatch(spec: TextMatchSpec): TextMatcher {
  if (typeof spec === 'string') return (v) => v === spec;
  const { exact, prefix, glob } = spec;
  if (exact !== undefined) return (v) => v === exact;
  if (prefix !== undefined) return (v) => v.startsWith(prefix);
  if (glob !== undefined) return compileGlob(glob);
  return () => false; // the schema requires one of the three; none must match nothing
}

/** `*` matches any run of characters (none included); every other character matches itself. Pure. */
export function compileGlob(pattern: string): TextMatcher {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return (v) => v === pattern;
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  const minLength = first.length + last.length;
  return (v) => {
    if (v.length < minLength || !v.startsWith(first) || !v.endsWith(last)) return false;
    let at = first.length;
    const end = v.length - last.length;
    for (const piece of middle) {
      const found = v.indexOf(piece, at);
      if (found === -1 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}

/** True when any of `values` matches. */
export function anyMatches(matcher: TextMatcher, values: readonly string[]): boolean {
  for (const v of values) if (matcher(v)) return true;
  return false;
}
