/** Field builders shared by every part of the schema. */
import { z } from 'zod';

/**
 * The text a field also accepts besides values of its own type, because its preprocess converts
 * that text (a JSON Schema fragment). The generator of the published JSON Schema reads it
 * (json-schema.ts); zod's own conversion sees only the type after the preprocess.
 */
export const acceptedText = z.registry<z.core.JSONSchema.BaseSchema>();

/** A whole number, also accepted as a numeric string so `${PORT}` substitution works. */
export function int(min: number, max: number) {
  return z
    .preprocess(
      (v) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v),
      z.number().int().min(min).max(max),
    )
    .register(acceptedText, { type: 'string', pattern: '^\\s*-?\\d+\\s*$' }); // the test above, with trim()
}

/** A boolean, also accepted as "true"/"false" so `${FLAG}` substitution works. */
export function bool() {
  return z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean()).register(acceptedText, { enum: ['true', 'false'] });
}
