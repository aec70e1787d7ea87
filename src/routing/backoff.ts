import type { RetryPolicy } from "../config/gateway-config"

/**
 * The wait before retry number `attempt` (1 = the first retry): exponential with full
 * jitter, so that clients failing together do not retry together. A provider's
 * retry-after is a floor: Quorum never comes back sooner than it was asked to.
 */
export const backoffDelay = (
  attempt: number,
  policy: RetryPolicy,
  retryAfterMs: number | undefined,
  random: () => number = Math.random
): number => {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  const jittered = Math.round(ceiling * random())
  return retryAfterMs === undefined ? jittered : Math.max(Math.ceil(retryAfterMs), jittered)
}
