/**
 * The wait between two polls of a CRL source: symmetric ±20 % around the configured delay (so a
 * fleet started together drifts apart while its mean rate stays the configured one), never under
 * one second.
 */
import t from 'tap';
import { MIN_POLL_DELAY_MS, spreadPollDelay } from '../../src/revocation/poll-delay.js';

t.test('±20 % around the delay, uniform, mean unchanged', async (t) => {
  t.equal(spreadPollDelay(3_000, () => 0), 2_400);
  t.equal(spreadPollDelay(3_000, () => 0.5), 3_000);
  t.equal(Math.round(spreadPollDelay(3_000, () => 0.999_999)), 3_600);
  const samples = Array.from({ length: 20_000 }, () => spreadPollDelay(3_000));
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  t.ok(Math.abs(mean - 3_000) < 20, `mean ${mean.toFixed(1)} ms ≈ 3,000 ms`);
  t.ok(Math.min(...samples) >= 2_400 && Math.max(...samples) < 3_600, 'within [2.4, 3.6) s');
  t.ok(samples.filter((s) => s > 3_300).length > 4_000, 'a quarter of the waits are longer than +10 %');
});

t.test('never under the floor', async (t) => {
  t.equal(MIN_POLL_DELAY_MS, 1_000);
  t.equal(spreadPollDelay(1_000, () => 0), 1_000);
  t.equal(spreadPollDelay(100, () => 0.99), 1_000);
});
