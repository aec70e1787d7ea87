/**
 * The routing strategies by the name a route's `strategy` gives: one line each. A strategy
 * with settings of its own (conditional's rules) is made from them when the config loads.
 */
import type { Strategy } from "../strategy"
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

export type StrategyName = keyof typeof STRATEGIES | "conditional" | "adaptive"
