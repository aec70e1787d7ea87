import type { ResolvedConfig } from "../config/gateway-config"
import { weightedOrder } from "./strategies/loadbalance"

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
  if (route !== undefined) return route.strategy === "fallback" ? route.targets.map((t) => t.deployment) : weightedOrder(route.targets, random)
  return config.deployments.has(model) ? [model] : undefined
}
