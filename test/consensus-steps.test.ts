/**
 * The consensus engine's steps on their own, without HTTP: plan (which models, within
 * which budget), the round (what counts as a vote as answers arrive), and scoring (gates
 * on one answer, scorers on all). The whole engine is tested over HTTP in consensus*.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { ResolvedConfig } from "../src/config/gateway-config"
import { configPolicy } from "../src/consensus/learning/config-policy"
import type { Policy } from "../src/consensus/learning/policy"
import { type Admit, plan } from "../src/consensus/plan"
import { loadEvaluators } from "../src/consensus/registry"
import { type Arrival, Round } from "../src/consensus/round"
import { applyGates, applyScorers } from "../src/consensus/scoring"
import { resolveTestConfig } from "./support/gateway"

const YAML = `
consensus: { max_fanout: 3 }
models:
  - { id: strong, provider: sim, weight: 3, price: { input: 10, output: 10 } }
  - { id: middle, provider: sim, weight: 2, price: { input: 1, output: 1 } }
  - { id: weak, provider: sim, weight: 1, price: { input: 1, output: 1 } }
  - { id: spare, provider: sim, weight: 0.5 }
`

const answer = (content: string, extra: Partial<Arrival> = {}): Arrival => ({ status: "ok", content, gated: false, gateFailures: [], scores: {}, ...extra })

const fleet = Effect.promise(() => resolveTestConfig(YAML)).pipe(
  Effect.flatMap((config: ResolvedConfig) => Effect.map(loadEvaluators([]), (registry) => ({ config, registry })))
)

describe("plan", () => {
  it.effect("picks the heaviest voters, and refuses an unknown model naming where it is", () =>
    Effect.gen(function*() {
      const f = yield* fleet
      const picked = yield* plan<never>(f, { prompt: "?" }, {}, undefined)
      expect(picked.models).toEqual(["strong", "middle", "weak"])
      expect(picked.evaluators.map((e) => e.evaluator.name)).toEqual(["answer_match", "consistency"])
      const unknown = yield* Effect.either(plan<never>(f, { prompt: "?", models: ["strong", "nope"] }, {}, undefined))
      expect(Either.isLeft(unknown) && unknown.left._tag === "InvalidConsensusRequest" && unknown.left.param).toBe("models[1]")
      const tooMany = yield* Effect.either(plan<never>(f, { prompt: "?", models: ["strong", "middle", "weak", "spare"] }, {}, undefined))
      expect(Either.isLeft(tooMany) && tooMany.left.message).toMatch(/At most 3 models/)
    }))

  it.effect("drops the least trusted models to fit max_cost_usd, and caps each call at the output it was priced on", () =>
    Effect.gen(function*() {
      const f = yield* fleet
      // strong costs ten times the others: a ceiling that fits it alone, but not with the rest.
      const one = yield* plan<never>(f, { prompt: "?", models: ["weak", "strong", "middle"], max_cost_usd: 0.0000105 * f.config.consensus.defaultOutputTokens }, {}, undefined)
      expect(one.models).toContain("strong")
      expect(one.skipped.map((s) => s.model)).toContain("weak")
      expect(one.outputCap).toBe(f.config.consensus.defaultOutputTokens)
      const none = yield* Effect.either(plan<never>(f, { prompt: "?", models: ["strong"], max_cost_usd: 0.0000001 }, {}, undefined))
      expect(Either.isLeft(none) && none.left.message).toMatch(/below the cheapest model's estimated cost/)
    }))

  it.effect("leaves out the models expected slower than the request's max_latency_ms, and refuses when none is within it", () =>
    Effect.gen(function*() {
      const f = yield* fleet
      // strong answers in 300 ms at p90, middle in 50; weak not measured yet, so kept.
      const latency = (model: string) => (model === "strong" ? 300 : model === "middle" ? 50 : undefined)
      const planned = yield* plan<never>({ ...f, expectedLatencyMs: latency }, { prompt: "?" }, {}, undefined, 100)
      expect(planned.models).toEqual(["middle", "weak"])
      expect(planned.skipped).toEqual([{ model: "strong", reason: "recent p90 latency 300 ms exceeds max_latency_ms 100" }])
      const none = yield* Effect.either(plan<never>({ ...f, expectedLatencyMs: latency }, { prompt: "?", models: ["strong"] }, {}, undefined, 100))
      expect(Either.isLeft(none) && none.left._tag === "InvalidConsensusRequest" && none.left.param).toBe("quorum.max_latency_ms")
    }))

  it.effect("lets the caller's budget shrink the fan-out, least trusted first, and says so", () =>
    Effect.gen(function*() {
      const f = yield* fleet
      const seen: Array<ReadonlyArray<string>> = []
      // A budget that admits the second option offered: every model but the least trusted.
      const admit: Admit<never> = {
        reserve: (options, models) => {
          seen.push(models)
          return Effect.map(options, (offered) => {
            expect(offered).toHaveLength(3)
            return { index: 1, reserved: true, keyId: "key-1" }
          })
        },
        allowed: ["middle", "weak", "strong"]
      }
      const planned = yield* plan<never>(f, { prompt: "?" }, {}, admit)
      expect(planned.models).toEqual(["strong", "middle"])
      expect(planned.skipped).toEqual([{ model: "weak", reason: "the fan-out does not fit the key's remaining budget" }])
      expect(planned.keyId).toBe("key-1")
      expect(planned.outputCap).toBeDefined()
      // A key that allows only some models: Quorum's own pick stays inside them.
      const narrow = yield* plan<never>(f, { prompt: "?" }, {}, { reserve: () => Effect.succeed({ index: 0, reserved: false }), allowed: ["weak"] })
      expect(narrow.models).toEqual(["weak"])
      expect(narrow.singleReason).toMatch(/allows only one model/)
    }))
})

describe("the round", () => {
  const weights = new Map([["a", 3], ["b", 2], ["c", 1]])
  const policy = configPolicy(weights, () => 1, 0.5)

  it("counts answers that passed their gates and did not abstain, and tells the policy who abstained", () => {
    const round = new Round(["a", "b", "c"], undefined, policy)
    round.arrivals[0] = answer("The answer is 42.")
    round.arrivals[1] = answer("42", { abstained: "cut at max_tokens (finish_reason: length)" })
    round.arrivals[2] = answer("41", { gated: true, gateFailures: ["json_schema"] })
    expect(round.votes().map((b) => [b.id, b.answer.key, b.weight])).toEqual([["0", "42", 3]])
    expect([...round.observed()]).toEqual([["a", "42"], ["b", null], ["c", null]])
    expect(round.pendingWeight()).toBe(0)
    expect(round.abstentionOf(1, new Set([0]))).toMatch(/max_tokens/)
    expect(round.abstentionOf(2, new Set([0]))).toBeUndefined() // gated, not abstained
  })

  it("leaves out free text among numbers, and answers of a kind the task's right answers never take until no call is left", () => {
    const learned: Policy = { ...policy, answerKinds: new Set(["number"]) }
    const round = new Round(["a", "b", "c"], undefined, learned)
    round.arrivals[0] = answer("I am not sure what this comes to.")
    expect(round.votes()).toEqual([])
    expect(round.observed().get("a")).toBeNull()
    expect(round.pendingWeight()).toBe(3)
    round.arrivals[1] = answer("The answer is 7.")
    expect(round.votes().map((b) => b.answer.key)).toEqual(["7"])
    expect(round.abstentionOf(0, new Set([1]))).toMatch(/right answers take \(number\)/)
    const unsure = new Round(["a", "b"], undefined, learned)
    unsure.arrivals[0] = answer("no idea")
    unsure.arrivals[1] = answer("no idea")
    expect(unsure.votes()).toEqual([])
    unsure.callsOver = true
    expect(unsure.votes()).toHaveLength(2)
  })
})

describe("scoring", () => {
  it.effect("a gate marks an answer that fails it, and says why; scorers give the weighted mean", () =>
    Effect.gen(function*() {
      const registry = yield* loadEvaluators([])
      const json = registry.get("json_schema")!
      const format = { type: "json_schema" as const, json_schema: { name: "city", schema: { type: "object", required: ["city"], properties: { city: { type: "string" } } } } }
      const request = { model: "consensus", messages: [{ role: "user" as const, content: "?" }], response_format: format }
      const errors = new Map<string, string>()
      const bad = { ...answer('{"town": "Paris"}'), status: "ok" as const, content: '{"town": "Paris"}' }
      yield* applyGates([{ evaluator: json, weight: 1, options: {} }], { index: 0, model: "a", answer: bad, request, format }, 1_000, errors)
      expect(bad.gated).toBe(true)
      expect(bad.gateFailures[0]).toMatch(/^json_schema \(.*city/)
      const good = { ...answer('{"city": "Paris"}'), status: "ok" as const, content: '{"city": "Paris"}' }
      yield* applyGates([{ evaluator: json, weight: 1, options: {} }], { index: 1, model: "b", answer: good, request, format }, 1_000, errors)
      expect(good.gated).toBe(false)
      expect(errors.size).toBe(0)

      const round = new Round(["a", "b", "c"], undefined, configPolicy(new Map(), () => 1, 0.5))
      round.arrivals[0] = answer("42")
      round.arrivals[1] = answer("42")
      round.arrivals[2] = answer("17")
      const scorers = [{ evaluator: registry.get("answer_match")!, weight: 3, options: {} }, { evaluator: registry.get("consistency")!, weight: 1, options: {} }]
      const scoreOf = yield* applyScorers(scorers, round, [0, 1, 2], request, 1_000, errors)
      const match = (i: number) => round.arrivals[i]!.scores["answer_match"]!
      const consistency = (i: number) => round.arrivals[i]!.scores["consistency"]!
      for (const i of [0, 1, 2]) expect(scoreOf(i)).toBeCloseTo((3 * match(i) + consistency(i)) / 4)
      expect(scoreOf(0)).toBeGreaterThan(scoreOf(2))
    }))
})
