/**
 * `loadbalance`: the first target drawn by weight, and the rest follow (also drawn by
 * weight) as fallbacks, so that balancing never costs availability.
 */
import type { Strategy, Target } from "../strategy"

export const weightedOrder = (targets: ReadonlyArray<Target>, random: () => number): ReadonlyArray<string> => {
  const pool = [...targets]
  const order: Array<string> = []
  while (pool.length > 0) {
    const total = pool.reduce((sum, t) => sum + t.weight, 0)
    let pick = random() * total
    const index = pool.findIndex((t) => (pick -= t.weight) < 0)
    // Rounding can leave a sliver past the last weight: the last target takes it.
    const [drawn] = pool.splice(index < 0 ? pool.length - 1 : index, 1)
    if (drawn !== undefined) order.push(drawn.deployment)
  }
  return order
}

export const loadbalance: Strategy = { order: ({ targets, random }) => weightedOrder(targets, random) }
