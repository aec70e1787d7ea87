/**
 * Learning a consensus policy from labelled outcomes (src/consensus/learning/learn.ts), on
 * synthetic histories whose right answer is known: who should decide, who should vote,
 * what an abstention counts for, how far a few labels move the prior, and the cascade.
 */
import { describe, expect, it } from "vitest"
import { answerKinds } from "../src/consensus/learning/kinds"
import { learnPolicy, newcomerWeight, nextWave, replayCascade, weightedWinner } from "../src/consensus/learning/learn"
import type { LabelledVote, Observed } from "../src/consensus/learning/policy"

/** A deterministic uniform draw in [0, 1) for the given keys (FNV-1a, then a mix). */
const draw = (...keys: ReadonlyArray<string | number>): number => {
  let h = 2166136261
  for (const ch of keys.join("|")) h = Math.imul(h ^ ch.charCodeAt(0), 16777619)
  h = Math.imul(h ^ (h >>> 15), 2246822507)
  h = Math.imul(h ^ (h >>> 13), 3266489909)
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32
}

const LETTERS = ["A", "B", "C", "D"] as const

interface Voter {
  readonly model: string
  readonly accuracy: number
  /** When wrong, the chance of picking the item's shared trap answer (correlated errors). */
  readonly trap: number
  /** The chance of giving no answer at all. */
  readonly abstain?: number
  /**
   * The chance that whether it is right follows the item's shared difficulty rather than
   * its own draw: models that share it are wrong on the same (hard) items.
   */
  readonly shared?: number
}

/** The draw that decides whether a voter is right on item q: the item's shared one, or its own. */
const rightness = (seed: string, q: number, v: Voter): number =>
  draw(seed, q, v.model, "follows") < (v.shared ?? 0) ? draw(seed, q, "difficulty") : draw(seed, q, v.model, "right")

/** A labelled history of `n` 4-choice items answered by `voters`. */
const history = (voters: ReadonlyArray<Voter>, n: number, seed = "h"): Array<LabelledVote> =>
  Array.from({ length: n }, (_, q) => {
    const truth = LETTERS[Math.floor(draw(seed, q, "truth") * 4)]!
    const wrong = LETTERS.filter((l) => l !== truth)
    const trap = wrong[Math.floor(draw(seed, q, "trap") * 3)]!
    const answers = new Map<string, string | null>()
    for (const v of voters) {
      if (draw(seed, q, v.model, "abstain") < (v.abstain ?? 0)) answers.set(v.model, null)
      else if (rightness(seed, q, v) < v.accuracy) answers.set(v.model, truth)
      else if (draw(seed, q, v.model, "shared") < v.trap) answers.set(v.model, trap)
      else answers.set(v.model, wrong[Math.floor(draw(seed, q, v.model, "wrong") * 3)]!)
    }
    return { answers, truth: [...answers.values()].includes(truth) ? truth : null }
  })

const equalPrior = (models: ReadonlyArray<string>) => new Map(models.map((m) => [m, 1] as const))
const weightOf = (weights: ReadonlyMap<string, number>, model: string) => weights.get(model) ?? 0
const accuracyOf = (items: ReadonlyArray<LabelledVote>, answer: (item: LabelledVote) => string | null) =>
  items.filter((item) => item.truth !== null && answer(item) === item.truth).length / items.length

const leaderAndFollowers: ReadonlyArray<Voter> = [
  { model: "leader", accuracy: 0.95, trap: 0 },
  { model: "w1", accuracy: 0.82, trap: 0.9, shared: 0.8 },
  { model: "w2", accuracy: 0.82, trap: 0.9, shared: 0.8 },
  { model: "w3", accuracy: 0.8, trap: 0.9, shared: 0.8 },
  { model: "w4", accuracy: 0.8, trap: 0.9, shared: 0.8 }
]
const fiveEqual: ReadonlyArray<Voter> = ["e1", "e2", "e3", "e4", "e5"].map((model) => ({ model, accuracy: 0.75, trap: 0 }))
const models = (voters: ReadonlyArray<Voter>) => voters.map((v) => v.model)

describe("learnPolicy: who decides", () => {
  it("makes a clear leader decisive over weaker models whose errors are correlated", () => {
    const labelled = history(leaderAndFollowers, 300)
    const policy = learnPolicy(labelled, equalPrior(models(leaderAndFollowers)))
    const others = ["w1", "w2", "w3", "w4"].reduce((sum, m) => sum + weightOf(policy.weights, m), 0)
    expect(policy.rule).toBe("learned")
    expect(policy.labels).toBe(300)
    expect(weightOf(policy.weights, "leader")).toBeGreaterThan(others)
    // The four followers agreeing on another answer do not outvote it.
    const outvoted = new Map([["leader", "A"], ["w1", "B"], ["w2", "B"], ["w3", "B"], ["w4", "B"]])
    expect(weightedWinner(outvoted, policy.weights)).toBe("A")
    // It answers alone: the cascade calls it first and stops once it has answered.
    const all = models(leaderAndFollowers)
    expect(policy.next(all, new Map())).toEqual(["leader"])
    expect(policy.next(all, new Map([["leader", "A"]]))).toEqual([])
    // On fresh items the learned policy is as good as the leader, better than plain log-odds.
    const fresh = history(leaderAndFollowers, 2000, "fresh")
    const cascade = accuracyOf(fresh, (item) => replayCascade(item.answers, all, policy.next, policy.weights).answer)
    const leaderAlone = accuracyOf(fresh, (item) => item.answers.get("leader") ?? null)
    const logOdds = learnPolicy([], new Map(leaderAndFollowers.map((v) => [v.model, Math.log(v.accuracy / (1 - v.accuracy))] as const)))
    expect(cascade).toBeGreaterThanOrEqual(leaderAlone)
    expect(cascade).toBeGreaterThan(accuracyOf(fresh, (item) => weightedWinner(item.answers, logOdds.weights)))
  })

  it("lets the leader's abstention hand the answer to the others", () => {
    const policy = learnPolicy(history(leaderAndFollowers, 300), equalPrior(models(leaderAndFollowers)))
    const all = models(leaderAndFollowers)
    const afterAbstention = policy.next(all, new Map([["leader", null]]))
    expect(afterAbstention.length).toBeGreaterThan(0)
    expect(afterAbstention).not.toContain("leader")
    expect(weightedWinner(new Map([["leader", null], ["w1", "B"], ["w2", "B"], ["w3", "C"], ["w4", null]]), policy.weights)).toBe("B")
  })

  it("keeps equally good, independent models voting: none decisive, the majority wins", () => {
    const labelled = history(fiveEqual, 300)
    const policy = learnPolicy(labelled, equalPrior(models(fiveEqual)))
    const weights = models(fiveEqual).map((m) => weightOf(policy.weights, m))
    expect(Math.max(...weights) / Math.min(...weights)).toBeLessThan(1.5)
    expect(Math.max(...weights)).toBeLessThan(weights.reduce((a, b) => a + b, 0) - Math.max(...weights))
    // The heaviest model, alone against three others, loses.
    const heaviest = models(fiveEqual).reduce((a, b) => (weightOf(policy.weights, a) >= weightOf(policy.weights, b) ? a : b))
    const [partner, ...rest] = models(fiveEqual).filter((m) => m !== heaviest)
    const split = new Map([[heaviest, "A"], [partner!, "A"], ...rest.map((m) => [m, "B"] as const)])
    expect(weightedWinner(split, policy.weights)).toBe("B")
    // A first wave of one model cannot settle a vote among equals.
    expect(policy.next(models(fiveEqual), new Map()).length).toBeGreaterThanOrEqual(2)
    // On fresh items the vote beats any single model.
    const fresh = history(fiveEqual, 2000, "fresh")
    const vote = accuracyOf(fresh, (item) => weightedWinner(item.answers, policy.weights))
    for (const m of models(fiveEqual)) expect(vote).toBeGreaterThan(accuracyOf(fresh, (item) => item.answers.get(m) ?? null))
  })
})

describe("learnPolicy: abstentions", () => {
  it("casts no vote for an abstention and counts accuracy over answered items only", () => {
    const voters: ReadonlyArray<Voter> = [...fiveEqual.slice(0, 4), { model: "shy", accuracy: 0.75, trap: 0, abstain: 0.5 }]
    const labelled = history(voters, 300)
    const policy = learnPolicy(labelled, equalPrior(models(voters)))
    const shy = policy.records.find((r) => r.model === "shy")!
    expect(shy.labelled).toBe(300)
    expect(shy.answered).toBeLessThan(200)
    expect(shy.answered).toBeGreaterThan(100)
    // Accuracy when it answered, as good as the others': abstaining did not cost it weight.
    expect(shy.correct / shy.answered).toBeGreaterThan(0.65)
    const weights = models(voters).map((m) => weightOf(policy.weights, m))
    expect(weightOf(policy.weights, "shy")).toBeGreaterThan(0.6 * Math.max(...weights))
    // Its abstention changes nothing for the others.
    for (const item of labelled.slice(0, 50)) {
      const withNull = new Map(item.answers).set("shy", null)
      const without = new Map(item.answers)
      without.delete("shy")
      expect(weightedWinner(withNull, policy.weights)).toBe(weightedWinner(without, policy.weights))
    }
    expect(weightedWinner(new Map([["e1", null], ["e2", null]]), policy.weights)).toBeNull()
  })

  it("calls the next model in place of those that abstained", () => {
    const policy = learnPolicy(history(fiveEqual, 300), equalPrior(models(fiveEqual)))
    const all = models(fiveEqual)
    const first = policy.next(all, new Map())
    expect(first.length).toBeGreaterThanOrEqual(2)
    // All of the first wave but one abstain: one answer, among equals, settles nothing.
    const observed = new Map<string, string | null>(first.map((m, i) => [m, i === 0 ? "A" : null] as const))
    const more = policy.next(all, observed)
    expect(more.length).toBeGreaterThan(0)
    for (const m of more) expect(observed.has(m)).toBe(false)
    // Had they answered as the one did, it would have been settled.
    expect(policy.next(all, new Map(first.map((m) => [m, "A"] as const)))).toEqual([])
  })
})

describe("learnPolicy: models of no weight", () => {
  it("are called only when no model that counts has answered", () => {
    const voters: ReadonlyArray<Voter> = [
      { model: "good", accuracy: 0.95, trap: 0 },
      { model: "coin", accuracy: 0.3, trap: 0 }
    ]
    const policy = learnPolicy(history(voters, 300), equalPrior(models(voters)))
    expect(weightOf(policy.weights, "coin")).toBe(0)
    expect(policy.next(["coin", "good"], new Map())).toEqual(["good"])
    expect(policy.next(["coin", "good"], new Map([["good", "A"]]))).toEqual([])
    expect(policy.next(["coin", "good"], new Map([["good", null]]))).toEqual(["coin"])
  })
})

describe("learnPolicy: few labels", () => {
  it("with no labels, weighs as the prior says and waits for every vote it needs", () => {
    const prior = new Map([["a", 3], ["b", 1], ["c", 1]])
    const policy = learnPolicy([], prior)
    expect(policy.labels).toBe(0)
    for (const [m, w] of prior) expect(weightOf(policy.weights, m)).toBeCloseTo(w, 6)
  })

  it("stays near the prior on a handful of labels that contradict it", () => {
    const prior = new Map([["a", 3], ["b", 1], ["c", 1]])
    const contrary: Array<LabelledVote> = Array.from({ length: 3 }, () => ({
      answers: new Map([["a", "X"], ["b", "Y"], ["c", "Y"]]),
      truth: "Y"
    }))
    const policy = learnPolicy(contrary, prior)
    expect(weightOf(policy.weights, "a")).toBeGreaterThan(weightOf(policy.weights, "b"))
    expect(weightOf(policy.weights, "a")).toBeGreaterThan(0.5 * 3)
    // The same contradiction, repeated 300 times, does overturn it.
    const many = Array.from({ length: 300 }, () => contrary[0]!)
    const learned = learnPolicy(many, prior)
    expect(weightOf(learned.weights, "a")).toBeLessThan(weightOf(learned.weights, "b"))
  })
})

describe("learnPolicy: the cascade", () => {
  const close: ReadonlyArray<Voter> = [
    { model: "c1", accuracy: 0.93, trap: 0.3 },
    { model: "c2", accuracy: 0.92, trap: 0.3 },
    { model: "c3", accuracy: 0.9, trap: 0.3 },
    { model: "c4", accuracy: 0.89, trap: 0.3 },
    { model: "c5", accuracy: 0.88, trap: 0.3 }
  ]

  it("starts with the two most reliable of close models, stops when they agree, calls more while they disagree", () => {
    const policy = learnPolicy(history(close, 300), equalPrior(models(close)))
    const all = models(close)
    const first = policy.next(all, new Map())
    expect(first).toHaveLength(2)
    const [x, y] = first as [string, string]
    expect(policy.next(all, new Map([[x, "A"], [y, "A"]]))).toEqual([])
    const split = policy.next(all, new Map([[x, "A"], [y, "B"]]))
    expect(split.length).toBeGreaterThan(0)
    expect(split).not.toContain(x)
    // Every call counted: on fresh items it costs well under the five of a full vote, and
    // loses (almost) nothing against it.
    const fresh = history(close, 2000, "fresh")
    const runs = fresh.map((item) => replayCascade(item.answers, all, policy.next, policy.weights))
    const calls = runs.reduce((n, r) => n + r.calls, 0) / runs.length
    expect(calls).toBeLessThan(2.6)
    const cascade = accuracyOf(fresh, (item) => runs[fresh.indexOf(item)]!.answer)
    const full = accuracyOf(fresh, (item) => weightedWinner(item.answers, policy.weights))
    expect(cascade).toBeGreaterThanOrEqual(full - 0.005)
  })

  it("never calls a model twice, or one that is not a candidate", () => {
    const policy = learnPolicy(history(close, 300), equalPrior(models(close)))
    const candidates = ["c5", "c3", "c2"]
    const observed = new Map<string, string | null>()
    for (let wave = policy.next(candidates, observed); wave.length > 0; wave = policy.next(candidates, observed)) {
      for (const m of wave) {
        expect(candidates).toContain(m)
        expect(observed.has(m)).toBe(false)
        observed.set(m, m === "c2" ? "A" : "B")
      }
    }
    expect(observed.size).toBeGreaterThanOrEqual(2)
  })
})

describe("learnPolicy: a model added after learning", () => {
  it("weighs its prior, sharpened like the others and never above the most reliable model's", () => {
    const labelled = history(close5(), 300)
    const policy = learnPolicy(labelled, equalPrior(models(close5())))
    const top = Math.max(...policy.weights.values())
    expect(policy.weights.has("new")).toBe(false)
    expect(policy.weightOf("m1")).toBe(policy.weights.get("m1"))
    // Its vote counts (it used to weigh nothing), by its prior of 1 sharpened like the others.
    expect(policy.weightOf("new")).toBeCloseTo(newcomerWeight(policy.weights, policy.sharpness, 1))
    expect(policy.weightOf("new")).toBeGreaterThan(0)
    expect(policy.weightOf("new")).toBeLessThanOrEqual(top)
    // A prior far above what any labelled model earned is capped at the most reliable's weight.
    const eager = learnPolicy(labelled, new Map([...equalPrior(models(close5())), ["new", 50]]))
    expect(eager.weightOf("new")).toBeCloseTo(Math.max(...eager.weights.values()))
    // It is called in the place its weight gives it, not last: here next after m1, which abstained.
    const all = [...models(close5()), "new"]
    expect(eager.next(all, new Map([["m1", null]]))[0]).toBe("new")
  })
})

describe("nextWave: answers heard out of order (a hedge)", () => {
  const weights = new Map([["top", 4], ["b", 1], ["c", 1], ["d", 1]])
  const all = ["top", "b", "c", "d"]

  it("settles on the relaxed rule only when the most reliable models were heard first", () => {
    // Slack 0: two agreeing answers heard in the cascade's order settle the outcome.
    expect(nextWave(all, new Map([["top", "A"], ["b", "A"]]), weights, 0)).toEqual([])
    // The same agreement heard while the most reliable call still runs settles nothing: its
    // vote (4) could outweigh theirs (2), and the slack was never learned on that case.
    expect(nextWave(all, new Map([["b", "A"], ["c", "A"]]), weights, 0)).not.toEqual([])
    // Exactly settled is settled in any order: here the heard votes outweigh all still to come.
    expect(nextWave(all, new Map([["b", "A"], ["c", "A"], ["d", "A"]]), new Map([["top", 2], ["b", 1], ["c", 1], ["d", 1]]), 1)).toEqual([])
  })
})

describe("answerKinds", () => {
  const item = (truth: string | null, ...candidates: ReadonlyArray<readonly [string | null, string | null]>) => ({
    truth,
    candidates: candidates.map(([kind, group]) => ({ kind, group }))
  })

  it("are the kinds the right answers took, leaving out those of under 1 % of them", () => {
    const numbers = Array.from({ length: 150 }, (_, i) => item(`n${i}`, ["number", `n${i}`], ["short", "unsure"]))
    const json = Array.from({ length: 50 }, (_, i) => item(`j${i}`, ["json", `j${i}`], ["number", "x"]))
    // One right answer in prose among 201: no kind of the task's.
    const prose = item("t", ["text", "t"])
    expect(answerKinds([...numbers, ...json, prose])).toEqual(["json", "number"])
    expect(answerKinds([...numbers.slice(0, 50), prose])).toEqual(["number", "text"])
  })

  it("know nothing when no answer was right, so every kind votes", () => {
    expect(answerKinds([item(null, ["number", "1"]), item("2", ["number", "1"])])).toBeUndefined()
    expect(answerKinds([])).toBeUndefined()
  })
})

describe("learnPolicy: determinism", () => {
  it("learns the same policy from the same history, whatever the order of the candidates", () => {
    const labelled = history(close5(), 300)
    const a = learnPolicy(labelled, equalPrior(models(close5())))
    const b = learnPolicy(labelled, equalPrior(models(close5())))
    expect([...a.weights]).toEqual([...b.weights])
    expect(a.records).toEqual(b.records)
    expect(a.sharpness).toBe(b.sharpness)
    expect(a.slack).toBe(b.slack)
    const states: ReadonlyArray<Observed> = [new Map(), new Map([["m1", "A"]]), new Map([["m1", "A"], ["m2", "B"]])]
    const shuffled = ["m3", "m5", "m1", "m4", "m2"]
    for (const s of states) expect(a.next(shuffled, s)).toEqual(b.next(models(close5()), s))
  })
})

function close5(): ReadonlyArray<Voter> {
  return [1, 2, 3, 4, 5].map((i) => ({ model: `m${i}`, accuracy: 0.9 - i * 0.01, trap: 0.3 }))
}
