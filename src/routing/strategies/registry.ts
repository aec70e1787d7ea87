/**
 * The routing strategies by the name a route's `strategy` gives: one line each. A strategy
 * with settings of its own (conditional's rules, adaptive's weights) is made from its
 * route, once, when first used.
 */
import type { Route } from "../../config/gateway-config"
import type { Strategy } from "../strategy"
import { adaptive } from "./adaptive"
import { conditional } from "./conditional"
import { cheapest } from "./cheapest"
import { fallback } from "./fallback"
import { fastest } from "./fastest"
import { leastBusy } from "./least-busy"
import { loadbalance } from "./loadbalance"

export const STRATEGIES = {
  fallback,
  loadbalance,
  cheapest,
  fastest,
  least_busy: leastBusy
} as const satisfies Record<string, Strategy>

export const MADE_PER_ROUTE = {
  conditional: (route: Route) => conditional(route.rules ?? []),
  adaptive: (route: Route) => adaptive(route.adaptive!)
} as const satisfies Record<string, (route: Route) => Strategy>

export type StrategyName = keyof typeof STRATEGIES | keyof typeof MADE_PER_ROUTE
