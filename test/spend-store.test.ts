/**
 * The spend store on both databases it supports, with the same tests: keys, the
 * concurrent budget race across independent connections (as separate workers or
 * replicas have), reservation expiry, rate limits, and settlement.
 */
import { Effect, Either } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { DatabaseSetting } from "../src/spend/db/database"
import { dayOf } from "../src/spend/keys"
import type { Admission, LedgerEntry, SpendStore } from "../src/spend/store"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { openStore, postgresSetting, sqliteSetting } from "./support/spend"

let pg: RunningPostgres
beforeAll(async () => {
  pg = await startPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

let dbCount = 0
const databases: ReadonlyArray<readonly [string, () => DatabaseSetting]> = [
  ["SQLite", sqliteSetting],
  ["PostgreSQL", () => postgresSetting(pg.database(`spend_${++dbCount}`))]
]

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
const attempt = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(effect))

/** A ledger entry for an admitted request that cost `micros`. */
const settled = (admission: Admission, micros: number, id: string): LedgerEntry => {
  const now = Date.now()
  return {
    costMicros: micros,
    request: {
      id, key_id: admission.keyId, endpoint: "/v1/chat/completions", model: "m", consensus_id: null, status: 200, error: null,
      stream: 0, cancelled: 0, attempts: 1, prompt_tokens: 10, completion_tokens: 5, cost_micros: micros, latency_ms: 1, started_at: now, day: dayOf(now)
    },
    attempts: [{
      request_id: id, seq: 0, key_id: admission.keyId, consensus_id: null, model: "m", provider: "openai", upstream_model: "m", status: "ok",
      error_kind: null, http_status: null, prompt_tokens: 10, cached_tokens: 0, completion_tokens: 5, estimated: 0, cost_micros: micros,
      latency_ms: 1, started_at: now, day: dayOf(now)
    }],
    settle: { keyId: admission.keyId, period: admission.period, reservation: admission.reservation, tokenRefund: 0 }
  }
}

const admitInput = (secret: string, micros: number, extra: { ttlMs?: number; models?: Array<string>; tokens?: number } = {}) => ({
  secret,
  models: extra.models ?? ["m"],
  options: () => [{ micros, tokens: extra.tokens ?? 100 }],
  ttlMs: extra.ttlMs ?? 60_000,
  now: Date.now()
})

const reservedOf = (store: SpendStore, keyId: string) => run(store.getKey(keyId, Date.now())).then((k) => k!.spend)

describe.each(databases)("spend store on %s", (_name, setting) => {
  it("creates a key shown once, stores only its hash, updates and revokes it", async () => {
    const db = setting()
    const { close, store } = await openStore(db)
    try {
      const { key, secret } = await run(store.createKey({ name: "team-a", models: ["m"], budget_usd: 5, budget_period: "day", rpm: 60 }, Date.now()))
      expect(secret).toMatch(/^qk-[A-Za-z0-9_-]{43}$/)
      expect(key).toMatchObject({ name: "team-a", models: ["m"], budget_usd: 5, budget_period: "day", rpm: 60, tpm: null, revoked_at: null })
      expect(JSON.stringify(key)).not.toContain(secret.slice(3))
      const rows = await run(store.sql<Record<string, unknown>>`SELECT * FROM quorum_keys`)
      expect(JSON.stringify(rows)).not.toContain(secret.slice(10))
      expect(rows[0]!.hash).toMatch(/^[0-9a-f]{64}$/)

      expect(Either.isRight(await attempt(store.admit(admitInput(secret, 1))))).toBe(true)
      const denied = await attempt(store.admit(admitInput(secret, 1, { models: ["m", "other"] })))
      expect(Either.isLeft(denied) && denied.left).toMatchObject({ _tag: "ModelNotAllowed", models: ["other"] })

      const updated = await run(store.updateKey(key.id, { models: null, budget_usd: null }, Date.now()))
      expect(updated).toMatchObject({ models: null, budget_usd: null, rpm: 60, name: "team-a" })
      expect(Either.isRight(await attempt(store.admit(admitInput(secret, 1, { models: ["other"] }))))).toBe(true)

      const revoked = await run(store.revokeKey(key.id, Date.now()))
      expect(revoked!.revoked_at).toBeTypeOf("number")
      const after = await attempt(store.admit(admitInput(secret, 1)))
      expect(Either.isLeft(after) && after.left._tag).toBe("Unauthorized")
      const unknown = await attempt(store.admit(admitInput("qk-not-a-key", 1)))
      expect(Either.isLeft(unknown) && unknown.left._tag).toBe("Unauthorized")
      expect((await run(store.listKeys(Date.now()))).map((k) => k.id)).toEqual([key.id])
    } finally {
      await close()
    }
  })

  it("admits no more concurrent requests than the budget fits, across independent connections, and settles to zero reserved", async () => {
    const db = setting()
    const stores = await Promise.all([openStore(db), openStore(db), openStore(db), openStore(db)])
    try {
      const { key, secret } = await run(stores[0]!.store.createKey({ name: "race", budget_usd: 1 }, Date.now()))
      // Each request may cost $0.01: the $1 budget fits exactly 100 of the 200.
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => attempt(stores[i % stores.length]!.store.admit(admitInput(secret, 10_000))))
      )
      const admitted = results.flatMap((r) => (Either.isRight(r) ? [r.right] : []))
      const refused = results.flatMap((r) => (Either.isLeft(r) ? [r.left] : []))
      expect(admitted).toHaveLength(100)
      expect(new Set(refused.map((e) => e._tag))).toEqual(new Set(["InsufficientQuota"]))
      expect(await reservedOf(stores[1]!.store, key.id)).toMatchObject({ spent_usd: 0, reserved_usd: 1 })

      // Each settles at less than it reserved; what was left is available again.
      await run(stores[2]!.store.writeBatch(admitted.map((a, i) => settled(a, 4_000, `req_${i}`))))
      expect(await reservedOf(stores[3]!.store, key.id)).toMatchObject({ spent_usd: 0.4, reserved_usd: 0 })
      const reservations = await run(stores[0]!.store.sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)
      expect(Number(reservations[0]!.n)).toBe(0)
      const more = await Promise.all(Array.from({ length: 70 }, () => attempt(stores[0]!.store.admit(admitInput(secret, 10_000)))))
      expect(more.filter(Either.isRight)).toHaveLength(60)
    } finally {
      await Promise.all(stores.map((s) => s.close()))
    }
  })

  it("stops counting a reservation that was never settled once it expires", async () => {
    const { close, store } = await openStore(setting())
    try {
      const { key, secret } = await run(store.createKey({ name: "crash", budget_usd: 0.01 }, Date.now()))
      await run(store.admit(admitInput(secret, 10_000, { ttlMs: 300 })))
      const blocked = await attempt(store.admit(admitInput(secret, 1)))
      expect(Either.isLeft(blocked) && blocked.left._tag).toBe("InsufficientQuota")
      await new Promise((r) => setTimeout(r, 350))
      expect(await reservedOf(store, key.id)).toMatchObject({ reserved_usd: 0 })
      expect(Either.isRight(await attempt(store.admit(admitInput(secret, 10_000))))).toBe(true)
      await run(store.sweepReservations(Date.now() + 120_000))
      const left = await run(store.sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)
      expect(Number(left[0]!.n)).toBe(0)
    } finally {
      await close()
    }
  })

  it("limits requests and tokens per minute, with the wait until a request would fit", async () => {
    const { close, store } = await openStore(setting())
    try {
      const { secret } = await run(store.createKey({ name: "limits", rpm: 3 }, Date.now()))
      for (let i = 0; i < 3; i++) expect(Either.isRight(await attempt(store.admit(admitInput(secret, 0))))).toBe(true)
      const limited = await attempt(store.admit(admitInput(secret, 0)))
      if (Either.isRight(limited) || limited.left._tag !== "RateLimited") throw new Error("expected a rate limit")
      expect(limited.left.limit).toBe("requests")
      // One request refills in 20 s at 3 per minute.
      expect(limited.left.retryAfterMs).toBeGreaterThan(19_000)
      expect(limited.left.retryAfterMs).toBeLessThanOrEqual(20_000)

      const tokens = await run(store.createKey({ name: "tokens", tpm: 1_000 }, Date.now()))
      const first = await run(store.admit(admitInput(tokens.secret, 0, { tokens: 600 })))
      expect(first.tokensCharged).toBe(600)
      const second = await attempt(store.admit(admitInput(tokens.secret, 0, { tokens: 600 })))
      expect(Either.isLeft(second) && second.left).toMatchObject({ _tag: "RateLimited", limit: "tokens" })
      // The first used only 100 of its 600 tokens: the refund makes room for the second.
      await run(store.writeBatch([{ ...settled(first, 0, "req_t"), settle: { keyId: first.keyId, period: first.period, reservation: undefined, tokenRefund: 500 } }]))
      expect(Either.isRight(await attempt(store.admit(admitInput(tokens.secret, 0, { tokens: 600 }))))).toBe(true)
      const huge = await attempt(store.admit(admitInput(tokens.secret, 0, { tokens: 5_000 })))
      expect(Either.isLeft(huge) && huge.left.message).toContain("Request too large")
    } finally {
      await close()
    }
  })

  it("reserves the largest option that fits, for a consensus fan-out falling back to one model", async () => {
    const { close, store } = await openStore(setting())
    try {
      const { secret } = await run(store.createKey({ name: "fanout", budget_usd: 0.025 }, Date.now()))
      const options = () => [{ micros: 30_000, tokens: 0 }, { micros: 20_000, tokens: 0 }, { micros: 10_000, tokens: 0 }]
      const first = await run(store.admit({ ...admitInput(secret, 0), options }))
      expect(first).toMatchObject({ option: 1, reservation: { micros: 20_000 } })
      const second = await attempt(store.admit({ ...admitInput(secret, 0), options }))
      expect(Either.isLeft(second) && second.left._tag).toBe("InsufficientQuota")
    } finally {
      await close()
    }
  })
})
