/**
 * Which models a fan-out Quorum picks itself calls, and how much each one's vote weighs.
 * Routes are candidates as well as models (a key may allow only a route): a route votes
 * with the weight, and counts as the provider, of its primary target, the deployment it
 * calls first (or most often, when it balances load).
 */
import type { Route } from "../config/gateway-config"

export interface Fleet {
  readonly deployments: ReadonlyMap<string, { readonly id: string; readonly provider: string; readonly voteWeight: number }>
  readonly routes: ReadonlyMap<string, Pick<Route, "strategy" | "targets">>
}

/** The deployment a name calls first: itself, or its route's first target (the heaviest, when balanced). */
export const primaryOf = (fleet: Fleet, name: string): string | undefined => {
  if (fleet.deployments.has(name)) return name
  const route = fleet.routes.get(name)
  if (route === undefined) return undefined
  const [first, ...rest] = route.targets
  if (first === undefined || route.strategy === "fallback") return first?.deployment
  return rest.reduce((a, b) => (b.weight > a.weight ? b : a), first).deployment
}

/** A model's or a route's vote weight: its primary deployment's (1 for an unknown name). */
export const voteWeightOf = (fleet: Fleet, name: string): number => {
  const primary = primaryOf(fleet, name)
  return primary === undefined ? 1 : fleet.deployments.get(primary)?.voteWeight ?? 1
}

interface Choice {
  readonly name: string
  readonly primary: string
  readonly provider: string
  readonly voteWeight: number
}

/**
 * `fanout` names the caller may use (`allowed`, null for any): the heaviest voters first,
 * alternating providers so that errors are less correlated, and never two names whose
 * primary is the same deployment (a route and one of its models would be the same voter
 * counted twice). On equal weight a model comes before a route.
 */
export const pickModels = (fleet: Fleet, fanout: number, allowed: ReadonlyArray<string> | null = null): ReadonlyArray<string> => {
  const usable = (name: string) => allowed === null || allowed.includes(name)
  const choices: Array<Choice> = []
  for (const d of fleet.deployments.values()) {
    if (usable(d.id)) choices.push({ name: d.id, primary: d.id, provider: d.provider, voteWeight: d.voteWeight })
  }
  for (const name of fleet.routes.keys()) {
    const primary = primaryOf(fleet, name)
    const deployment = primary === undefined ? undefined : fleet.deployments.get(primary)
    if (usable(name) && deployment !== undefined) choices.push({ name, primary: deployment.id, provider: deployment.provider, voteWeight: deployment.voteWeight })
  }
  // Stable sort: models (listed first) keep their place before routes of equal weight.
  choices.sort((a, b) => b.voteWeight - a.voteWeight)
  const seen = new Set<string>()
  const byProvider = new Map<string, Array<Choice>>()
  for (const choice of choices) {
    if (seen.has(choice.primary)) continue
    seen.add(choice.primary)
    byProvider.set(choice.provider, [...(byProvider.get(choice.provider) ?? []), choice])
  }
  // Providers in the order of their heaviest voter; Map keeps insertion order, which is that.
  const queues = [...byProvider.values()]
  const picked: Array<string> = []
  while (picked.length < fanout && queues.some((q) => q.length > 0)) {
    for (const q of queues) {
      const next = picked.length < fanout ? q.shift() : undefined
      if (next !== undefined) picked.push(next.name)
    }
  }
  return picked
}
