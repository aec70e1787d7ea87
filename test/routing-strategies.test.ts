/**
 * Routing strategies, live health and per-request limits on their own, without HTTP: each
 * strategy's order from what it is given, conditional rules and their config checks, and
 * limits that narrow the order or say why nothing fits.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { type RequestLimits, describeExclusions, withinLimits } from "../src/routing/constraints"
import { factsOf, type RequestFacts } from "../src/routing/facts"
import { LiveHealth } from "../src/routing/health"
import { checkRules, findCycle, type RuleSpec } from "../src/config/route-rules"
import { conditional } from "../src/routing/strategies/conditional"
import { STRATEGIES } from "../src/routing/strategies/registry"
import type { StrategyInput, Target } from "../src/routing/strategy"
import { seededRandom } from "../src/providers/sim/seed"
import { ExplorationBudget } from "../src/routing/learned/bandit"
import { PRIOR } from "../src/routing/learned/belief"

const targets: ReadonlyArray<Target> = [
  { deployment: "a", weight: 1 },
  { deployment: "b", weight: 1 },
  { deployment: "c", weight: 1 }
]

const facts = (extra: Partial<RequestFacts> = {}): RequestFacts => ({
  ...factsOf({ model: "smart", messages: [{ role: "user", content: "hello" }] }),
  ...extra
})

const input = (extra: Partial<StrategyInput> = {}): StrategyInput => ({
  routeId: "smart",
  targets,
  facts: facts(),
  health: new LiveHealth(),
  costMicros: () => 0,
  resolve: (name) => [name],
  beliefs: { belief: () => PRIOR, budget: new ExplorationBudget(0, 2) },
  random: seededRandom(1),
  ...extra
})

/** Health after `calls` answered calls per deployment at the given latency. */
const measured = (latencies: Record<string, number>, stream = false) => {
  const health = new LiveHealth()
  for (const [d, ms] of Object.entries(latencies)) {
    for (let i = 0; i < 20; i++) {
      health.started(d)
      health.finished(d, { ok: true, latencyMs: ms, ...(stream ? { firstTokenMs: ms / 4 } : {}) })
    }
  }
  return health
}

describe("strategies", () => {
  it("fallback keeps the configured order", () => {
    expect(STRATEGIES.fallback.order(input())).toEqual(["a", "b", "c"])
  })

  it("loadbalance draws by weight and keeps every target as a fallback", () => {
    const weighted = [{ deployment: "a", weight: 8 }, { deployment: "b", weight: 1 }, { deployment: "c", weight: 1 }]
    const random = seededRandom(3)
    const firsts = Array.from({ length: 2000 }, () => STRATEGIES.loadbalance.order(input({ targets: weighted, random })))
    expect(firsts.every((o) => [...o].sort().join() === "a,b,c")).toBe(true)
    expect(firsts.filter((o) => o[0] === "a").length / firsts.length).toBeCloseTo(0.8, 1)
  })

  it("cheapest puts the lowest worst-case cost for this request first", () => {
    const cost: Record<string, number> = { a: 300, b: 100, c: 200 }
    expect(STRATEGIES.cheapest.order(input({ costMicros: (d) => cost[d]! }))).toEqual(["b", "c", "a"])
  })

  it("fastest orders by recent latency, first tokens for streams, unmeasured first, and counts failures against", () => {
    const health = measured({ a: 900, b: 300, c: 500 })
    expect(STRATEGIES.fastest.order(input({ health }))).toEqual(["b", "c", "a"])
    health.finished("b", { ok: false })
    for (let i = 0; i < 40; i++) health.finished("b", { ok: false })
    expect(STRATEGIES.fastest.order(input({ health }))).toEqual(["c", "a", "b"])
    const streams = measured({ a: 400 }, true)
    for (let i = 0; i < 20; i++) streams.finished("b", { ok: true, latencyMs: 100, firstTokenMs: 300 })
    expect(STRATEGIES.fastest.order(input({ health: streams, facts: facts({ stream: true }) }))).toEqual(["c", "a", "b"])
  })

  it("round_robin starts each request one target further along, per route, the rest following as fallbacks", () => {
    const orders = [0, 1, 2, 3].map(() => STRATEGIES.round_robin.order(input({ routeId: "rr" })))
    expect(orders).toEqual([["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]])
    // Another route keeps its own turn.
    expect(STRATEGIES.round_robin.order(input({ routeId: "rr2" }))).toEqual(["a", "b", "c"])
  })

  it("least_busy puts the target with the fewest calls in flight first", () => {
    const health = new LiveHealth()
    health.started("a")
    health.started("a")
    health.started("c")
    expect(STRATEGIES.least_busy.order(input({ health }))).toEqual(["b", "c", "a"])
    health.finished("a", { ok: true, latencyMs: 1 })
    health.finished("a", { ok: true, latencyMs: 1 })
    expect(STRATEGIES.least_busy.order(input({ health }))[2]).toBe("c")
  })
})

describe("conditional rules", () => {
  const rules: ReadonlyArray<RuleSpec> = [
    { when: { prompt_tokens: { gt: 1000 } }, to: "long" },
    { when: { images: true }, to: "vision" },
    { when: { metadata: { tier: "premium" }, stream: false }, to: "premium-route" },
    { when: { key_tags: ["internal", "staff"] }, to: "local" },
    { when: { tools: true, response_format: "json_schema" }, to: "tools-json" },
    { to: "cheap" }
  ]
  const route = conditional(rules)
  const order = (f: Partial<RequestFacts>) => route.order(input({ facts: facts(f), resolve: (name) => (name === "premium-route" ? ["p1", "p2"] : [name]) }))

  it("hands the request to the first rule that matches, a route's order included", () => {
    expect(order({ promptTokens: 5000, images: true })).toEqual(["long"])
    expect(order({ images: true })).toEqual(["vision"])
    expect(order({ metadata: { tier: "premium", team: "x" } })).toEqual(["p1", "p2"])
    expect(order({ metadata: { tier: "premium" }, stream: true })).toEqual(["cheap"])
    expect(order({ keyTags: ["staff"] })).toEqual(["local"])
    expect(order({ tools: true, responseFormat: "json_schema" })).toEqual(["tools-json"])
    expect(order({ tools: true })).toEqual(["cheap"])
  })

  it("without a matching rule, tries the route's own targets", () => {
    expect(conditional([{ when: { images: true }, to: "vision" }]).order(input())).toEqual(["a", "b", "c"])
  })

  it("names the rule a config gets wrong", () => {
    const known = (name: string) => ["a", "b", "other"].includes(name)
    expect(checkRules("smart", [{ to: "nowhere" }], true, known)).toEqual(Either.left(["rules[0].to", expect.stringContaining("`nowhere`")]))
    expect(checkRules("smart", [{ to: "a" }, { to: "smart" }], true, known)).toEqual(Either.left(["rules[1].to", expect.stringContaining("own route")]))
    expect(checkRules("smart", [{ when: { images: true }, to: "a" }], false, known)).toEqual(Either.left(["rules", expect.stringContaining("without `when`")]))
    expect(checkRules("smart", [{ when: { prompt_tokens: {} }, to: "a" }, { to: "b" }], false, known)).toEqual(Either.left(["rules[0].when.prompt_tokens", expect.any(String)]))
    expect(Either.isRight(checkRules("smart", [{ when: { images: true }, to: "a" }, { to: "other" }], false, known))).toBe(true)
  })

  it("finds routes that hand requests to each other in a circle", () => {
    expect(findCycle(new Map([["x", ["y"]], ["y", ["z", "m"]], ["z", ["x"]]]))).toEqual(["x", "y", "z", "x"])
    expect(findCycle(new Map([["x", ["y"]], ["y", ["m"]], ["z", ["y"]]]))).toBeUndefined()
  })
})

describe("per-request limits", () => {
  const cost: Record<string, number> = { a: 5000, b: 20_000, c: 1000 }
  const limited = (limits: RequestLimits | undefined, health = measured({ a: 300, b: 200, c: 2500 }), stream = false) =>
    withinLimits(["a", "b", "c"], limits, { health, stream, costMicros: (d) => cost[d]! })

  it("leave the order as it is when none is given", () => {
    expect(limited(undefined)).toEqual(Either.right(["a", "b", "c"]))
    expect(limited({})).toEqual(Either.right(["a", "b", "c"]))
  })

  it("try only the targets that fit, cheapest first", () => {
    expect(limited({ max_latency_ms: 1000 })).toEqual(Either.right(["a", "b"]))
    expect(limited({ max_cost_usd: 0.01 })).toEqual(Either.right(["c", "a"]))
    expect(limited({ max_cost_usd: 0.01, max_latency_ms: 1000 })).toEqual(Either.right(["a"]))
  })

  it("weigh time to first token for streams, and never exclude a target not yet measured", () => {
    // First tokens come at a quarter of the whole answer's time in `measured`.
    expect(limited({ max_latency_ms: 1000 }, measured({ a: 300, b: 200, c: 2500 }, true), true)).toEqual(Either.right(["c", "a", "b"]))
    expect(limited({ max_latency_ms: 1 }, new LiveHealth())).toEqual(Either.right(["c", "a", "b"]))
  })

  it("say which limit excluded which model when none fits", () => {
    const result = limited({ max_cost_usd: 0.002, max_latency_ms: 1000 })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isRight(result)) return
    expect(result.left.map((e) => [e.deployment, e.limit])).toEqual([["a", "max_cost_usd"], ["b", "max_cost_usd"], ["c", "max_latency_ms"]])
    expect(describeExclusions(result.left)).toBe(
      "a: worst-case cost $0.005000 exceeds max_cost_usd 0.002; b: worst-case cost $0.020000 exceeds max_cost_usd 0.002; c: recent p90 latency 2500 ms exceeds max_latency_ms 1000"
    )
  })
})
