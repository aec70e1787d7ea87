/**
 * The routing strategies by the name a route's `strategy` gives: one line each. A strategy
 * with settings of its own (conditional's rules, adaptive's weights) is made from its
 * route, once, when first used.
 */
import { DEFAULT_ADAPTIVE } from "../../config/adaptive"
import type { Route } from "../../config/gateway-config"
import type { Strategy } from "../strategy"
import { adaptive } from "./adaptive"
import { conditional } from "./conditional"
import { cheapest } from "./cheapest"
import { fallback } from "./fallback"
import { fastest } from "./fastest"
import { leastBusy } from "./least-busy"
import { loadbalance } from "./loadbalance"
import { roundRobin } from "./round-robin"

export const STRATEGIES = {
  fallback,
  loadbalance,
  cheapest,
  fastest,
  least_busy: leastBusy,
  round_robin: roundRobin
} as const satisfies Record<string, Strategy>

export const MADE_PER_ROUTE = {
  conditional: (route: Route) => conditional(route.rules ?? []),
  // The resolved config gives every adaptive route its settings; a route made elsewhere gets the same defaults.
  adaptive: (route: Route) => adaptive(route.adaptive ?? DEFAULT_ADAPTIVE)
} as const satisfies Record<string, (route: Route) => Strategy>

/** Every name a route's `strategy` may give. */
export const STRATEGY_NAMES: ReadonlyArray<string> = [...Object.keys(STRATEGIES), ...Object.keys(MADE_PER_ROUTE)]

const shared = new Map<string, Strategy>(Object.entries(STRATEGIES))
const perRoute = new Map<string, (route: Route) => Strategy>(Object.entries(MADE_PER_ROUTE))
const made = new WeakMap<Route, Strategy>()

/** A route's strategy: a shared one by name, or its own (made from its settings, once); undefined for a name none has. */
export const strategyFor = (route: Route): Strategy | undefined => {
  const strategy = shared.get(route.strategy) ?? made.get(route)
  if (strategy !== undefined) return strategy
  const make = perRoute.get(route.strategy)
  if (make === undefined) return undefined
  const own = make(route)
  made.set(route, own)
  return own
}
