/**
 * What a worker knows of its learned routes, for strategies, which are synchronous: a
 * snapshot of the beliefs that the belief store (store.ts) refreshes from the database,
 * and per route the exploration budget of this worker's own choices. The router hands
 * plan.ts the config and no service, so the snapshot is attached to the config it serves;
 * a config nobody attached one to (a unit test of plan.ts) gets an empty one: every target
 * at the prior.
 */
import type { ResolvedConfig, Route } from "../../config/gateway-config"
import { ExplorationBudget } from "./bandit"
import { type Belief, PRIOR } from "./belief"
import type { AdaptiveSettings } from "../../config/adaptive"

/** One route's beliefs as a strategy reads them. */
export interface RouteBeliefs {
  readonly belief: (deployment: string) => Belief
  readonly budget: ExplorationBudget
}

export type BeliefMap = ReadonlyMap<string, ReadonlyMap<string, Belief>>

export class BeliefsSnapshot {
  private beliefs: BeliefMap = new Map()
  private readonly budgets = new Map<string, ExplorationBudget>()

  /** The beliefs as last read, per route and target. */
  replace(beliefs: BeliefMap): void {
    this.beliefs = beliefs
  }

  /** One target's belief as this worker just changed it (a label it took), ahead of the next read. */
  set(routeId: string, target: string, belief: Belief): void {
    const route = new Map(this.beliefs.get(routeId) ?? [])
    route.set(target, belief)
    this.beliefs = new Map([...this.beliefs, [routeId, route]])
  }

  /** This worker's exploration budget for a route, made on first use. */
  budgetOf(routeId: string, settings: AdaptiveSettings): ExplorationBudget {
    let budget = this.budgets.get(routeId)
    if (budget === undefined) this.budgets.set(routeId, (budget = new ExplorationBudget(settings.exploration, settings.memory)))
    return budget
  }

  forRoute(route: Route, settings: AdaptiveSettings): RouteBeliefs {
    const beliefs = this.beliefs.get(route.id)
    return { belief: (deployment) => beliefs?.get(deployment) ?? PRIOR, budget: this.budgetOf(route.id, settings) }
  }
}

const attached = new WeakMap<ResolvedConfig, BeliefsSnapshot>()

/** The snapshot strategies read for routes of this config; one is made (empty) if none was attached. */
export const beliefsFor = (config: ResolvedConfig): BeliefsSnapshot => {
  let snapshot = attached.get(config)
  if (snapshot === undefined) attached.set(config, (snapshot = new BeliefsSnapshot()))
  return snapshot
}
