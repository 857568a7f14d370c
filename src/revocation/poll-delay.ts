/**
 * How long a CRL source waits before its next poll: the planned delay spread ±20 %, never under
 * one second (no hot loop, whatever the configuration).
 *
 * Why symmetric and this wide: sidecars started together (a rollout, a node pool coming back)
 * would otherwise poll the CA in step for as long as they run. Each poll moves a sidecar by a
 * uniform ±0.2 interval against the others, a random walk that spreads a fleet started in the
 * same instant evenly over the interval within about six polls (20 s at the default 3 s), so the
 * CA sees a flat rate. Symmetric keeps the mean at the configured interval (the previous −10 %
 * only made every sidecar poll 5 % more often than configured). The longest wait, 1.2 × the
 * interval, is what the README's revoke → refusal bound is computed from.
 */

/** Half the width of the spread, as a share of the delay. */
export const POLL_JITTER = 0.2;
/** The shortest wait between two polls of one source. */
export const MIN_POLL_DELAY_MS = 1_000;

/** `ms` × a uniform factor in [0.8, 1.2), at least MIN_POLL_DELAY_MS. Pure given `random`. */
export function spreadPollDelay(ms: number, random: () => number = Math.random): number {
  return Math.max(MIN_POLL_DELAY_MS, ms * (1 - POLL_JITTER + 2 * POLL_JITTER * random()));
}
