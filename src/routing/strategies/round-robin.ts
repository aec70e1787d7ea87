/**
 * `round_robin`: the targets in turn, each request starting one further along, per route
 * and per worker; the rest follow in order as fallbacks. For identical replicas (vLLM or
 * Ollama on several machines), it spreads calls evenly where a weighted draw only does so
 * on average. Weights are ignored: they are `loadbalance`'s.
 */
import type { Strategy } from "../strategy"

const next = new Map<string, number>()

export const roundRobin: Strategy = {
  order: ({ routeId, targets }) => {
    if (targets.length === 0) return []
    // The count is kept modulo the route's targets, so a config reload that shrinks them restarts it.
    const start = (next.get(routeId) ?? 0) % targets.length
    next.set(routeId, (start + 1) % targets.length)
    return [...targets.slice(start), ...targets.slice(0, start)].map((t) => t.deployment)
  }
}
