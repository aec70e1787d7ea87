/**
 * The belief store's fold when two replicas race for the same ledger rows, made to happen
 * rather than hoped for: both read the watermark and plan the same batch, and only the
 * first to write it folds it; the other's compare-and-set finds the watermark moved.
 */
import { SqlClient } from "@effect/sql"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { GatewayConfig, type ResolvedConfig } from "../src/config/gateway-config"
import { BeliefStore } from "../src/routing/learned/store"
import { LearnedBeliefsLive } from "../src/routing/learned/view"
import { databaseLayer } from "../src/billing/db/database"
import { resolveTestConfig } from "./support/gateway"

const open = async (config: ResolvedConfig, path: string) => {
  const scope = Effect.runSync(Scope.make())
  const layer = BeliefStore.Default.pipe(
    Layer.provide(LearnedBeliefsLive),
    Layer.provideMerge(databaseLayer({ kind: "sqlite", path })),
    Layer.provide(Layer.succeed(GatewayConfig, config))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return {
    store: Context.get(context, BeliefStore),
    sql: Context.get(context, SqlClient.SqlClient),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** `n` answered requests to the learned route, ended a minute ago, and the watermark put before them. */
const ledgerRows = (sql: SqlClient.SqlClient, n: number) =>
  sql.withTransaction(Effect.gen(function*() {
    const startedAt = Date.now() - 60_000
    for (let i = 0; i < n; i++) {
      const id = `req-race-${String(i).padStart(4, "0")}`
      yield* sql`INSERT INTO quorum_requests ${sql.insert({
        id, key_id: null, endpoint: "/v1/chat/completions", model: "learn", consensus_id: null, status: 200, error: null, stream: 0, cancelled: 0,
        attempts: 1, prompt_tokens: 10, completion_tokens: 5, cost_micros: 20, latency_ms: 12.5, started_at: startedAt + i, day: "2026-12-04"
      })}`
      yield* sql`INSERT INTO quorum_attempts ${sql.insert({
        request_id: id, seq: 0, key_id: null, consensus_id: null, model: i % 2 === 0 ? "a" : "b", provider: "sim", upstream_model: "x", status: "ok",
        error_kind: null, http_status: null, prompt_tokens: 10, cached_tokens: 0, completion_tokens: 5, estimated: 0, cost_micros: 20, latency_ms: 12.5,
        started_at: startedAt + i, day: "2026-12-04"
      })}`
    }
    yield* sql`UPDATE quorum_route_fold SET ended_at = 0, request_id = '' WHERE id = 'ledger'`
  }))

const configIn = (dir: string) =>
  resolveTestConfig(`
models:
  - { id: a, provider: sim }
  - { id: b, provider: sim }
routes:
  - { id: learn, strategy: adaptive, targets: [a, b] }
`, { QUORUM_DATA_DIR: dir })

const evidence = (b: { alpha: number; beta: number }) => b.alpha + b.beta - 2

describe("two replicas folding the same ledger", () => {
  it("fold a batch both planned once: the second finds the watermark moved", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-beliefs-"))
    const config = await configIn(dir)
    const path = join(dir, "race.db")
    const one = await open(config, path)
    const two = await open(config, path)
    try {
      await Effect.runPromise(ledgerRows(one.sql, 40))
      const [first, second] = await Promise.all([Effect.runPromise(one.store.planFold), Effect.runPromise(two.store.planFold)])
      expect(first!.from).toEqual(second!.from)
      const folded = await Effect.runPromise(one.store.applyFold(first!))
      expect(await Effect.runPromise(two.store.applyFold(second!))).toBe(0)
      // Whoever folded (this call, or a store's own loop just before it), the rows are in once.
      expect(folded === 0 || folded === 40).toBe(true)
      await Effect.runPromise(two.store.sync)
      const beliefs = await Effect.runPromise(two.store.beliefs("learn"))
      expect(beliefs.get("a")!.calls + beliefs.get("b")!.calls).toBe(40)
      expect(beliefs.get("a")!.costUsd).toBeCloseTo(20 / 1e6, 12)
      expect(beliefs.get("a")!.latencyMs).toBeCloseTo(12.5, 6)
    } finally {
      await two.close()
      await one.close()
    }
  })
})

describe("a labelled call", () => {
  it("counts once: its label in place of the completion, labelled before the fold or after", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-beliefs-"))
    const { store, sql, close } = await open(await configIn(dir), join(dir, "labels.db"))
    try {
      await Effect.runPromise(ledgerRows(sql, 4))
      // req-race-0000 and -0002 went to a: one labelled bad before the fold, one after.
      const before = (await Effect.runPromise(store.answerOf("req-race-0000")))!
      expect(before).toMatchObject({ route: "learn", target: "a" })
      expect(await Effect.runPromise(store.label({ ...before, route: "learn", target: "a" }, 0))).toBe(true)
      await Effect.runPromise(store.sync)
      let a = (await Effect.runPromise(store.beliefs("learn"))).get("a")!
      expect(a).toMatchObject({ calls: 2, feedback: 1, alpha: 2, beta: 2 })
      const after = (await Effect.runPromise(store.answerOf("req-race-0002")))!
      expect(await Effect.runPromise(store.label({ ...after, route: "learn", target: "a" }, 0))).toBe(true)
      a = (await Effect.runPromise(store.beliefs("learn"))).get("a")!
      expect(evidence(a)).toBe(2)
      expect(a).toMatchObject({ alpha: 1, beta: 3, feedback: 2 })
      expect(await Effect.runPromise(store.label({ ...after, route: "learn", target: "a" }, 1))).toBe(false)
    } finally {
      await close()
    }
  })
})
