/** The consensus outcome store on a real SQLite file: writes, idempotent retries, labels, history, policies, retention. */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { ConsensusOutcome } from "../src/consensus/outcome"
import { databaseLayer } from "../src/billing/db/database"
import { OutcomeStore } from "../src/consensus/learning/outcome-store"
import { sqliteSetting } from "./support/spend"

const outcome = (id: string, task: string): ConsensusOutcome => ({
  id,
  task,
  answerGroup: "42",
  candidates: [
    { model: "a", status: "ok", kind: "number", answer: "42", group: "42", latencyMs: 12.5, costMicros: 30 },
    { model: "b", status: "ok", kind: "text", answer: "no idea, really, none at all", group: null, latencyMs: 20, costMicros: 10 },
    { model: "c", status: "cancelled", kind: null, answer: null, group: null, latencyMs: null, costMicros: 5 }
  ]
})

layer(OutcomeStore.Default.pipe(Layer.provide(databaseLayer(sqliteSetting()))))("outcome store", (it) => {
  it.effect("writes outcomes once, even when a batch is retried, and reads them back", () =>
    Effect.gen(function*() {
      const store = yield* OutcomeStore
      const now = Date.now()
      const entry = { outcome: outcome("consensus-1", "t"), keyId: "key_1", createdAt: now }
      yield* store.writeBatch([entry])
      yield* store.writeBatch([entry])
      const found = yield* store.find("consensus-1", now - 1_000)
      expect(found?.keyId).toBe("key_1")
      expect(found?.candidates.map((c) => [c.model, c.group])).toEqual([["a", "42"], ["b", null], ["c", null]])
      expect(found?.candidates[0]?.latencyMs).toBe(12.5)
      expect(yield* store.find("consensus-missing", 0)).toBeUndefined()
    }))

  it.effect("keeps labels, gives a task's labelled history, and forgets outcomes past retention", () =>
    Effect.gen(function*() {
      const store = yield* OutcomeStore
      const now = Date.now()
      yield* store.writeBatch([{ outcome: outcome("consensus-2", "u"), keyId: null, createdAt: now - 10_000 }, { outcome: outcome("consensus-3", "u"), keyId: null, createdAt: now }])
      expect(yield* store.labelCount("u", 0)).toBe(0)
      yield* store.label("consensus-2", "42", "42", now)
      yield* store.label("consensus-3", "7", null, now + 1)
      const history = yield* store.labelled("u", 0)
      expect(history.map((h) => h.truth)).toEqual(["42", null])
      expect(history[0]!.candidates).toHaveLength(3)
      // Retention: what is older than the cut-off no longer counts, then is swept.
      expect(yield* store.labelCount("u", now - 5_000)).toBe(1)
      yield* store.sweep(now - 5_000)
      expect(yield* store.find("consensus-2", 0)).toBeUndefined()
      expect(yield* store.labelCount("u", 0)).toBe(1)
    }))

  it.effect("stores a task's policy, replacing it on relearning", () =>
    Effect.gen(function*() {
      const store = yield* OutcomeStore
      expect(yield* store.loadPolicy("v")).toBeUndefined()
      yield* store.savePolicy("v", 50, "{\"weights\":{}}", 1)
      yield* store.savePolicy("v", 60, "{\"weights\":{\"a\":1}}", 2)
      expect(yield* store.loadPolicy("v")).toEqual({ labels: 60, state: "{\"weights\":{\"a\":1}}", updatedAt: 2 })
      yield* store.deletePolicy("v")
      expect(yield* store.loadPolicy("v")).toBeUndefined()
    }))
})
