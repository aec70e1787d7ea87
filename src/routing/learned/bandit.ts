/**
 * Thompson sampling over a learned route's targets. Each call draws a quality for every
 * target from its belief, scores it against the targets' relative cost and latency under
 * the operator's weights, and takes the best draw. Exploration is bounded: when the draw
 * picks a target other than the one believed best and this route has already explored
 * more than its `exploration` share of recent calls, the believed best is taken instead.
 */
import { type Belief, meanQuality } from "./belief"
import { sampleBeta } from "./beta"
import type { AdaptiveSettings } from "../../config/adaptive"

export interface Arm {
  readonly target: string
  readonly belief: Belief
}

export interface Choice {
  readonly target: string
  /** Whether it is a target other than the one believed best. */
  readonly explored: boolean
}

/** An arm with its score; `index` is its place among the route's targets. */
export interface Scored<A extends Arm = Arm> {
  readonly arm: A
  readonly index: number
  readonly score: number
}

/** Cost and latency relative to the most expensive and the slowest target known, in [0, 1]. */
const relative = (arms: ReadonlyArray<Arm>, of: (b: Belief) => number | undefined): ((b: Belief) => number) => {
  const known = arms.map((a) => of(a.belief)).filter((x): x is number => x !== undefined)
  const max = Math.max(0, ...known)
  // A target not yet called is taken to cost what the others do on average.
  const unknown = known.length === 0 || max === 0 ? 0 : known.reduce((s, x) => s + x, 0) / known.length / max
  return (b) => {
    const x = of(b)
    return x === undefined ? unknown : max === 0 ? 0 : x / max
  }
}

const scores = <A extends Arm>(arms: ReadonlyArray<A>, settings: AdaptiveSettings, quality: (b: Belief) => number): ReadonlyArray<Scored<A>> => {
  const cost = relative(arms, (b) => b.costUsd)
  const latency = relative(arms, (b) => b.latencyMs)
  const { weights } = settings
  return arms.map((arm, index) => ({
    arm,
    index,
    score: weights.quality * quality(arm.belief) - weights.cost * cost(arm.belief) - weights.latency * latency(arm.belief)
  }))
}

/** The highest score, the first among equals; undefined for no arm. */
const top = (scored: ReadonlyArray<Scored>): Scored | undefined =>
  scored.reduce<Scored | undefined>((best, s) => (best === undefined || s.score > best.score ? s : best), undefined)

/** Keeps the share of recent calls that explored, per route, over a window of `memory` calls. */
export class ExplorationBudget {
  private explored = 0
  private calls = 0

  constructor(private readonly share: number, private readonly window: number) {}

  /** The share of recent calls that explored (for reports). */
  get exploredShare(): number {
    return this.calls === 0 ? 0 : this.explored / this.calls
  }

  allows(): boolean {
    return this.calls === 0 || this.explored / this.calls < this.share
  }

  record(explored: boolean): void {
    if (this.calls >= this.window) {
      // Forget proportionally: a sliding window without keeping every call.
      this.explored -= this.explored / this.calls
      this.calls -= 1
    }
    this.calls += 1
    if (explored) this.explored += 1
  }
}

/** Each arm with its score at its believed (mean) quality: what the fallbacks after a choice are ordered by. */
export const believedScores = <A extends Arm>(arms: ReadonlyArray<A>, settings: AdaptiveSettings): ReadonlyArray<Scored<A>> =>
  scores(arms, settings, meanQuality)

/** The target for this call. `arms` must not be empty; targets out of service are left out by the caller. */
export const choose = (arms: ReadonlyArray<Arm>, settings: AdaptiveSettings, budget: ExplorationBudget, random: () => number): Choice => {
  const believedBest = top(believedScores(arms, settings))
  const drawn = top(scores(arms, settings, (b) => sampleBeta(b.alpha, b.beta, random)))
  if (believedBest === undefined || drawn === undefined) throw new Error("choose needs one target at least")
  const explored = drawn.index !== believedBest.index && budget.allows()
  budget.record(explored)
  return { target: (explored ? drawn : believedBest).arm.target, explored }
}
