/**
 * The spend store's contract, run against every store with the same tests: SQLite,
 * PostgreSQL and the in-memory store. Keys, the concurrent budget race across independent
 * connections (as separate workers or replicas have; for memory, handles on one process's
 * state), reservation expiry, rate limits, settlement, and the ledger's reports. Some
 * assertions look at the SQL tables behind the interface (only a key's hash is stored, the
 * running reserved totals match the reservations they stand for): the memory store has no
 * tables, so those run on SQL stores only.
 */
import type { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Layer } from "effect"
import Database from "libsql"
import { dayOf, hashKey } from "../src/billing/keys"
import { LEASE_MS } from "../src/billing/owner"
import type { RequestPage, RequestQuery } from "../src/billing/reports"
import { emptyMemorySpendState, makeMemorySpendStore, MemorySpendStore } from "../src/billing/store/memory"
import { chunks, SqlSpendStore } from "../src/billing/store/sql"
import { type Admission, type LedgerEntry, SpendStore, type SpendStoreShape } from "../src/billing/store/store"
import { databaseLayer } from "../src/billing/db/database"
import type { DatabaseSetting } from "../src/config/database"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { answeredEntry, openStore, postgresSetting, sqliteSetting } from "./support/spend"

let pg: RunningPostgres
beforeAll(async () => {
  pg = await startPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

/** A store opened on a database, and the database's tables when it has any. */
interface Opened {
  readonly store: SpendStoreShape
  readonly sql: SqlClient.SqlClient | undefined
  readonly close: () => Promise<void>
}

/** One database: each `open` is another connection to it, as another worker or replica would have. */
interface Database {
  readonly open: () => Promise<Opened>
  /** The store as a layer on this database, for it.effect tests. */
  readonly layer: Layer.Layer<SpendStore, unknown>
}

const sqlDatabase = (db: DatabaseSetting): Database => ({
  open: () => openStore(db),
  layer: SqlSpendStore.pipe(Layer.provide(databaseLayer(db)))
})

/** The memory store's database is its state: stores made on one state are connections to it. */
const memoryDatabase = (): Database => {
  const state = emptyMemorySpendState()
  return {
    open: () => Promise.resolve({ store: makeMemorySpendStore(state), sql: undefined, close: () => Promise.resolve() }),
    layer: MemorySpendStore
  }
}

let dbCount = 0
const databases: ReadonlyArray<readonly [string, () => Database]> = [
  ["SQLite", () => sqlDatabase(sqliteSetting())],
  ["PostgreSQL", () => sqlDatabase(postgresSetting(pg.database(`spend_${++dbCount}`)))],
  ["memory", memoryDatabase]
]

/** What only a SQL store has: its tables. */
const onTables = async (sql: SqlClient.SqlClient | undefined, look: (sql: SqlClient.SqlClient) => Promise<void>) => {
  if (sql !== undefined) await look(sql)
}

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
  hash: hashKey(secret),
  models: extra.models ?? ["m"],
  options: [{ micros, tokens: extra.tokens ?? 100 }],
  ttlMs: extra.ttlMs ?? 60_000,
  now: Date.now()
})

/** The running reserved totals admission reads, each against the sum of the reservations it stands for. */
const totalsAndSums = (sql: SqlClient.SqlClient) =>
  run(sql<{ total: unknown; sum: unknown }>`SELECT s.reserved_micros AS total,
    (SELECT COALESCE(SUM(r.amount_micros), 0) FROM quorum_reservations r WHERE r.key_id = s.key_id AND r.period = s.period) AS sum
    FROM quorum_key_spend s`).then((rows) => rows.map((r) => [Number(r.total), Number(r.sum)]))

const keyRequests = (keyId: string): RequestQuery => ({ keyId, model: undefined, status: undefined, from: undefined, to: undefined, after: undefined, limit: 50 })

const reservedOf = (store: SpendStoreShape, keyId: string) => run(store.getKey(keyId, Date.now())).then((k) => k!.spend)

describe.each(databases)("spend store on %s", (_name, setting) => {
  it("creates a key shown once, stores only its hash, updates and revokes it", async () => {
    const { close, store, sql } = await setting().open()
    try {
      const { key, secret } = await run(store.createKey({ name: "team-a", models: ["m"], budget_usd: 5, budget_period: "day", rpm: 60 }, Date.now()))
      expect(secret).toMatch(/^qk-[A-Za-z0-9_-]{43}$/)
      expect(key).toMatchObject({ name: "team-a", models: ["m"], budget_usd: 5, budget_period: "day", rpm: 60, tpm: null, revoked_at: null })
      expect(JSON.stringify(key)).not.toContain(secret.slice(3))
      await onTables(sql, async (sql) => {
        const rows = await run(sql<Record<string, unknown>>`SELECT * FROM quorum_keys`)
        expect(JSON.stringify(rows)).not.toContain(secret.slice(10))
        expect(rows[0]!.hash).toMatch(/^[0-9a-f]{64}$/)
      })

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
    const stores = await Promise.all([db.open(), db.open(), db.open(), db.open()])
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
      expect(await reservedOf(stores[1]!.store, key.id)).toMatchObject({ spent_usd: "0.000000", reserved_usd: "1.000000" })
      await onTables(stores[1]!.sql, async (sql) => expect(await totalsAndSums(sql)).toEqual([[1_000_000, 1_000_000]]))

      // Each settles at less than it reserved; what was left is available again.
      await run(stores[2]!.store.writeBatch(admitted.map((a, i) => settled(a, 4_000, `req_${i}`))))
      expect(await reservedOf(stores[3]!.store, key.id)).toMatchObject({ spent_usd: "0.400000", reserved_usd: "0.000000" })
      await onTables(stores[0]!.sql, async (sql) => {
        const reservations = await run(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)
        expect(Number(reservations[0]!.n)).toBe(0)
      })
      await onTables(stores[1]!.sql, async (sql) => expect(await totalsAndSums(sql)).toEqual([[0, 0]]))
      const more = await Promise.all(Array.from({ length: 70 }, () => attempt(stores[0]!.store.admit(admitInput(secret, 10_000)))))
      expect(more.filter(Either.isRight)).toHaveLength(60)
    } finally {
      await Promise.all(stores.map((s) => s.close()))
    }
  })

  it("admits requests asked for together in order, each refusal undoing its own draws only", async () => {
    const { close, store, sql } = await setting().open()
    try {
      const { key, secret } = await run(store.createKey({ name: "together", budget_usd: 0.03, rpm: 3 }, Date.now()))
      // Asked in one turn (SQLite admits them in one transaction, PostgreSQL in one group after the first).
      const results = await Promise.all([20_000, 20_000, 10_000, 0, 0].map((micros) => attempt(store.admit(admitInput(secret, micros)))))
      expect(results.map((r) => (Either.isRight(r) ? "admitted" : r.left._tag))).toEqual(
        ["admitted", "InsufficientQuota", "admitted", "admitted", "RateLimited"]
      )
      expect(await reservedOf(store, key.id)).toMatchObject({ reserved_usd: "0.030000" })
      await onTables(sql, async (sql) => expect(await totalsAndSums(sql)).toEqual([[30_000, 30_000]]))
    } finally {
      await close()
    }
  })

  it("stops counting a reservation that was never settled once it expires", async () => {
    const { close, store, sql } = await setting().open()
    try {
      const { key, secret } = await run(store.createKey({ name: "crash", budget_usd: 0.01 }, Date.now()))
      await run(store.admit(admitInput(secret, 10_000, { ttlMs: 300 })))
      const blocked = await attempt(store.admit(admitInput(secret, 1)))
      expect(Either.isLeft(blocked) && blocked.left._tag).toBe("InsufficientQuota")
      await new Promise((r) => setTimeout(r, 350))
      expect(await reservedOf(store, key.id)).toMatchObject({ reserved_usd: "0.000000" })
      // The expired reservation is still in the key's running total until swept: admission looks past it.
      await onTables(sql, async (sql) => expect(await totalsAndSums(sql)).toEqual([[10_000, 10_000]]))
      expect(Either.isRight(await attempt(store.admit(admitInput(secret, 10_000))))).toBe(true)
      await run(store.sweepReservations(Date.now() + 120_000))
      await onTables(sql, async (sql) => {
        const left = await run(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)
        expect(Number(left[0]!.n)).toBe(0)
        expect(await totalsAndSums(sql)).toEqual([[0, 0]])
      })
    } finally {
      await close()
    }
  })

  it("limits requests and tokens per minute, with the wait until a request would fit", async () => {
    const { close, store } = await setting().open()
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

  it("charges the reservations of a process whose lease lapsed at their worst case, once, and replaces the charge if the process settles after all", async () => {
    const { close, store, sql } = await setting().open()
    try {
      const { key, secret } = await run(store.createKey({ name: "lapsed", budget_usd: 1 }, Date.now()))
      const now = Date.now()
      const admitted = await Promise.all([0, 1, 2].map(() => run(store.admit(admitInput(secret, 10_000)))))
      // A reservation younger than a lease is left alone even without one, and the lease holds older ones.
      expect(await run(store.reconcile(now + LEASE_MS - 1))).toBe(0)
      await run(store.renewLease(now + 2 * LEASE_MS))
      expect(await run(store.reconcile(now + 3 * LEASE_MS - 1))).toBe(0)
      await run(store.endLease)
      expect(await run(store.reconcile(Date.now()))).toBe(0)

      // Later, with the lease lapsed: all three are charged, in the ledger and the key's spend, and no longer reserved.
      const later = Date.now() + LEASE_MS
      expect(await run(store.reconcile(later))).toBe(3)
      expect(await run(store.reconcile(later))).toBe(0)
      expect(await reservedOf(store, key.id)).toMatchObject({ spent_usd: "0.030000", reserved_usd: "0.000000" })
      await onTables(sql, async (sql) => expect(await totalsAndSums(sql)).toEqual([[0, 0]]))
      const rows = await run(store.listRequests(keyRequests(key.id)))
      expect(rows.data.map((r) => [r.id, r.status, r.cost_micros, r.error?.startsWith("reconciled")]).sort())
        .toEqual(admitted.map((a) => [a.reservation!.id, 0, 10_000, true]).sort())
      const report = await run(store.report({ groupBy: [], from: undefined, to: undefined, keyId: key.id }))
      expect(report.total).toMatchObject({ requests: 3, failed: 3, by_status: { "0": 3 }, cost_micros: 30_000 })

      // The owner was alive after all (a stall): its batch replaces the worst case of what it settles with the real cost.
      await run(store.writeBatch([settled(admitted[0]!, 4_000, "req_real")]))
      expect(await reservedOf(store, key.id)).toMatchObject({ spent_usd: "0.024000", reserved_usd: "0.000000" })
      const after = await run(store.listRequests(keyRequests(key.id)))
      expect(after.data.map((r) => r.id).sort()).toEqual(["req_real", admitted[1]!.reservation!.id, admitted[2]!.reservation!.id].sort())
    } finally {
      await close()
    }
  })

  it("renews this process's lease only while it holds reservations: at rest it writes nothing", async () => {
    const { close, store, sql } = await setting().open()
    const leases = (sql: SqlClient.SqlClient) => sql<{ lease_until: unknown }>`SELECT lease_until FROM quorum_owners`.pipe(Effect.map((rows) => rows.map((r) => Number(r.lease_until))), run)
    try {
      const { secret } = await run(store.createKey({ name: "at-rest", budget_usd: 1 }, Date.now()))
      const now = Date.now()
      await run(store.renewLease(now))
      await onTables(sql, async (sql) => expect(await leases(sql)).toEqual([]))

      const admitted = await run(store.admit(admitInput(secret, 10_000)))
      await run(store.renewLease(now + 2 * LEASE_MS))
      await onTables(sql, async (sql) => expect(await leases(sql)).toEqual([now + 3 * LEASE_MS]))
      // Older than a lease, and held under the renewed one: not charged.
      expect(await run(store.reconcile(now + 3 * LEASE_MS - 1))).toBe(0)

      // Settled: nothing held, so the next renewal writes nothing and the lease is left to lapse.
      await run(store.writeBatch([settled(admitted, 4_000, "req_at_rest")]))
      await run(store.renewLease(now + 4 * LEASE_MS))
      await onTables(sql, async (sql) => expect(await leases(sql)).toEqual([now + 3 * LEASE_MS]))
      // Another reservation after the lease lapsed: the next renewal holds it, until that lease lapses too.
      await run(store.admit(admitInput(secret, 10_000)))
      const later = now + 10 * LEASE_MS
      await run(store.renewLease(later))
      expect(await run(store.reconcile(later + LEASE_MS - 1))).toBe(0)
      expect(await run(store.reconcile(later + LEASE_MS))).toBe(1)
    } finally {
      await close()
    }
  })

  it("reserves the largest option that fits, for a consensus fan-out falling back to one model", async () => {
    const { close, store } = await setting().open()
    try {
      const { secret } = await run(store.createKey({ name: "fanout", budget_usd: 0.025 }, Date.now()))
      const options = [{ micros: 30_000, tokens: 0 }, { micros: 20_000, tokens: 0 }, { micros: 10_000, tokens: 0 }]
      const first = await run(store.admit({ ...admitInput(secret, 0), options }))
      expect(first).toMatchObject({ option: 1, reservation: { micros: 20_000 } })
      const second = await attempt(store.admit({ ...admitInput(secret, 0), options }))
      expect(Either.isLeft(second) && second.left._tag).toBe("InsufficientQuota")
    } finally {
      await close()
    }
  })
})

describe.each(databases)("the ledger's reports and request queries on %s", (_name, setting) => {
  /** Three days of requests from two keys: answered, refused by a key's limits, failed upstream, cancelled. */
  const DAY0 = Date.parse("2026-11-20T10:00:00Z")
  const HOUR = 3_600_000
  const entry = (id: string, at: number, keyId: string | null, model: string, status: number, attempts: ReadonlyArray<{ model: string; provider: string; cost: number; ok: boolean }>): LedgerEntry => ({
    costMicros: attempts.reduce((s, a) => s + a.cost, 0),
    request: {
      id, key_id: keyId, endpoint: "/v1/chat/completions", model, consensus_id: null, status, error: status === 200 ? null : `status ${status}`,
      stream: 0, cancelled: status === 499 ? 1 : 0, attempts: attempts.length, prompt_tokens: attempts.length * 10, completion_tokens: attempts.length * 5,
      cost_micros: attempts.reduce((s, a) => s + a.cost, 0), latency_ms: 12.5, started_at: at, day: dayOf(at)
    },
    attempts: attempts.map((a, seq) => ({
      request_id: id, seq, key_id: keyId, consensus_id: null, model: a.model, provider: a.provider, upstream_model: a.model, status: a.ok ? "ok" : "error",
      error_kind: a.ok ? null : "server_error", http_status: a.ok ? null : 500, prompt_tokens: 10, cached_tokens: 0, completion_tokens: 5, estimated: 0,
      cost_micros: a.cost, latency_ms: 5, started_at: at, day: dayOf(at)
    })),
    settle: undefined
  })
  const ok = (model: string, cost: number) => ({ model, provider: "openai", cost, ok: true })
  const broken = (model: string) => ({ model, provider: "anthropic", cost: 0, ok: false })
  const ledger = [
    entry("req-01", DAY0, "key_a", "gpt", 200, [ok("gpt", 100)]),
    entry("req-02", DAY0 + HOUR, "key_a", "gpt", 429, []),
    entry("req-03", DAY0 + HOUR, "key_a", "gpt", 429, []),
    entry("req-04", DAY0 + 2 * HOUR, "key_a", "claude", 403, []),
    // Fell back from claude to gpt: one request, two models.
    entry("req-05", DAY0 + 24 * HOUR, "key_a", "default", 200, [broken("claude"), ok("gpt", 50)]),
    entry("req-06", DAY0 + 24 * HOUR, "key_b", "claude", 502, [broken("claude"), broken("claude")]),
    entry("req-07", DAY0 + 25 * HOUR, "key_b", "gpt", 499, [ok("gpt", 7)]),
    entry("req-08", DAY0 + 48 * HOUR, null, "gpt", 401, []),
    entry("req-09", DAY0 + 48 * HOUR, "key_b", "gpt", 200, [ok("gpt", 30)])
  ]

  let opened: Opened
  beforeAll(async () => {
    opened = await setting().open()
    await run(opened.store.writeBatch(ledger))
  })
  afterAll(async () => {
    await opened?.close()
  })
  const query = (q: Partial<RequestQuery>): RequestQuery => ({ keyId: undefined, model: undefined, status: undefined, from: undefined, to: undefined, after: undefined, limit: 50, ...q })
  const ids = (q: Partial<RequestQuery>) => run(opened.store.listRequests(query(q))).then((page) => page.data.map((r) => r.id))

  it("reports every request, refused ones included, by status, with counts that add up", async () => {
    const byKey = await run(opened.store.report({ groupBy: ["key"], from: undefined, to: undefined, keyId: undefined }))
    const a = byKey.data.find((r) => r.key === "key_a")!
    expect(a).toMatchObject({ requests: 5, succeeded: 2, refused: 3, failed: 0, cancelled: 0, by_status: { "200": 2, "429": 2, "403": 1 }, attempts: 3, cost_micros: 150 })
    const b = byKey.data.find((r) => r.key === "key_b")!
    expect(b).toMatchObject({ requests: 3, succeeded: 1, refused: 0, failed: 1, cancelled: 1, by_status: { "200": 1, "502": 1, "499": 1 }, attempts: 4, cost_micros: 37 })
    const anonymous = byKey.data.find((r) => r.key === null)!
    expect(anonymous).toMatchObject({ requests: 1, refused: 1, by_status: { "401": 1 }, attempts: 0, cost_micros: 0 })
    expect(byKey.total).toMatchObject({ requests: 9, succeeded: 3, refused: 4, failed: 1, cancelled: 1, attempts: 7, cost_micros: 187 })
    for (const row of [...byKey.data, byKey.total]) {
      expect(row.succeeded + row.refused + row.failed + row.cancelled).toBe(row.requests)
      expect(Object.values(row.by_status).reduce((s, n) => s + n, 0)).toBe(row.requests)
    }
  })

  it("groups refused requests under the model asked for, and counts a request that used two models once in the total", async () => {
    const report = await run(opened.store.report({ groupBy: ["model", "provider"], from: undefined, to: undefined, keyId: "key_a" }))
    const rows = report.data.map((r) => [r.model, r.provider, r.requests, r.attempts, r.by_status])
    expect(rows).toEqual([
      ["claude", "anthropic", 1, 1, { "200": 1 }],
      ["claude", null, 1, 0, { "403": 1 }],
      ["gpt", "openai", 2, 2, { "200": 2 }],
      ["gpt", null, 2, 0, { "429": 2 }]
    ])
    // req-05 is in two groups: the groups say 6 requests, the key made 5.
    expect(report.total.requests).toBe(5)
    const day = await run(opened.store.report({ groupBy: ["day"], from: "2026-11-21", to: "2026-11-22", keyId: undefined }))
    expect(day.data.map((r) => [r.day, r.requests, r.refused])).toEqual([["2026-11-21", 3, 0], ["2026-11-22", 2, 1]])
  })

  it("lists requests newest first, filtered by key, model, status or class, and time", async () => {
    expect(await ids({})).toEqual(["req-09", "req-08", "req-07", "req-06", "req-05", "req-04", "req-03", "req-02", "req-01"])
    expect(await ids({ keyId: "key_b" })).toEqual(["req-09", "req-07", "req-06"])
    expect(await ids({ status: { min: 429, max: 429 } })).toEqual(["req-03", "req-02"])
    expect(await ids({ status: { min: 400, max: 499 } })).toEqual(["req-08", "req-07", "req-04", "req-03", "req-02"])
    // The model asked for, or one that was called for it (req-05 asked for the route `default`).
    expect(await ids({ model: "claude", keyId: "key_a" })).toEqual(["req-05", "req-04"])
    expect(await ids({ from: DAY0 + HOUR, to: DAY0 + 24 * HOUR })).toEqual(["req-04", "req-03", "req-02"])
  })

  it("pages through requests with `after`, ties in time broken by id, without gaps or repeats", async () => {
    const seen: Array<string> = []
    let after: RequestQuery["after"] = undefined
    for (let page = 0; page < 10; page++) {
      const result: RequestPage = await run(opened.store.listRequests(query({ limit: 2, after })))
      seen.push(...result.data.map((r) => r.id))
      expect(result.has_more).toBe(result.next_after !== null)
      if (result.next_after === null) break
      after = await run(opened.store.requestPosition(result.next_after))
    }
    expect(seen).toEqual(["req-09", "req-08", "req-07", "req-06", "req-05", "req-04", "req-03", "req-02", "req-01"])
    expect(await run(opened.store.requestPosition("req-missing"))).toBeUndefined()
  })

  it("shows one request with its upstream attempts", async () => {
    const found = await run(opened.store.getRequest("req-05"))
    expect(found).toMatchObject({
      id: "req-05", object: "request", key_id: "key_a", model: "default", status: 200, stream: false, cancelled: false,
      attempts: 2, cost_micros: 50, cost_usd: "0.000050", latency_ms: 12.5, started_at: DAY0 + 24 * HOUR, day: "2026-11-21"
    })
    expect(found!.upstream_attempts).toEqual([
      expect.objectContaining({ seq: 0, model: "claude", provider: "anthropic", status: "error", error_kind: "server_error", http_status: 500, cost_micros: 0, estimated: false }),
      expect.objectContaining({ seq: 1, model: "gpt", provider: "openai", status: "ok", http_status: null, cost_micros: 50, cost_usd: "0.000050" })
    ])
    expect((await run(opened.store.getRequest("req-02")))!.upstream_attempts).toEqual([])
    expect(await run(opened.store.getRequest("req-missing"))).toBeUndefined()
  })
})

describe.each(databases)("the store as a layer on %s", (_name, setting) => {
  const onStore = <A, E>(use: (store: SpendStoreShape) => Effect.Effect<A, E>) =>
    Effect.flatMap(SpendStore, use).pipe(Effect.provide(setting().layer))

  it.effect("settles a batch written twice once, as a flush retried after a timeout writes it", () =>
    onStore((store) =>
      Effect.gen(function*() {
        const { key, secret } = yield* store.createKey({ name: "retried", budget_usd: 1 }, Date.now())
        const admitted = yield* store.admit(admitInput(secret, 10_000))
        const batch = [settled(admitted, 4_000, "req_twice")]
        yield* store.writeBatch(batch)
        yield* store.writeBatch(batch)
        expect((yield* store.getKey(key.id, Date.now()))?.spend).toMatchObject({ spent_usd: "0.004000", reserved_usd: "0.000000" })
        expect((yield* store.listRequests(keyRequests(key.id))).data.map((r) => r.id)).toEqual(["req_twice"])
        expect((yield* store.getRequest("req_twice"))?.upstream_attempts).toHaveLength(1)
      })))

  it.effect("writes a batch of any size whole, in groups of a few sizes (power-of-two statements)", () =>
    onStore((store) =>
      Effect.gen(function*() {
        const batch = Array.from({ length: 300 }, answeredEntry)
        expect(chunks(batch, 128).map((group) => group.length)).toEqual([128, 128, 32, 8, 4])
        yield* store.writeBatch(batch)
        for (const entry of batch) expect((yield* store.getRequest(entry.request!.id))?.upstream_attempts, entry.request!.id).toHaveLength(1)
      })))

  it.effect("answers a key's facts by its hash (carried with them, for admission): the models it may use (all or some), its tags and policies, whether it needs costs, revoked or not; none for an unknown key", () =>
    onStore((store) =>
      Effect.gen(function*() {
        const any = yield* store.createKey({ name: "any" }, Date.now())
        const some = yield* store.createKey({ name: "some", models: ["a", "b"], tags: ["internal"], policies: ["no-pii"], tpm: 1_000, budget_period: "day" }, Date.now())
        expect(yield* store.keyFacts(hashKey(any.secret))).toEqual({
          id: any.key.id, hash: hashKey(any.secret), prefix: any.key.prefix, tags: [], policies: [], models: null, needsCost: false, budgetPeriod: "month", revoked: false
        })
        expect(yield* store.keyFacts(hashKey(some.secret))).toMatchObject({ models: ["a", "b"], tags: ["internal"], policies: ["no-pii"], needsCost: true, budgetPeriod: "day", revoked: false })
        expect(yield* store.keyFacts(hashKey("qk-not-a-key"))).toBeUndefined()
        yield* store.revokeKey(some.key.id, Date.now())
        expect(yield* store.keyFacts(hashKey(some.secret))).toMatchObject({ revoked: true })
        expect((yield* store.updateKey("key_missing", { name: "x" }, Date.now()))).toBeUndefined()
      })))

  it.effect("keeps a key's tags and policies, each once; an update that gives them replaces them, one that does not keeps them", () =>
    onStore((store) =>
      Effect.gen(function*() {
        const { key } = yield* store.createKey({ name: "tagged", tags: ["internal", "eu", "internal"], policies: ["no-pii"] }, Date.now())
        expect(key).toMatchObject({ tags: ["internal", "eu"], policies: ["no-pii"] })
        expect(yield* store.updateKey(key.id, { name: "renamed" }, Date.now())).toMatchObject({ tags: ["internal", "eu"], policies: ["no-pii"] })
        expect(yield* store.updateKey(key.id, { tags: [], policies: ["a", "b"] }, Date.now())).toMatchObject({ tags: [], policies: ["a", "b"] })
        expect((yield* store.listKeys(Date.now())).find((k) => k.id === key.id)).toMatchObject({ tags: [], policies: ["a", "b"] })
      })))

  it.effect("asked without cost options for a key that needs them, answers CostsNeeded having drawn and reserved nothing", () =>
    onStore((store) =>
      Effect.gen(function*() {
        const { key, secret } = yield* store.createKey({ name: "needs", budget_usd: 1, rpm: 1 }, Date.now())
        const needed = yield* Effect.flip(store.admit({ ...admitInput(secret, 10_000), options: undefined }))
        expect(needed._tag).toBe("CostsNeeded")
        // The one request a minute is still there, and nothing is reserved.
        const admitted = yield* store.admit(admitInput(secret, 10_000))
        expect(admitted.reservation?.micros).toBe(10_000)
        expect((yield* store.getKey(key.id, Date.now()))?.spend.reserved_usd).toBe("0.010000")
        // A key without a budget or token limit is admitted without them.
        const free = yield* store.createKey({ name: "free" }, Date.now())
        expect(yield* store.admit({ ...admitInput(free.secret, 0), options: undefined })).toMatchObject({ keyId: free.key.id, reservation: undefined })
      })))

  it.effect("refuses over budget without drawing the key's request bucket", () =>
    onStore((store) =>
      Effect.gen(function*() {
        const { secret } = yield* store.createKey({ name: "refused", budget_usd: 0.01, rpm: 1 }, Date.now())
        const refused = yield* Effect.flip(store.admit(admitInput(secret, 20_000)))
        expect(refused._tag).toBe("InsufficientQuota")
        const admitted = yield* store.admit(admitInput(secret, 10_000))
        expect(admitted.reservation?.micros).toBe(10_000)
        expect((yield* Effect.flip(store.admit(admitInput(secret, 1))))._tag).toBe("RateLimited")
      })))
})

describe("SQLite admissions while another process holds the file's lock", () => {
  it("keep nothing for a caller that left while its group waited: no reservation, no draw", async () => {
    const setting = sqliteSetting()
    if (setting.kind !== "sqlite") throw new Error("expected a SQLite setting")
    const { store, sql, close } = await openStore(setting)
    const other = new Database(setting.path)
    try {
      const { key, secret } = await run(store.createKey({ name: "left", budget_usd: 1, rpm: 1 }, Date.now()))
      other.exec("BEGIN IMMEDIATE")
      const leaving = Effect.runFork(store.admit(admitInput(secret, 100_000)))
      // Two turns: the group has been taken and waits for the lock.
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r))
      await Effect.runPromise(Fiber.interrupt(leaving))
      other.exec("COMMIT")
      // The next admission waits for that group's transaction: once it is answered, the group is over.
      const next = await attempt(store.admit(admitInput(secret, 10_000)))
      // rpm 1: it is admitted only if the caller who left drew nothing.
      expect(Either.isRight(next)).toBe(true)
      expect(await reservedOf(store, key.id)).toMatchObject({ reserved_usd: "0.010000" })
      const left = await run(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)
      expect(Number(left[0]?.n)).toBe(1)
    } finally {
      other.close()
      await close()
    }
  })
})
