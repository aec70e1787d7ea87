/**
 * The ledger writer's status, which tests and operators wait on: a row recorded is
 * pending until its batch commits, including while it is being handed to the writer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Ledger } from "../src/billing/ledger"
import { MemorySpendStore } from "../src/billing/store/memory"
import { GatewayConfig } from "../src/config/gateway-config"
import { resolveTestConfig } from "./support/gateway"

const TestLayers = Layer.unwrapEffect(Effect.promise(() => resolveTestConfig("models:\n  - { id: m, provider: sim }\n")).pipe(Effect.map((config) =>
  Ledger.Default.pipe(Layer.provideMerge(MemorySpendStore), Layer.provideMerge(Layer.succeed(GatewayConfig, config)))
)))

const entry = { request: undefined, attempts: [], costMicros: 0, settle: undefined }

/** Until `written` reaches n: the writer commits every flush_ms. */
const writtenUpTo = (ledger: Ledger, n: number): Effect.Effect<void> =>
  Effect.flatMap(ledger.status, (s) => (s.written >= n ? Effect.void : Effect.zipRight(Effect.sleep("2 millis"), writtenUpTo(ledger, n))))

describe("Ledger status", () => {
  it.scopedLive("counts a row as pending from the moment it is recorded until its batch is written", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      // A first row written: the writer is then back waiting on its queue, where a new row goes straight to it.
      ledger.record(entry)
      yield* writtenUpTo(ledger, 1)
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      ledger.record(entry)
      expect(yield* ledger.status).toMatchObject({ pending: 1, written: 1 })
      yield* writtenUpTo(ledger, 2)
      expect(yield* ledger.status).toMatchObject({ pending: 0, written: 2 })
    }).pipe(Effect.provide(TestLayers)))
})
