/** The config policy's cascade (the exact rule), the decision step and label matching, each alone. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { abstainsAlone, abstainsByKind } from "../src/consensus/abstain"
import { decideAnswer } from "../src/consensus/decide"
import { groupOfLabel } from "../src/consensus/label"
import { configPolicy, exactNext } from "../src/consensus/learning/config-policy"
import { normalize } from "../src/consensus/normalize"
import { type Ballot, decide, group } from "../src/consensus/vote"

/** A seeded source (mulberry32): the randomized checks are the same on every run. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const outcome = (answers: ReadonlyMap<string, string | null>, weightOf: (m: string) => number, minAgreement: number) => {
  const ballots: Array<Ballot> = [...answers].flatMap(([m, key]) => (key === null ? [] : [{ id: m, answer: { kind: "choice" as const, key }, weight: weightOf(m) }]))
  const decision = decide(group(ballots), minAgreement)
  return { winner: decision.winner?.key ?? null, reached: decision.reached }
}

describe("config policy", () => {
  it.effect("calls the fewest most trusted models whose agreement settles the answer", () =>
    Effect.sync(() => {
      const weights = new Map([["top", 3], ["mid", 2], ["low", 1]])
      const policy = configPolicy(weights, () => 1, 0.5)
      expect(policy.rule).toBe("config")
      expect(policy.next(["low", "mid", "top"], new Map())).toEqual(["top", "mid"])
      // They agree: settled, nothing more to call.
      expect(policy.next(["low", "mid", "top"], new Map([["top", "A"], ["mid", "A"]]))).toEqual([])
      // They disagree: low is called.
      expect(policy.next(["low", "mid", "top"], new Map([["top", "A"], ["mid", "B"]]))).toEqual(["low"])
      // One abstains: the next most trusted takes its place.
      expect(policy.next(["low", "mid", "top"], new Map([["top", "A"], ["mid", null]]))).toEqual(["low"])
    }))

  it.effect("never stops where the votes still to come could change the winner or whether it is reached (randomized)", () =>
    Effect.sync(() => {
      const random = seeded(42)
      const keys = ["A", "B", "C", null]
      for (let round = 0; round < 3_000; round++) {
        const n = 2 + Math.floor(random() * 4)
        const models = Array.from({ length: n }, (_, i) => `m${i}`)
        const weight = new Map(models.map((m) => [m, [1, 1, 2, 3, 0.5][Math.floor(random() * 5)]!]))
        const minAgreement = [0.5, 0.6, 0.75][Math.floor(random() * 3)]!
        const truth = new Map(models.map((m) => [m, keys[Math.floor(random() * keys.length)]!]))
        const observed = new Map<string, string | null>()
        for (;;) {
          const wave = exactNext(models, observed, (m) => weight.get(m)!, minAgreement)
          if (wave.length === 0) break
          for (const m of wave) observed.set(m, truth.get(m)!)
        }
        // The cascade's outcome is what waiting for every model gives, whatever the rest say.
        const full = outcome(truth, (m) => weight.get(m)!, minAgreement)
        const cascade = outcome(observed, (m) => weight.get(m)!, minAgreement)
        if (observed.size < n && cascade.winner !== null) expect(cascade).toEqual(full)
        if (cascade.winner === null) expect(observed.size).toBe(n)
      }
    }))
})

describe("decision", () => {
  const ballot = (id: number, answer: string, weight = 1): Ballot => ({ id: String(id), answer: normalize(answer), weight })

  it.effect("is the heaviest group even when it does not reach min_agreement, whatever the scores", () =>
    Effect.sync(() => {
      const votes = [ballot(0, "A", 2), ballot(1, "B", 1.5), ballot(2, "C", 1)]
      const result = decideAnswer({
        votes,
        eligible: [0, 1, 2],
        ballotOf: (i) => votes[i]!,
        scoreOf: (i) => (i === 0 ? 0 : 1),
        strategy: undefined,
        minAgreement: 0.5,
        modelOf: (i) => `m${i}`,
        singleReason: undefined
      })
      expect(result.answerIndex).toBe(0)
      expect(result.reached).toBe(false)
      expect(result.agreement).toBeCloseTo(2 / 4.5)
    }))

  it.effect("with one vote left by abstentions, reports a single answer", () =>
    Effect.sync(() => {
      const votes = [ballot(1, "42")]
      const result = decideAnswer({
        votes,
        eligible: [0, 1],
        ballotOf: (i) => ballot(i, i === 0 ? "a long reply with no answer at all in it, none at all, really none" : "42"),
        scoreOf: () => 0,
        strategy: undefined,
        minAgreement: 0.5,
        modelOf: (i) => `m${i}`,
        singleReason: undefined
      })
      expect(result.answerIndex).toBe(1)
      expect(result.fallback?.reason).toMatch(/abstained/)
    }))

  it.effect("abstention: refusals, cut replies and free text among other kinds", () =>
    Effect.sync(() => {
      expect(abstainsAlone({ finishReason: "length", refusal: null })).toMatch(/length/)
      expect(abstainsAlone({ finishReason: "stop", refusal: "no" })).toBe("refused")
      expect(abstainsAlone({ finishReason: "stop", refusal: null })).toBeUndefined()
      const prose = normalize("I would rather discuss the history of the question than give any single answer to it.")
      expect(abstainsByKind(prose, [prose, normalize("42")])).toBeDefined()
      expect(abstainsByKind(prose, [prose, prose])).toBeUndefined()
    }))
})

describe("labels", () => {
  const candidates = [
    { kind: "number", answer: "18", group: "18" },
    { kind: "choice", answer: "C", group: "C" },
    { kind: "json", answer: "[1,2]", group: "[1,2]" },
    { kind: null, answer: null, group: null }
  ]
  it.effect("are normalized like candidates and matched to the group that gave them", () =>
    Effect.sync(() => {
      expect(groupOfLabel("18", candidates)).toBe("18")
      expect(groupOfLabel("The answer is 18.0", candidates)).toBe("18")
      expect(groupOfLabel("(c)", candidates)).toBe("C")
      expect(groupOfLabel("[1, 2]", candidates)).toBe("[1,2]")
      expect(groupOfLabel("19", candidates)).toBeNull()
    }))
})
