export { FAILURE_REASONS, reasonForTlsClientError, reasonForVerifyError, type FailureReason } from './reasons.js';
export { createTrustIndex, isSelfIssued, type TrustIndex } from './trust.js';
export { buildVerifiedPath, presentedCertificates, type CertPath, type PathOutcome } from './path.js';
export {
  createPeerVerifier,
  decideRevocation,
  type PathHints,
  type PeerSummary,
  type PeerVerifier,
  type PeerVerifierOptions,
  type RevocationGate,
  type RevocationOutcome,
  type Verdict,
  type VerifiedIdentity,
} from './verify-peer.js';
