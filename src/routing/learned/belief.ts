/**
 * What a learned route believes about one target: its quality as a Beta posterior over the
 * chance of a good outcome (good feedback and completed calls count for it; bad feedback
 * and failed calls against), and its cost and latency as running means. Evidence is capped
 * at the route's `memory`: past it, old evidence is scaled down as new evidence comes in,
 * so the belief never hardens beyond following a target that changes.
 */

export interface Belief {
  /** Beta(alpha, beta) over quality: 1 + good outcomes, 1 + bad outcomes (scaled). */
  readonly alpha: number
  readonly beta: number
  /** Running mean cost of a call in USD, and latency in ms; undefined until a call is seen. */
  readonly costUsd: number | undefined
  readonly latencyMs: number | undefined
  /** Calls seen (for reports, not weighed). */
  readonly calls: number
}

export const PRIOR: Belief = { alpha: 1, beta: 1, costUsd: undefined, latencyMs: undefined, calls: 0 }

/** One outcome's quality, in [0, 1] (a fraction counts as that much of a success). */
export const withQuality = (belief: Belief, quality: number, memory: number): Belief => {
  const q = Math.min(1, Math.max(0, quality))
  let alpha = belief.alpha + q
  let beta = belief.beta + 1 - q
  const evidence = alpha + beta - 2
  if (evidence > memory) {
    const keep = memory / evidence
    alpha = 1 + (alpha - 1) * keep
    beta = 1 + (beta - 1) * keep
  }
  return { ...belief, alpha, beta }
}

/** A call's cost and latency, folded into running means that follow change over about `memory` calls. */
export const withCall = (belief: Belief, costUsd: number, latencyMs: number, memory: number): Belief => {
  const rate = Math.max(1 / (belief.calls + 1), 1 / memory)
  const mean = (old: number | undefined, x: number) => (old === undefined ? x : old + (x - old) * rate)
  return { ...belief, costUsd: mean(belief.costUsd, costUsd), latencyMs: mean(belief.latencyMs, latencyMs), calls: belief.calls + 1 }
}

export const meanQuality = (belief: Belief): number => belief.alpha / (belief.alpha + belief.beta)
