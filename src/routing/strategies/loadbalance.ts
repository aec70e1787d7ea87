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
    let index = pool.findIndex((t) => (pick -= t.weight) < 0)
    if (index < 0) index = pool.length - 1
    order.push(pool[index]!.deployment)
    pool.splice(index, 1)
  }
  return order
}

export const loadbalance: Strategy = { order: ({ targets, random }) => weightedOrder(targets, random) }
