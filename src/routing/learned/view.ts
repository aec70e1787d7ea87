/**
 * What a worker knows of its learned routes, for strategies, which are synchronous: a
 * snapshot of the beliefs that the belief store (store.ts) refreshes from the database,
 * and per route the exploration budget of this worker's own choices. One snapshot per
 * worker, the LearnedBeliefs service: the belief store writes it, the router hands it to
 * plan.ts with each request. A router without it (a gateway that learns nothing, a unit
 * test) plans with an empty one: every target at the prior.
 */
import { Context, Layer } from "effect"
import type { Route } from "../../config/gateway-config"
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

/** This worker's snapshot, shared by the belief store that fills it and the router that reads it. */
export class LearnedBeliefs extends Context.Tag("quorum/LearnedBeliefs")<LearnedBeliefs, BeliefsSnapshot>() {}

export const LearnedBeliefsLive = Layer.sync(LearnedBeliefs, () => new BeliefsSnapshot())
