/**
 * The learned route's bandit in seeded simulations, without HTTP: it finds the target
 * that is best under the operator's weights, keeps exploring within its bound, and
 * follows a target whose quality changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { choose, ExplorationBudget } from "../src/routing/learned/bandit"
import { type Belief, PRIOR, withCall, withQuality } from "../src/routing/learned/belief"
import { sampleBeta } from "../src/routing/learned/beta"
import { AdaptiveSettings } from "../src/config/adaptive"
import { seededRandom } from "../src/providers/sim/seed"

interface SimTarget {
  quality: number
  costUsd: number
  latencyMs: number
}

/** Runs `calls` calls through the bandit, every outcome fed back; returns the targets picked. */
const simulate = (
  fleet: Record<string, SimTarget>,
  settings: AdaptiveSettings,
  calls: number,
  seed: number,
  beliefs = new Map<string, Belief>(Object.keys(fleet).map((t) => [t, PRIOR])),
  budget = new ExplorationBudget(settings.exploration, settings.memory)
) => {
  const random = seededRandom(seed)
  const picks: Array<string> = []
  for (let i = 0; i < calls; i++) {
    const { target } = choose([...beliefs].map(([t, belief]) => ({ target: t, belief })), settings, budget, random)
    const sim = fleet[target]!
    const good = random() < sim.quality ? 1 : 0
    const b = withCall(beliefs.get(target)!, sim.costUsd, sim.latencyMs, settings.memory)
    beliefs.set(target, withQuality(b, good, settings.memory))
    picks.push(target)
  }
  return { picks, beliefs, budget }
}

const share = (picks: ReadonlyArray<string>, target: string) => picks.filter((p) => p === target).length / picks.length

const settings = (fields: typeof AdaptiveSettings.Encoded) => Schema.decodeUnknownSync(AdaptiveSettings)(fields)

const fleet: Record<string, SimTarget> = {
  cheap: { quality: 0.6, costUsd: 0.001, latencyMs: 300 },
  premium: { quality: 0.85, costUsd: 0.01, latencyMs: 900 },
  middle: { quality: 0.72, costUsd: 0.002, latencyMs: 400 }
}

describe("the learned route's bandit", () => {
  it("draws Beta variates with the right mean", () => {
    const random = seededRandom(1)
    const draws = Array.from({ length: 20_000 }, () => sampleBeta(3, 7, random))
    const mean = draws.reduce((s, x) => s + x, 0) / draws.length
    expect(mean).toBeCloseTo(0.3, 2)
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...draws)).toBeLessThanOrEqual(1)
    const small = Array.from({ length: 20_000 }, () => sampleBeta(0.5, 0.5, random))
    expect(small.reduce((s, x) => s + x, 0) / small.length).toBeCloseTo(0.5, 1)
  })

  it("settles on the best quality when only quality counts", () => {
    const { picks } = simulate(fleet, settings({ exploration: 0.1 }), 3000, 11)
    expect(share(picks.slice(-1000), "premium")).toBeGreaterThan(0.85)
  })

  it("settles on the best trade-off when cost counts too", () => {
    // Quality less 0.3 × cost relative to the dearest: cheap 0.57, premium 0.55, middle 0.66.
    const { picks } = simulate(fleet, settings({ weights: { quality: 1, cost: 0.3 } }), 3000, 12)
    expect(share(picks.slice(-1000), "middle")).toBeGreaterThan(0.85)
  })

  it("explores within its bound", () => {
    const { picks } = simulate(fleet, settings({ exploration: 0.05 }), 4000, 13)
    const elsewhere = 1 - share(picks.slice(-2000), "premium")
    expect(elsewhere).toBeGreaterThan(0)
    expect(elsewhere).toBeLessThanOrEqual(0.06)
  })

  it("follows a target whose quality drops", () => {
    const s = settings({ exploration: 0.1, memory: 200 })
    const before = simulate(fleet, s, 3000, 14)
    expect(share(before.picks.slice(-1000), "premium")).toBeGreaterThan(0.85)
    const worse = { ...fleet, premium: { ...fleet.premium!, quality: 0.3 } }
    const after = simulate(worse, s, 3000, 15, before.beliefs, before.budget)
    expect(share(after.picks.slice(-1000), "middle")).toBeGreaterThan(0.85)
  })

  it("keeps evidence within its memory", () => {
    let b = PRIOR
    for (let i = 0; i < 1000; i++) b = withQuality(b, i % 4 === 0 ? 0 : 1, 50)
    expect(b.alpha + b.beta - 2).toBeCloseTo(50, 5)
    expect(b.alpha / (b.alpha + b.beta)).toBeGreaterThan(0.6)
  })
})
