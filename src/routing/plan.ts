import type { ResolvedConfig, Route } from "../config/gateway-config"

/**
 * The deployments to try for a model name, in order. A fallback route keeps its order;
 * a load-balanced one is drawn by weight, and the rest follow (also by weight) as
 * fallbacks, so that balancing never costs availability.
 */
export const planTargets = (
  config: ResolvedConfig,
  model: string,
  random: () => number = Math.random
): ReadonlyArray<string> | undefined => {
  const route = config.routes.get(model)
  if (route !== undefined) return route.strategy === "fallback" ? route.targets.map((t) => t.deployment) : weightedOrder(route, random)
  return config.deployments.has(model) ? [model] : undefined
}

const weightedOrder = (route: Route, random: () => number): ReadonlyArray<string> => {
  const pool = [...route.targets]
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
