/**
 * `fastest`: the target with the lowest recent median latency first (time to first token
 * for streams). A target that fails often is slow in effect (its failures cost a retry
 * elsewhere), so latency counts as if each failure cost another call; a target not yet
 * measured goes first, since one call measures it.
 */
import { sortedBy, type Strategy } from "../strategy"

export const fastest: Strategy = {
  order: ({ targets, health, facts }) =>
    sortedBy(targets, (t) => {
      const latency = health.latencyMs(t.deployment, facts.stream, 50)
      if (latency === undefined) return -1
      return latency / Math.max(0.05, 1 - health.errorRate(t.deployment))
    })
}
