/**
 * How a hot request ends, without HTTP: `metered` records each request once (answered,
 * failed, broken, or abandoned by its client) and the front door's request scope closes
 * on every ending, a finalizer that breaks included. Test layers: the in-memory store and
 * the real ledger (on the live clock: it writes every flush_ms).
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Fiber, Layer, Ref, Schedule, Scope } from "effect"
import { Ledger } from "../src/billing/ledger"
import { Spend } from "../src/billing/spend"
import { MemorySpendStore } from "../src/billing/store/memory"
import { SpendStore } from "../src/billing/store/store"
import { GatewayConfig } from "../src/config/gateway-config"
import { UpstreamError } from "../src/providers/upstream-error"
import { inRequestScope } from "../src/http/hot/front-door"
import { json } from "../src/http/hot/reply"
import { metered } from "../src/http/metered"
import { makeTelemetry, Telemetry } from "../src/telemetry/telemetry"
import { resolveTestConfig } from "./support/gateway"

const TestLayers = Layer.unwrapEffect(Effect.promise(() => resolveTestConfig("models:\n  - { id: m, provider: sim }\n")).pipe(Effect.map((config) =>
  Spend.Default.pipe(
    Layer.provideMerge(Ledger.Default),
    Layer.provideMerge(MemorySpendStore),
    Layer.provideMerge(Layer.succeed(Telemetry, makeTelemetry())),
    Layer.provideMerge(Layer.succeed(GatewayConfig, config))
  )
)))

/** The ledger's rows once everything recorded is written. */
const recorded = Effect.gen(function*() {
  const ledger = yield* Ledger
  yield* ledger.status.pipe(Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (s) => s.pending === 0 }))
  const store = yield* SpendStore
  const page = yield* store.listRequests({ keyId: undefined, model: undefined, status: undefined, from: undefined, to: undefined, after: undefined, limit: 10 })
  return page.data
})

const upstreamFailure = new UpstreamError({ kind: "server", status: 502, message: "upstream answered 502", deployment: "m" })

describe("metered", () => {
  it.live("records a client that left as cancelled (499), even when a failure was already on its way", () =>
    Effect.gen(function*() {
      const spend = yield* Spend
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      // The failure is produced inside an uninterruptible region the interruption has to wait for.
      const handle = Effect.uninterruptible(Effect.zipRight(Deferred.succeed(started, undefined), Effect.zipRight(Deferred.await(gate), Effect.fail(upstreamFailure))))
      const fiber = yield* Effect.fork(metered(spend, "/v1/chat/completions", { authorization: undefined }, () => handle))
      yield* Deferred.await(started)
      yield* Fiber.interruptFork(fiber)
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
      const rows = yield* recorded
      expect(rows.map((r) => [r.status, r.cancelled])).toEqual([[499, true]])
    }).pipe(Effect.provide(TestLayers)))

  it.live("answers a failure whose reply cannot be made with a 500 naming the request, recorded once", () =>
    Effect.gen(function*() {
      const spend = yield* Spend
      const reply = yield* metered(spend, "/v1/chat/completions", { authorization: undefined }, () => Effect.fail(upstreamFailure), (status, body) => {
        if (status !== 500) throw new Error("shaping the error broke")
        return body
      })
      expect(reply._tag === "Json" && reply.status).toBe(500)
      const rows = yield* recorded
      expect(rows).toHaveLength(1)
      expect(reply.headers["x-request-id"]).toBe(rows[0]!.id)
    }).pipe(Effect.provide(TestLayers)))

  it.live("answers, and records, a request that succeeded", () =>
    Effect.gen(function*() {
      const spend = yield* Spend
      const reply = yield* metered(spend, "/v1/chat/completions", { authorization: undefined }, (ticket) => Effect.sync(() => json({ ok: true }, { cost: String(ticket.finish(200)) })))
      expect(reply._tag === "Json" && reply.status).toBe(200)
      const rows = yield* recorded
      expect(rows.map((r) => [r.status, r.id])).toEqual([[200, reply.headers["x-request-id"]]])
    }).pipe(Effect.provide(TestLayers)))
})

describe("the request scope", () => {
  const finalizerBreaks = Effect.asVoid(Effect.flatMap(Scope.Scope, (scope) => Scope.addFinalizer(scope, Effect.die("a finalizer broke"))))

  it.effect("closes on success; a finalizer that breaks goes to the defect handler", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      yield* inRequestScope(finalizerBreaks, (cause) => Ref.update(seen, (s) => [...s, ...[...Cause.defects(cause)].map(String)]))
      expect(yield* Ref.get(seen)).toEqual(["a finalizer broke"])
    }))

  it.effect("gives the defect handler the failure and a breaking finalizer's defect together", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      yield* inRequestScope(Effect.zipRight(finalizerBreaks, Effect.die("the handler broke")), (cause) =>
        Ref.update(seen, (s) => [...s, ...[...Cause.defects(cause)].map(String)]))
      expect(yield* Ref.get(seen)).toEqual(["the handler broke", "a finalizer broke"])
    }))

  it.effect("provides the scope, and closes it, running the finalizers", () =>
    Effect.gen(function*() {
      const closed = yield* Deferred.make<void>()
      yield* inRequestScope(Effect.asVoid(Effect.flatMap(Scope.Scope, (scope) => Scope.addFinalizer(scope, Deferred.succeed(closed, undefined)))), () => Effect.void)
      expect(yield* Deferred.isDone(closed)).toBe(true)
    }))
})
