export { FAILURE_REASONS, reasonForTlsClientError, reasonForVerifyError, type FailureReason } from './reasons.js';
export { createTrustIndex, isSelfIssued, walkChain, type TrustIndex } from './trust.js';
export {
  createPeerVerifier,
  type PeerSummary,
  type PeerVerifier,
  type PeerVerifierOptions,
  type RevocationGate,
  type RevocationOutcome,
  type Verdict,
  type VerifiedIdentity,
} from './verify-peer.js';
