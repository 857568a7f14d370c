/** Field builders shared by every part of the schema. */
import { z } from 'zod';

/** A whole number, also accepted as a numeric string so `${PORT}` substitution works. */
export function int(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v),
    z.number().int().min(min).max(max),
  );
}

/** A boolean, also accepted as "true"/"false" so `${FLAG}` substitution works. */
export function bool() {
  return z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());
}
