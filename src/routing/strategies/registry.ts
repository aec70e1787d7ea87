/**
 * The routing strategies by the name a route's `strategy` gives: one line each. A strategy
 * with settings of its own (conditional's rules, adaptive's weights) is made from its
 * route, once, when first used.
 */
import type { Route } from "../../config/gateway-config"
import type { StrategyName } from "../../config/route-rules"
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
} as const satisfies Partial<Record<StrategyName, Strategy>>

export const MADE_PER_ROUTE = {
  conditional: (route: Route) => conditional(route.rules ?? []),
  adaptive: (route: Route) => adaptive(route.adaptive!)
} as const satisfies Partial<Record<StrategyName, (route: Route) => Strategy>>

/** Does not compile while a name the config accepts has no strategy here. */
type Unimplemented = Exclude<StrategyName, keyof typeof STRATEGIES | keyof typeof MADE_PER_ROUTE>
export const EVERY_NAME_IMPLEMENTED: [Unimplemented] extends [never] ? true : Unimplemented = true
