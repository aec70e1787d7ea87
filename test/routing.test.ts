/** Routing pieces on their own, and the Router over simulated models, with test Layers. */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Layer } from "effect"
import { GatewayConfig } from "../src/config/gateway-config"
import { makeRedactor } from "../src/providers/redact"
import { backoffDelay } from "../src/routing/backoff"
import { CircuitBreakers } from "../src/routing/circuit-breaker"
import { planTargets } from "../src/routing/plan"
import { Router } from "../src/routing/router"
import { Upstreams } from "../src/providers/upstreams"
import { resolveTestConfig } from "./support/gateway"

const policy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000, budgetMs: 10_000 }

describe("backoff", () => {
  it("grows exponentially up to its cap, with full jitter", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, undefined, () => 1))).toEqual([100, 200, 400, 800, 1000])
    expect(backoffDelay(3, policy, undefined, () => 0)).toBe(0)
    expect(backoffDelay(3, policy, undefined, () => 0.5)).toBe(200)
  })

  it("never comes back sooner than retry-after", () => {
    expect(backoffDelay(1, policy, 750, () => 0)).toBe(750)
    expect(backoffDelay(5, policy, 10, () => 1)).toBe(1000)
  })
})

describe("redaction", () => {
  const redact = makeRedactor(["my-own-secret-value"])
  it.each([
    ["Incorrect API key provided: sk-proj-abcdefghijklmnop.", "Incorrect API key provided: [redacted]."],
    ["bad key sk-ant-api03-XYZxyz0123456789", "bad key [redacted]"],
    ["key AIzaSyA1234567890abcdefghij is invalid", "key [redacted] is invalid"],
    ["header was Bearer abc.def.ghi-jklmnop", "header was [redacted]"],
    ["GET /v1/models?key=AIzaXYZ&alt=sse", "GET /v1/models?key=[redacted]&alt=sse"],
    ["configured my-own-secret-value leaked", "configured [redacted] leaked"]
  ])("%s", (input, output) => {
    expect(redact(input)).toBe(output)
  })
})

describe("planning", () => {
  it("keeps a fallback route's order and draws a load-balanced one by weight", async () => {
    const config = await resolveTestConfig(`
models:
  - { id: a, provider: sim }
  - { id: b, provider: sim }
  - { id: c, provider: sim }
routes:
  - { id: f, targets: [c, a, b] }
  - { id: lb, strategy: loadbalance, targets: [{ model: a, weight: 3 }, { model: b, weight: 1 }] }
`)
    expect(planTargets(config, "f")).toEqual(["c", "a", "b"])
    expect(planTargets(config, "a")).toEqual(["a"])
    expect(planTargets(config, "nope")).toBeUndefined()
    // Weights 3:1 over [0, 4): a draw below 3 picks a first, otherwise b; the other follows.
    expect(planTargets(config, "lb", () => 0.74)).toEqual(["a", "b"])
    expect(planTargets(config, "lb", () => 0.76)).toEqual(["b", "a"])
    let a = 0
    for (let i = 0; i < 4000; i++) if (planTargets(config, "lb")![0] === "a") a++
    expect(a / 4000).toBeGreaterThan(0.7)
    expect(a / 4000).toBeLessThan(0.8)
  })
})

const SimConfig = Layer.effect(
  GatewayConfig,
  Effect.promise(() =>
    resolveTestConfig(`
defaults:
  retry: { max_attempts: 2, base_delay_ms: 1 }
  circuit: { failure_threshold: 3, cooldown_ms: 60000 }
models:
  - { id: broken, provider: sim, sim: { latency_ms: 1, error_rate: 1 } }
  - { id: fine, provider: sim, sim: { latency_ms: 1, answers: [fine answer] } }
routes:
  - { id: r, targets: [broken, fine] }
`)
  )
)
// The breakers are shared with the router, so a test can look at them.
const TestRouter = Router.DefaultWithoutDependencies.pipe(
  Layer.provideMerge(Layer.mergeAll(Upstreams.Default, CircuitBreakers.Default)),
  Layer.provideMerge(SimConfig)
)
const request = (model: string) => ({ model, messages: [{ role: "user" as const, content: "hi" }] })

describe("the router", () => {
  it.live("retries, then falls back to the next target", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const routed = yield* router.complete(request("r"))
      expect(routed.deployment.id).toBe("fine")
      expect(routed.attempts).toBe(3)
      expect(routed.value.choices[0]!.message.content).toBe("fine answer")
    }).pipe(Effect.provide(TestRouter)))

  it.live("fails with the last upstream error when no target is left", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const error = yield* Effect.flip(router.complete(request("broken")))
      expect(error._tag).toBe("UpstreamError")
      if (error._tag === "UpstreamError") expect(error.deployment).toBe("broken")
    }).pipe(Effect.provide(TestRouter)))

  it.live("opens the circuit after repeated failures and skips the deployment", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const breakers = yield* CircuitBreakers
      yield* Effect.flip(router.complete(request("broken"))) // 2 failures
      expect(breakers.admit("broken", Date.now())).toBe("closed")
      yield* Effect.flip(router.complete(request("broken"))) // 3rd failure opens it
      expect(breakers.admit("broken", Date.now())).toBe("open")
      const error = yield* Effect.flip(router.complete(request("broken")))
      expect(error._tag).toBe("AllCoolingDown")
      const routed = yield* router.complete(request("r"))
      expect(routed.attempts).toBe(1)
      expect(routed.deployment.id).toBe("fine")
    }).pipe(Effect.provide(TestRouter)))

  it.live("streams with a first chunk in hand", () =>
    Effect.gen(function*() {
      const router = yield* Router
      const routed = yield* router.open(request("r"))
      expect(routed.deployment.id).toBe("fine")
      // The first chunk is in hand: the pull gives it at once.
      expect(Chunk.size(yield* routed.value)).toBeGreaterThan(0)
    }).pipe(Effect.scoped, Effect.provide(TestRouter)))
})

describe("the circuit breaker", () => {
  const Breakers = CircuitBreakers.Default.pipe(
    Layer.provide(Layer.effect(GatewayConfig, Effect.promise(() => resolveTestConfig(`
defaults: { circuit: { failure_threshold: 2, cooldown_ms: 100 } }
models: [{ id: x, provider: sim }]
`))))
  )

  it.effect("lets one probe through after the cooldown, and closes on its success", () =>
    Effect.gen(function*() {
      const breakers = yield* CircuitBreakers
      breakers.failed("x", 0)
      expect(breakers.admit("x", 1)).toBe("closed")
      breakers.failed("x", 1)
      expect(breakers.admit("x", 50)).toBe("open")
      expect(breakers.admit("x", 101)).toBe("probe")
      expect(breakers.admit("x", 102)).toBe("open") // one probe at a time
      breakers.succeeded("x")
      expect(breakers.admit("x", 103)).toBe("closed")
    }).pipe(Effect.provide(Breakers)))

  it.effect("reopens when the probe fails", () =>
    Effect.gen(function*() {
      const breakers = yield* CircuitBreakers
      breakers.failed("x", 0)
      breakers.failed("x", 0)
      expect(breakers.admit("x", 100)).toBe("probe")
      breakers.failed("x", 100)
      expect(breakers.admit("x", 150)).toBe("open")
      expect(breakers.admit("x", 201)).toBe("probe")
    }).pipe(Effect.provide(Breakers)))
})
