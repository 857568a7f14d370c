/** RFC 5280 §5.3.1 CRLReason: the one list of names and codes (CRL entries, OCSP RevokedInfo, the CA's store and API). */

/** The ENUMERATED code of each CRLReason name (code 7 is unassigned). */
export const CRL_REASON_CODES = Object.freeze({
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
  cessationOfOperation: 5, certificateHold: 6, removeFromCRL: 8, privilegeWithdrawn: 9, aACompromise: 10,
} as const);

/** A CRLReason name. */
export type CrlReason = keyof typeof CRL_REASON_CODES;

/**
 * The reasons the device CA revokes with (its admin API accepts exactly these; its store's CHECK
 * constraint lists the same). Left out: cACompromise and aACompromise (not about one device),
 * removeFromCRL (delta CRLs only).
 */
export const CA_REVOCATION_REASONS = Object.freeze([
  'unspecified',
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const satisfies readonly CrlReason[]);

/** A reason the device CA revokes with. */
export type CaRevocationReason = (typeof CA_REVOCATION_REASONS)[number];
