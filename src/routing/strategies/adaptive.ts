/**
 * `adaptive`: a learned route. A Thompson draw over what the gateway believes of each
 * target (quality from feedback and completed calls, cost and latency from the ledger:
 * see ../learned/) picks the first target, within the route's exploration bound; the
 * others follow as fallbacks, best believed first, so that learning never costs
 * availability.
 *
 *   strategy: adaptive
 *   adaptive: { weights: { quality: 1, cost: 0.3, latency: 0.1 }, exploration: 0.1, memory: 200 }
 */
import { believedScores, choose } from "../learned/bandit"
import type { AdaptiveSettings } from "../../config/adaptive"
import type { Strategy } from "../strategy"

export const adaptive = (settings: AdaptiveSettings): Strategy => ({
  order: ({ targets, beliefs, random }) => {
    if (targets.length < 2) return targets.map((t) => t.deployment)
    const arms = targets.map((t) => ({ target: t.deployment, belief: beliefs.belief(t.deployment) }))
    const { target } = choose(arms, settings, beliefs.budget, random)
    const rest = believedScores(arms, settings)
      .filter(({ arm }) => arm.target !== target)
      .sort((a, b) => b.score - a.score || a.index - b.index)
      .map(({ arm }) => arm.target)
    return [target, ...rest]
  }
})
