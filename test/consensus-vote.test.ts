/** The consensus decision core: normalizing answers, grouping them, voting, stopping early. */
import stringSimilarity from "string-similarity"
import { describe, expect, it } from "vitest"
import { dice } from "../src/consensus/similarity"
import { canonicalJson, normalize, parseNumber } from "../src/consensus/normalize"
import { type Ballot, decide, DEFAULT_GROUPING, equivalent, group, medoid, reaches, settled } from "../src/consensus/vote"
import { reliabilityWeight } from "../src/domain/weights"

describe("normalize", () => {
  it.each([
    ["42", "number", "42"],
    ["42.0", "number", "42"],
    ["1,000", "number", "1000"],
    ["$1,234.50", "number", "1234.5"],
    ["Let me think. 6 times 7 is 42. The answer is 42.", "number", "42"],
    ["**Final answer:** 3.14", "number", "3.14"],
    ["B", "choice", "B"],
    ["(c)", "choice", "C"],
    ["The answer is d.", "choice", "D"],
    ["Option A", "choice", "A"],
    ["  Paris. ", "short", "paris"],
    ["\"PARIS\"", "short", "paris"],
    ["{\"b\": 2, \"a\": 1}", "json", "{\"a\":1,\"b\":2}"],
    ["```json\n{\"a\": [1, {\"d\": 1, \"c\": 2}]}\n```", "json", "{\"a\":[1,{\"c\":2,\"d\":1}]}"],
    ["```python\ndef f(x):   \n\n    return x + 1\n```", "code", "def f(x):\n    return x + 1"]
  ])("%j is %s %j", (answer, kind, key) => {
    const n = normalize(answer)
    expect(n.kind).toBe(kind)
    expect(n.key).toBe(key)
  })

  it("treats long prose as free text", () => {
    const n = normalize("The French capital, Paris, has been the seat of government for centuries and is its largest city.")
    expect(n.kind).toBe("text")
  })

  it("reads numbers and only numbers", () => {
    expect(parseNumber("-3.5e2")).toBe(-350)
    expect(parseNumber("12%")).toBe(12)
    expect(parseNumber("12 apples")).toBeUndefined()
    expect(parseNumber("1,2")).toBeUndefined()
  })

  it("writes canonical JSON whatever the key order", () => {
    expect(canonicalJson({ b: [2, { z: 1, y: null }], a: "x" })).toBe(canonicalJson({ a: "x", b: [2, { y: null, z: 1 }] }))
  })
})

describe("similarity", () => {
  it("is string-similarity's compareTwoStrings, from cached profiles", () => {
    let seed = 3
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const alphabet = "ab c\tdeAB\n"
    const text = () => Array.from({ length: Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]).join("")
    for (let i = 0; i < 2000; i++) {
      const a = text()
      const b = random() < 0.2 ? a : text()
      expect(dice(a, b)).toBeCloseTo(stringSimilarity.compareTwoStrings(a, b), 12)
    }
    expect(dice("100", "1000")).toBe(0.8)
  })
})

describe("equivalence", () => {
  it("never groups short answers by character similarity: 100 is not 1000", () => {
    expect(equivalent(normalize("100"), normalize("1000"), DEFAULT_GROUPING)).toBe(false)
    expect(equivalent(normalize("cat"), normalize("cats"), DEFAULT_GROUPING)).toBe(false)
  })

  it("groups numbers within the tolerance", () => {
    const loose = { ...DEFAULT_GROUPING, relativeTolerance: 0.01 }
    expect(equivalent(normalize("3.14159"), normalize("3.1416"), loose)).toBe(true)
    expect(equivalent(normalize("3.14159"), normalize("3.2"), loose)).toBe(false)
    expect(equivalent(normalize("42"), normalize("The answer is 42.0"), DEFAULT_GROUPING)).toBe(true)
  })

  it("groups free text by similarity", () => {
    const a = normalize("The capital of France is Paris, which is also its largest city by population.")
    const b = normalize("The capital of France is Paris, which is also its largest city by population!")
    const c = normalize("Berlin is the capital of Germany and has been since the country reunified in 1990.")
    expect(equivalent(a, b, DEFAULT_GROUPING)).toBe(true)
    expect(equivalent(a, c, DEFAULT_GROUPING)).toBe(false)
  })
})

const ballot = (id: string, answer: string, weight = 1): Ballot => ({ id, answer: normalize(answer), weight })

describe("voting", () => {
  it("breaks a tie of equal members by the group that formed first", () => {
    const groups = group([ballot("a", "42"), ballot("b", "41"), ballot("c", "41"), ballot("d", "42")])
    expect(groups.map((g) => g.key)).toEqual(["42", "41"])
  })

  it("groups equal answers and weighs them", () => {
    const groups = group([ballot("a", "42"), ballot("b", "41", 3), ballot("c", "42.0"), ballot("d", "The answer is 42")])
    expect(groups.map((g) => [g.key, g.members, g.weight])).toEqual([
      ["41", ["b"], 3],
      ["42", ["a", "c", "d"], 3]
    ])
    const decision = decide(groups, 0.5)
    expect(decision.winner!.key).toBe("41") // a tie in weight goes to the group of the more reliable model (b weighs 3)
    expect(decision.agreement).toBe(0.5)
    // Half the weight is a tie, not a consensus.
    expect(decision.reached).toBe(false)
  })

  it("needs more than half of the weight cast, and min_agreement on top", () => {
    const split = group([ballot("a", "42"), ballot("b", "41")])
    expect(decide(split, 0.5)).toMatchObject({ agreement: 0.5, reached: false })
    expect(decide(split, 0.3).reached).toBe(false)
    const twoOfThree = group([ballot("a", "42"), ballot("b", "42"), ballot("c", "41")])
    expect(decide(twoOfThree, 0.5).reached).toBe(true)
    expect(decide(twoOfThree, 2 / 3).reached).toBe(true)
    expect(decide(twoOfThree, 0.7).reached).toBe(false)
    expect(decide(group([ballot("a", "42"), ballot("b", "42")]), 1).reached).toBe(true)
    expect(reaches(0.5, 0)).toBe(false)
    expect(reaches(0.5000001, 0.5)).toBe(true)
  })

  it("lets a reliable model outvote two weak ones", () => {
    const strong = reliabilityWeight(0.95)
    const weak = reliabilityWeight(0.6)
    const groups = group([ballot("a", "A", strong), ballot("b", "B", weak), ballot("c", "B", weak)])
    expect(decide(groups, 0.5).winner!.key).toBe("A")
  })

  it("gives a model no better than chance no say", () => {
    expect(reliabilityWeight(0.5)).toBe(0)
    expect(reliabilityWeight(0.3)).toBe(0)
    expect(reliabilityWeight(0.3, 4)).toBeGreaterThan(0) // a quarter is chance among four choices
  })

  it("picks the medoid of free texts", () => {
    expect(medoid(["Paris is the capital.", "Lyon is a city.", "Paris is the capital!", "The capital is Paris."])).toBe(0)
  })
})

describe("stopping early", () => {
  it("waits while the pending weight could still tie or overturn the lead", () => {
    const groups = group([ballot("a", "A"), ballot("b", "A"), ballot("c", "B")])
    expect(settled(groups, 1, 0.5)).toBe(false) // 2 − 1 = 1 is not more than 1 pending
    expect(settled(group([ballot("a", "A"), ballot("b", "A"), ballot("c", "A")]), 2, 0.5)).toBe(true)
  })

  it("waits while the pending weight could still decide whether agreement is reached", () => {
    // A leads 3 to 0 with 2 pending: A wins either way, but 3/5 vs 5/5 straddles 0.7.
    const groups = group([ballot("a", "A"), ballot("b", "A"), ballot("c", "A")])
    expect(settled(groups, 2, 0.7)).toBe(false)
    expect(settled(groups, 2, 0.6)).toBe(true)
  })

  it("does not stop on a lead that could still end as a tie (exactly half is no consensus)", () => {
    // A leads 2 to 0 with 2 pending: both could go to B, a 2–2 tie, which is no consensus.
    expect(settled(group([ballot("a", "A"), ballot("b", "A")]), 2, 0.5)).toBe(false)
    // A leads 3 to 0 with 2 pending: at worst 3/5, more than half whatever happens.
    expect(settled(group([ballot("a", "A"), ballot("b", "A"), ballot("c", "A")]), 2, 0.5)).toBe(true)
    // A leads 2 to 0 with 1 pending, min_agreement 1: unanimity is open until the last vote.
    expect(settled(group([ballot("a", "A"), ballot("b", "A")]), 1, 1)).toBe(false)
  })

  it("never stops on an outcome that waiting for everyone would change (randomized)", () => {
    let seed = 7
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    let stoppedEarly = 0
    const outcomes = { reached: 0, missed: 0 }
    for (let trial = 0; trial < 3000; trial++) {
      const n = 2 + Math.floor(random() * 7)
      const answers = ["A", "B", "C"].slice(0, 1 + Math.floor(random() * 3))
      // Integer weights half the time, so that exact ties happen.
      const integers = random() < 0.5
      const ballots = Array.from({ length: n }, (_, i) =>
        ballot(`m${i}`, answers[Math.floor(random() * answers.length)]!, integers ? 1 + Math.floor(random() * 3) : 0.2 + random() * 3))
      const minAgreement = 0.3 + random() * 0.6
      const final = decide(group(ballots), minAgreement)
      for (let k = 1; k < n; k++) {
        const arrived = ballots.slice(0, k)
        const pending = ballots.slice(k).reduce((sum, b) => sum + b.weight, 0)
        const groups = group(arrived)
        if (!settled(groups, pending, minAgreement)) continue
        stoppedEarly++
        const early = decide(groups, minAgreement)
        expect(early.winner!.key).toBe(final.winner!.key)
        expect(early.reached).toBe(final.reached)
        // Some pending models fail instead of answering: the outcome must not change either.
        const survivors = ballots.slice(k).filter(() => random() < 0.5)
        const partial = decide(group([...arrived, ...survivors]), minAgreement)
        expect(partial.winner!.key).toBe(early.winner!.key)
        expect(partial.reached).toBe(early.reached)
        outcomes[final.reached ? "reached" : "missed"]++
        break
      }
    }
    expect(stoppedEarly).toBeGreaterThan(300)
    // Both kinds of early stop happen: on a consensus that is sure, and on one that is out of reach.
    expect(outcomes.reached).toBeGreaterThan(50)
    expect(outcomes.missed).toBeGreaterThan(50)
  })
})
