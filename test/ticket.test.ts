/**
 * The Ticket as the owner of a request, without HTTP: the consensus engine admits its
 * fan-out through the request's ticket (the key's models and budget), every candidate's
 * call is metered into it, and it settles once. Test layers: the in-memory spend store and
 * the real router over simulated models (on the live clock: they take their time).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { Ledger } from "../src/billing/ledger"
import { Spend } from "../src/billing/spend"
import { MemorySpendStore } from "../src/billing/store/memory"
import { SpendStore } from "../src/billing/store/store"
import { CurrentTicket, Ticket } from "../src/billing/ticket"
import { GatewayConfig } from "../src/config/gateway-config"
import { Consensus } from "../src/consensus/engine"
import { Evaluators } from "../src/consensus/evaluators"
import { Router } from "../src/routing/router"
import { makeTelemetry, Telemetry } from "../src/telemetry/telemetry"
import { resolveTestConfig } from "./support/gateway"

const YAML = `
consensus: { max_fanout: 3 }
models:
  - { id: strong, provider: sim, weight: 3, price: { input: 10, output: 10 }, sim: { latency_ms: 1, answers: ["B"] } }
  - { id: middle, provider: sim, weight: 2, price: { input: 1, output: 1 }, sim: { latency_ms: 1, answers: ["B"] } }
  - { id: weak, provider: sim, weight: 1, price: { input: 1, output: 1 }, sim: { latency_ms: 1, answers: ["C"] } }
`

const TestLayers = Layer.unwrapEffect(Effect.promise(() => resolveTestConfig(YAML)).pipe(Effect.map((config) =>
  Layer.mergeAll(
    Consensus.Default.pipe(Layer.provideMerge(Evaluators.Default), Layer.provideMerge(Router.Default)),
    Spend.Default.pipe(Layer.provideMerge(Ledger.Default))
  ).pipe(
    Layer.provideMerge(MemorySpendStore),
    Layer.provideMerge(Layer.succeed(Telemetry, makeTelemetry())),
    Layer.provideMerge(Layer.succeed(GatewayConfig, config))
  )
)))

/** A consensus run for the request `ticket` is open for. */
const consensusFor = (ticket: Ticket, models: ReadonlyArray<string>) =>
  Effect.flatMap(Consensus, (consensus) =>
    consensus.run({ prompt: "Which letter?", models: [...models], early_stop: false }, { max_tokens: 20 }).pipe(Effect.locally(CurrentTicket, ticket)))

describe("Ticket", () => {
  it.scopedLive("admits a fan-out against the key's budget, meters every candidate's call into it, and settles it once", () =>
    Effect.gen(function*() {
      const store = yield* SpendStore
      const spend = yield* Spend
      const { key, secret } = yield* store.createKey({ name: "team", budget_usd: 10 }, Date.now())
      const ticket = new Ticket(spend, "/v1/consensus", `Bearer ${secret}`)
      const report = yield* consensusFor(ticket, ["strong", "middle", "weak"])
      expect(report.answer.content).toContain("B")
      // Admitted as the key's, with a reservation, and the engine's id on the meter.
      expect(ticket.admission?.keyId).toBe(key.id)
      expect(ticket.admission?.reservation).toBeDefined()
      expect(ticket.consensusId).toBe(report.id)
      expect(ticket.attempts.map((a) => a.deployment.id).sort()).toEqual(["middle", "strong", "weak"])
      const cost = ticket.finish(200)
      expect(cost).toBeGreaterThan(0)
      // The first finish wins: a second one records nothing more.
      expect(ticket.finish(500, "late")).toBe(cost)
    }).pipe(Effect.provide(TestLayers)))

  it.scopedLive("refuses a fan-out to models the key may not use, naming them, before any call", () =>
    Effect.gen(function*() {
      const store = yield* SpendStore
      const spend = yield* Spend
      const { secret } = yield* store.createKey({ name: "narrow", models: ["weak"] }, Date.now())
      const ticket = new Ticket(spend, "/v1/consensus", `Bearer ${secret}`)
      const refused = yield* Effect.either(consensusFor(ticket, ["strong", "weak"]))
      expect(Either.isLeft(refused) && refused.left._tag).toBe("ModelNotAllowed")
      expect(ticket.attempts).toEqual([])
    }).pipe(Effect.provide(TestLayers)))

  it.scopedLive("runs without a ticket (the engine's own tests, benchmarks): no admission asked of anyone", () =>
    Effect.gen(function*() {
      const consensus = yield* Consensus
      const report = yield* consensus.run({ prompt: "Which letter?", models: ["middle", "weak"] }, {})
      expect(report.candidates.length).toBe(2)
    }).pipe(Effect.provide(TestLayers)))
})
