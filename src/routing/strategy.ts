/**
 * How a route orders its targets for one request. A strategy is one file under
 * strategies/ and one line in strategies/registry.ts; it sees the route's targets, what
 * is known of the request, live health, and what the request would cost on each target,
 * and returns the deployments to try, first choice first. The router then tries them in
 * that order, skipping open circuits; per-request limits (constraints.ts) filter after.
 */
import type { RequestFacts } from "./facts"
import type { HealthView } from "./health"
import type { RouteBeliefs } from "./learned/view"

export interface Target {
  readonly deployment: string
  readonly weight: number
}

export interface StrategyInput {
  readonly routeId: string
  readonly targets: ReadonlyArray<Target>
  readonly facts: RequestFacts
  readonly health: HealthView
  /** The request's worst-case cost on a deployment in micro-dollars; 0 where it has no price. */
  readonly costMicros: (deployment: string) => number
  /** The order another route or a deployment gives (a conditional rule may hand over to one). */
  readonly resolve: (modelOrRoute: string) => ReadonlyArray<string>
  /** A learned route's beliefs, as this worker last read them (read only; its exploration budget is this worker's). */
  readonly beliefs: RouteBeliefs
  readonly random: () => number
}

export interface Strategy {
  readonly order: (input: StrategyInput) => ReadonlyArray<string>
}

/** Targets sorted by a score, lowest first; equal scores keep their configured order. */
export const sortedBy = (targets: ReadonlyArray<Target>, score: (t: Target) => number): ReadonlyArray<string> =>
  targets
    .map((t, i) => ({ t, i, s: score(t) }))
    .sort((a, b) => a.s - b.s || a.i - b.i)
    .map(({ t }) => t.deployment)
