/**
 * Who is calling and what admission is given, at the Ticket, with test layers (the
 * in-memory store): a request's key is identified once, with its tags and policies; the
 * cost options are estimated by the Ticket only for a key that needs them, and handed
 * to the store as values; a key whose cached facts are stale (it gained a budget, or was
 * revoked, since) is still held to what the store says.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Ledger } from "../src/billing/ledger"
import { Spend } from "../src/billing/spend"
import { MemorySpendStore } from "../src/billing/store/memory"
import { SpendStore } from "../src/billing/store/store"
import { Ticket } from "../src/billing/ticket"
import { GatewayConfig } from "../src/config/gateway-config"
import { makeTelemetry, Telemetry } from "../src/telemetry/telemetry"
import { resolveTestConfig } from "./support/gateway"

const YAML = `
models:
  - { id: m, provider: sim, price: { input: 1, output: 1 }, sim: { latency_ms: 1, answers: ["ok"] } }
auth: { mode: keys }
`

const TestLayers = Layer.unwrapEffect(Effect.promise(() => resolveTestConfig(YAML)).pipe(Effect.map((config) =>
  Spend.Default.pipe(
    Layer.provideMerge(Ledger.Default),
    Layer.provideMerge(MemorySpendStore),
    Layer.provideMerge(Layer.succeed(Telemetry, makeTelemetry())),
    Layer.provideMerge(Layer.succeed(GatewayConfig, config))
  )
)))

/** An estimate that counts how often it was asked for: the tokenizer pass it stands for. */
const counted = (micros: number) => {
  const calls = { n: 0 }
  const estimate = Effect.sync(() => {
    calls.n++
    return [{ micros, tokens: 10 }]
  })
  return { calls, estimate }
}

describe("a request's key at its Ticket", () => {
  it.scoped("is identified once per request, with its tags, policies and models", () =>
    Effect.gen(function*() {
      const store = yield* SpendStore
      const spend = yield* Spend
      const { key, secret } = yield* store.createKey({ name: "staff", tags: ["internal"], policies: ["no-pii"], models: ["m"] }, Date.now())
      const ticket = new Ticket(spend, "/v1/chat/completions", `Bearer ${secret}`)
      expect(yield* ticket.identify()).toMatchObject({ id: key.id, tags: ["internal"], policies: ["no-pii"], models: ["m"], needsCost: false })
      expect(ticket.key?.id).toBe(key.id)
      expect(yield* ticket.allowed()).toEqual(["m"])
      const unknown = yield* Effect.flip(new Ticket(spend, "/v1/chat/completions", "Bearer qk-not-a-key").identify())
      expect(unknown._tag).toBe("Unauthorized")
      const missing = yield* Effect.flip(new Ticket(spend, "/v1/chat/completions", undefined).identify())
      expect(missing.message).toContain("didn't provide an API key")
    }).pipe(Effect.provide(TestLayers)))

  it.scoped("estimates the request's cost only for a key with a budget or a token limit", () =>
    Effect.gen(function*() {
      const store = yield* SpendStore
      const spend = yield* Spend
      const free = yield* store.createKey({ name: "free" }, Date.now())
      const plain = counted(100)
      const admitted = yield* new Ticket(spend, "/v1/chat/completions", `Bearer ${free.secret}`).admit(["m"], plain.estimate)
      expect(admitted).toMatchObject({ keyId: free.key.id, reservation: undefined })
      expect(plain.calls.n).toBe(0)

      const budgeted = yield* store.createKey({ name: "budgeted", budget_usd: 1 }, Date.now())
      const costed = counted(100)
      const reserved = yield* new Ticket(spend, "/v1/chat/completions", `Bearer ${budgeted.secret}`).admit(["m"], costed.estimate)
      expect(reserved?.reservation?.micros).toBe(100)
      expect(costed.calls.n).toBe(1)
    }).pipe(Effect.provide(TestLayers)))

  it.scoped("holds a key to a budget it gained after its facts were cached, estimating then; refuses a key revoked since", () =>
    Effect.gen(function*() {
      const store = yield* SpendStore
      const spend = yield* Spend
      const { key, secret } = yield* store.createKey({ name: "grows" }, Date.now())
      yield* new Ticket(spend, "/v1/chat/completions", `Bearer ${secret}`).identify()
      // Changed in the store behind this worker's back (another replica's admin API): the cached facts say "no budget".
      yield* store.updateKey(key.id, { budget_usd: 0.0001 }, Date.now())
      const later = counted(50)
      const ticket = new Ticket(spend, "/v1/chat/completions", `Bearer ${secret}`)
      expect((yield* ticket.identify())?.needsCost).toBe(false)
      const admitted = yield* ticket.admit(["m"], later.estimate)
      expect(admitted?.reservation?.micros).toBe(50)
      expect(later.calls.n).toBe(1)
      const tooDear = yield* Effect.flip(new Ticket(spend, "/v1/chat/completions", `Bearer ${secret}`).admit(["m"], counted(1_000).estimate))
      expect(tooDear._tag).toBe("InsufficientQuota")

      yield* store.revokeKey(key.id, Date.now())
      const revoked = yield* Effect.flip(new Ticket(spend, "/v1/chat/completions", `Bearer ${secret}`).admit(["m"], counted(1).estimate))
      expect(revoked).toMatchObject({ _tag: "Unauthorized" })
      expect(revoked.message).toContain("was revoked")
    }).pipe(Effect.provide(TestLayers)))
})
