/**
 * The spend store in this process's memory: for fast tests, and for a single process that
 * may lose its keys and ledger on exit (a demo). It keeps the promises of store.ts with the
 * same rules as the SQL store, row for row, so the same contract tests run against both.
 *
 * Exact under concurrency because every operation runs synchronously from start to end
 * (the body of one Effect.sync or Effect.suspend): Effect fibers share one thread, so no
 * other admission or batch can run between reading the budget and reserving from it; that
 * is what the key's row lock does in SQL. A refused admission changes nothing, as the SQL
 * transaction that refuses rolls back.
 */
import { Effect, Layer } from "effect"
import { formatUsd, usdToMicros } from "../../domain/money"
import { newId } from "../../domain/ids"
import { type AdmissionError, CostsNeeded, ModelNotAllowed } from "../errors"
import { type BudgetPeriod, dayOf, distinct, type KeyFacts, type KeyView, newKeyOf, periodOf } from "../keys"
import { LEASE_MS, OWNER, RECONCILED } from "../owner"
import { countStatuses, type RequestDetail, type RequestPage, type RequestQuery, type SpendReportRow, type StatusCounts } from "../reports"
import { quotaError, requestsLimited, revokedKey, tokensLimited, unknownKey } from "./refusals"
import { SpendStore, type SpendStoreShape } from "./store"
import type { Admission, AdmitInput, AttemptRow, LedgerEntry, ReportDimension, ReportQuery, RequestRow, SpendReportData } from "./types"
import { attemptView, requestView } from "./views"

interface KeyRecord {
  readonly id: string
  name: string
  readonly hash: string
  readonly prefix: string
  models: ReadonlyArray<string> | null
  budgetMicros: number | null
  budgetPeriod: BudgetPeriod
  rpm: number | null
  tpm: number | null
  tags: ReadonlyArray<string>
  policies: ReadonlyArray<string>
  /** Rate buckets: what is left, and when it was last refilled (null until first used). */
  reqLevel: number | null
  reqAt: number | null
  tokLevel: number | null
  tokAt: number | null
  readonly createdAt: number
  updatedAt: number
  revokedAt: number | null
  lastUsedAt: number | null
}

interface Reservation {
  readonly id: string
  readonly keyId: string
  readonly period: string
  readonly micros: number
  readonly expiresAt: number
  readonly owner: string
  readonly createdAt: number
}

type Totals = Omit<SpendReportRow, ReportDimension | "key_name">

/** A row of the union a report folds: an upstream attempt, or a request that called none. */
interface ReportRow {
  readonly requestId: string
  readonly dims: Record<ReportDimension, string | null>
  readonly status: number
  readonly upstream: boolean
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cost_micros: number
}

/** Code-unit order, as SQLite compares text; nulls last, as the SQL store orders groups on both databases. */
const compareNullable = (a: string | null, b: string | null): number =>
  a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1

const emptyTotals = (): Totals => ({ ...countStatuses([]), attempts: 0, prompt_tokens: 0, completion_tokens: 0, cost_micros: 0, cost_usd: formatUsd(0) })

/** One store's state; stores made from the same state are like connections to one database. */
export interface MemorySpendState {
  readonly keys: Map<string, KeyRecord>
  readonly keyByHash: Map<string, string>
  /** What each key's period has spent, settled or charged: keyed by `${keyId} ${period}`. */
  readonly spent: Map<string, number>
  readonly reservations: Map<string, Reservation>
  /** Owners' leases: when each lapses. */
  readonly owners: Map<string, number>
  /** The ledger, in insertion order. */
  readonly requests: Map<string, RequestRow>
  readonly attempts: Map<string, Array<AttemptRow>>
}

export const emptyMemorySpendState = (): MemorySpendState => ({
  keys: new Map(),
  keyByHash: new Map(),
  spent: new Map(),
  reservations: new Map(),
  owners: new Map(),
  requests: new Map(),
  attempts: new Map()
})

export const makeMemorySpendStore = (state: MemorySpendState = emptyMemorySpendState()): SpendStoreShape => {
  const { attempts, keyByHash, keys, owners, requests, reservations, spent } = state

  const spentOf = (keyId: string, period: string) => spent.get(`${keyId} ${period}`) ?? 0
  const addSpent = (keyId: string, period: string, micros: number) => spent.set(`${keyId} ${period}`, spentOf(keyId, period) + micros)

  /** Expired reservations no longer count, swept or not. */
  const reservedOf = (keyId: string, period: string, now: number) => {
    let sum = 0
    for (const r of reservations.values()) if (r.keyId === keyId && r.period === period && r.expiresAt > now) sum += r.micros
    return sum
  }

  const view = (key: KeyRecord, now: number): KeyView => {
    const period = periodOf(key.budgetPeriod, now)
    return {
      id: key.id,
      object: "key",
      name: key.name,
      prefix: key.prefix,
      models: key.models === null ? null : [...key.models],
      budget_usd: key.budgetMicros === null ? null : key.budgetMicros / 1e6,
      budget_period: key.budgetPeriod,
      rpm: key.rpm,
      tpm: key.tpm,
      tags: [...key.tags],
      policies: [...key.policies],
      created_at: key.createdAt,
      updated_at: key.updatedAt,
      revoked_at: key.revokedAt,
      last_used_at: key.lastUsedAt,
      spend: { period, spent_usd: formatUsd(spentOf(key.id, period)), reserved_usd: formatUsd(reservedOf(key.id, period, now)) }
    }
  }

  const getKeyNow = (id: string, now: number) => {
    const key = keys.get(id)
    return key === undefined ? undefined : view(key, now)
  }

  const createKey: SpendStoreShape["createKey"] = (input, now) =>
    Effect.sync(() => {
      const { secret, ...settings } = newKeyOf(input)
      const key: KeyRecord = {
        ...settings,
        reqLevel: null,
        reqAt: null,
        tokLevel: null,
        tokAt: null,
        createdAt: now,
        updatedAt: now,
        revokedAt: null,
        lastUsedAt: null
      }
      keys.set(key.id, key)
      keyByHash.set(key.hash, key.id)
      return { secret, key: view(key, now) }
    })

  const listKeys: SpendStoreShape["listKeys"] = (now) =>
    Effect.sync(() =>
      [...keys.values()]
        .sort((a, b) => a.createdAt - b.createdAt || compareNullable(a.id, b.id))
        .map((key) => view(key, now))
    )

  const getKey: SpendStoreShape["getKey"] = (id, now) => Effect.sync(() => getKeyNow(id, now))

  const updateKey: SpendStoreShape["updateKey"] = (id, patch, now) =>
    Effect.sync(() => {
      const key = keys.get(id)
      if (key === undefined) return undefined
      key.updatedAt = now
      if (patch.name !== undefined) key.name = patch.name
      if (patch.models !== undefined) key.models = patch.models === null ? null : [...patch.models]
      if (patch.budget_usd !== undefined) key.budgetMicros = patch.budget_usd === null ? null : usdToMicros(patch.budget_usd)
      if (patch.budget_period !== undefined) key.budgetPeriod = patch.budget_period
      if (patch.rpm !== undefined) key.rpm = patch.rpm
      if (patch.tpm !== undefined) key.tpm = patch.tpm
      if (patch.tags !== undefined) key.tags = distinct(patch.tags)
      if (patch.policies !== undefined) key.policies = distinct(patch.policies)
      return view(key, now)
    })

  const revokeKey: SpendStoreShape["revokeKey"] = (id, now) =>
    Effect.sync(() => {
      const key = keys.get(id)
      if (key !== undefined && key.revokedAt === null) {
        key.revokedAt = now
        key.updatedAt = now
      }
      return getKeyNow(id, now)
    })

  /** A bucket of `limit` per minute refilled since `at`, less `draw`: a full bucket when first used, or when it would overflow. */
  const drawn = (level: number | null, at: number | null, limit: number, now: number, draw: number) => {
    if (level === null || at === null) return limit - draw
    const refilled = level + ((now - at) * limit) / 60_000
    return refilled > limit ? limit - draw : refilled - draw
  }

  const keyOf = (hash: string): KeyRecord | undefined => {
    const id = keyByHash.get(hash)
    return id === undefined ? undefined : keys.get(id)
  }

  const needsCost = (key: KeyRecord) => key.budgetMicros !== null || key.tpm !== null

  const keyFacts: SpendStoreShape["keyFacts"] = (hash) =>
    Effect.sync((): KeyFacts | undefined => {
      const key = keyOf(hash)
      if (key === undefined) return undefined
      return {
        id: key.id, hash, prefix: key.prefix, tags: key.tags, policies: key.policies, models: key.models, needsCost: needsCost(key), budgetPeriod: key.budgetPeriod, revoked: key.revokedAt !== null
      }
    })

  /**
   * The SQL store's admission, in the same order: the key, its models, its rate buckets,
   * then the first option whose worst case fits what the period has left. Nothing changes
   * until every check passed.
   */
  const admitNow = (input: AdmitInput): Effect.Effect<Admission, AdmissionError | CostsNeeded> => {
    const { now } = input
    const key = keyOf(input.hash)
    if (key === undefined) return Effect.fail(unknownKey())
    if (key.revokedAt !== null) return Effect.fail(revokedKey(key.prefix))
    if (key.models !== null) {
      const allowed = key.models
      const denied = input.models.filter((m) => !allowed.includes(m))
      if (denied.length > 0) return Effect.fail(new ModelNotAllowed({ models: denied, allowed: [...allowed], keyId: key.id }))
    }
    if (needsCost(key) && input.options === undefined) return Effect.fail(new CostsNeeded())
    const options = needsCost(key) ? input.options : undefined
    const charge = options?.[0]?.tokens ?? 0
    const requests = key.rpm === null ? null : drawn(key.reqLevel, key.reqAt, key.rpm, now, 1)
    if (key.rpm !== null && requests !== null && requests < 0) return Effect.fail(requestsLimited(key.id, key.rpm, requests))
    const tokens = key.tpm === null ? null : drawn(key.tokLevel, key.tokAt, key.tpm, now, charge)
    if (key.tpm !== null && tokens !== null && tokens < 0) return Effect.fail(tokensLimited(key.id, key.tpm, tokens, charge))

    const period = periodOf(key.budgetPeriod, now)
    let option = 0
    let reservation: Admission["reservation"] = undefined
    if (key.budgetMicros !== null && options !== undefined) {
      const spentNow = spentOf(key.id, period)
      const reserved = reservedOf(key.id, period, now)
      const left = key.budgetMicros - spentNow - reserved
      option = options.findIndex((o) => o.micros <= left)
      const fits = options[option]
      if (fits === undefined) return Effect.fail(quotaError(key.id, key.budgetPeriod, key.budgetMicros, spentNow, reserved, options))
      const id = newId("rsv")
      reservations.set(id, { id, keyId: key.id, period, micros: fits.micros, expiresAt: now + input.ttlMs, owner: OWNER.id, createdAt: now })
      reservation = { id, period, micros: fits.micros }
    }
    key.lastUsedAt = now
    key.reqLevel = requests
    key.reqAt = now
    key.tokLevel = tokens
    key.tokAt = now
    return Effect.succeed({ keyId: key.id, period, option, reservation, tokensCharged: key.tpm === null ? 0 : charge })
  }

  const admit: SpendStoreShape["admit"] = (input) => Effect.suspend(() => admitNow(input))

  /** As the SQL batch: requests already in the ledger are skipped with their settlement, so a batch written twice settles once. */
  const writeBatch: SpendStoreShape["writeBatch"] = (all) =>
    Effect.sync(() => {
      const written = new Set<string>()
      for (const entry of all) {
        if (entry.request === undefined || requests.has(entry.request.id)) continue
        requests.set(entry.request.id, entry.request)
        written.add(entry.request.id)
      }
      const entries = all.filter((e) => e.request === undefined || written.has(e.request.id))
      for (const entry of entries) {
        for (const attempt of entry.attempts) {
          const list = attempts.get(attempt.request_id) ?? []
          list.push(attempt)
          attempts.set(attempt.request_id, list)
        }
      }
      for (const entry of entries) settleEntry(entry)
    })

  const settleEntry = ({ costMicros, settle }: LedgerEntry) => {
    if (settle === undefined) return
    const held = settle.reservation
    if (held !== undefined && !reservations.delete(held.id)) {
      // Already charged by reconcile (this process's lease lapsed while it lived on): the real cost replaces the worst case.
      const charged = requests.get(held.id)
      if (charged !== undefined && charged.status === 0) {
        requests.delete(held.id)
        addSpent(settle.keyId, settle.period, -charged.cost_micros)
      }
    }
    addSpent(settle.keyId, settle.period, costMicros)
    const key = keys.get(settle.keyId)
    if (settle.tokenRefund > 0 && key !== undefined && key.tpm !== null && key.tokLevel !== null) {
      key.tokLevel = Math.min(key.tpm, key.tokLevel + settle.tokenRefund)
    }
  }

  const sweepReservations: SpendStoreShape["sweepReservations"] = (now) =>
    Effect.sync(() => {
      for (const r of [...reservations.values()]) if (r.expiresAt <= now) reservations.delete(r.id)
    })

  /** Only while this process holds reservations, as in SQL. */
  const renewLease: SpendStoreShape["renewLease"] = (now) =>
    Effect.sync(() => {
      for (const r of reservations.values()) {
        if (r.owner === OWNER.id) return void owners.set(OWNER.id, now + LEASE_MS)
      }
    })

  const endLease: SpendStoreShape["endLease"] = Effect.sync(() => {
    if (owners.has(OWNER.id)) owners.set(OWNER.id, 0)
  })

  /** A reservation younger than a lease is left alone even without its owner's lease, as in SQL: its owner may not have renewed yet. */
  const orphaned = (r: Reservation, now: number) => r.createdAt <= now - LEASE_MS && !((owners.get(r.owner) ?? 0) > now)

  const reconcile: SpendStoreShape["reconcile"] = (now) =>
    Effect.sync(() => {
      const gone = [...reservations.values()].filter((r) => orphaned(r, now))
      for (const r of gone) {
        reservations.delete(r.id)
        addSpent(r.keyId, r.period, r.micros)
        if (!requests.has(r.id)) {
          requests.set(r.id, {
            id: r.id, key_id: r.keyId, endpoint: "unknown", model: null, consensus_id: null, status: 0, error: RECONCILED,
            stream: 0, cancelled: 0, attempts: 0, prompt_tokens: 0, completion_tokens: 0, cost_micros: r.micros,
            latency_ms: 0, started_at: r.createdAt, day: dayOf(r.createdAt)
          })
        }
      }
      if (gone.length > 0) {
        const holding = new Set([...reservations.values()].map((r) => r.owner))
        for (const [owner, until] of [...owners]) if (until <= now && !holding.has(owner)) owners.delete(owner)
      }
      return gone.length
    })

  /**
   * What the SQL report's union reads: every attempt of a request in the ledger (its key,
   * model, provider and day), and each request that called no upstream, under the model it
   * asked for and no provider; filtered as the SQL filters each side.
   */
  const reportRows = (query: ReportQuery): Array<ReportRow> => {
    const keep = (day: string, keyId: string | null) =>
      (query.from === undefined || day >= query.from) && (query.to === undefined || day <= query.to) &&
      (query.keyId === undefined || keyId === query.keyId)
    const rows: Array<ReportRow> = []
    for (const [requestId, list] of attempts) {
      const request = requests.get(requestId)
      if (request === undefined) continue
      for (const a of list) {
        if (!keep(a.day, a.key_id)) continue
        rows.push({
          requestId, dims: { key: a.key_id, model: a.model, provider: a.provider, day: a.day }, status: request.status, upstream: true,
          prompt_tokens: a.prompt_tokens, completion_tokens: a.completion_tokens, cost_micros: a.cost_micros
        })
      }
    }
    for (const r of requests.values()) {
      if (r.attempts !== 0 || !keep(r.day, r.key_id)) continue
      rows.push({
        requestId: r.id, dims: { key: r.key_id, model: r.model, provider: null, day: r.day }, status: r.status, upstream: false,
        prompt_tokens: 0, completion_tokens: 0, cost_micros: r.cost_micros
      })
    }
    return rows
  }

  /** Groups in the SQL store's order (by each dimension, nulls last), a request counted once per group and status. */
  const groupRows = (rows: ReadonlyArray<ReportRow>, groupBy: ReadonlyArray<ReportDimension>) => {
    const groups = new Map<string, { dims: Partial<Record<ReportDimension, string | null>>; rows: Array<ReportRow> }>()
    const sorted = [...rows].sort((a, b) => {
      for (const d of groupBy) {
        const order = compareNullable(a.dims[d], b.dims[d])
        if (order !== 0) return order
      }
      return 0
    })
    for (const row of sorted) {
      const dims: Partial<Record<ReportDimension, string | null>> = Object.fromEntries(groupBy.map((d) => [d, row.dims[d]]))
      const at = JSON.stringify(dims)
      const group = groups.get(at) ?? { dims, rows: [] }
      group.rows.push(row)
      groups.set(at, group)
    }
    return [...groups.values()].map(({ dims, rows }) => ({ dims, totals: totalsOf(rows) }))
  }

  const totalsOf = (rows: ReadonlyArray<ReportRow>): Totals => {
    const byStatus = new Map<string, { status: number; upstream: boolean; ids: Set<string> }>()
    for (const row of rows) {
      const at = `${row.status} ${row.upstream}`
      const entry = byStatus.get(at) ?? { status: row.status, upstream: row.upstream, ids: new Set<string>() }
      entry.ids.add(row.requestId)
      byStatus.set(at, entry)
    }
    const counts: StatusCounts = countStatuses([...byStatus.values()].map(({ ids, status, upstream }) => ({ status, upstream, requests: ids.size })))
    const sum = (pick: (row: ReportRow) => number) => rows.reduce((total, row) => total + pick(row), 0)
    const cost = sum((r) => r.cost_micros)
    return {
      ...counts,
      attempts: sum((r) => (r.upstream ? 1 : 0)),
      prompt_tokens: sum((r) => r.prompt_tokens),
      completion_tokens: sum((r) => r.completion_tokens),
      cost_micros: cost,
      cost_usd: formatUsd(cost)
    }
  }

  const report: SpendStoreShape["report"] = (query) =>
    Effect.sync((): SpendReportData => {
      const rows = reportRows(query)
      // Counted without groups: a request with attempts on two models is in two groups, but is one request.
      const total = rows.length === 0 ? emptyTotals() : totalsOf(rows)
      if (query.groupBy.length === 0) return { data: [total], total }
      const names = query.groupBy.includes("key") ? new Map([...keys.values()].map((k) => [k.id, k.name])) : undefined
      const data: Array<SpendReportRow> = groupRows(rows, query.groupBy).map((group) => ({
        ...group.dims,
        ...(names === undefined ? {} : { key_name: names.get(group.dims.key ?? "") ?? null }),
        ...group.totals
      }))
      return { data, total }
    })

  const matches = (r: RequestRow, query: RequestQuery) =>
    (query.keyId === undefined || r.key_id === query.keyId) &&
    // The name the client asked for, or a model that was called for it (a route's target, a consensus candidate).
    (query.model === undefined || r.model === query.model || (attempts.get(r.id) ?? []).some((a) => a.model === query.model)) &&
    (query.status === undefined || (r.status >= query.status.min && r.status <= query.status.max)) &&
    (query.from === undefined || r.started_at >= query.from) &&
    (query.to === undefined || r.started_at < query.to) &&
    (query.after === undefined || r.started_at < query.after.startedAt || (r.started_at === query.after.startedAt && r.id < query.after.id))

  const newestFirst = (a: RequestRow, b: RequestRow) => b.started_at - a.started_at || compareNullable(b.id, a.id)

  const listRequests: SpendStoreShape["listRequests"] = (query) =>
    Effect.sync((): RequestPage => {
      const rows = [...requests.values()].filter((r) => matches(r, query)).sort(newestFirst)
      const page = rows.slice(0, query.limit).map(requestView)
      const last = page[page.length - 1]
      const more = rows.length > query.limit
      return { object: "list", data: page, has_more: more, next_after: more && last !== undefined ? last.id : null }
    })

  const requestPosition: SpendStoreShape["requestPosition"] = (id) =>
    Effect.sync(() => {
      const row = requests.get(id)
      return row === undefined ? undefined : { startedAt: row.started_at, id }
    })

  const getRequest: SpendStoreShape["getRequest"] = (id) =>
    Effect.sync((): RequestDetail | undefined => {
      const row = requests.get(id)
      if (row === undefined) return undefined
      const list = [...(attempts.get(id) ?? [])].sort((a, b) => a.seq - b.seq)
      return { ...requestView(row), upstream_attempts: list.map(attemptView) }
    })

  return {
    createKey, listKeys, getKey, updateKey, revokeKey, admit, keyFacts, writeBatch, sweepReservations, renewLease, endLease, reconcile,
    report, listRequests, requestPosition, getRequest
  }
}

/** A fresh, empty store for each layer built: what `SpendStore` is in tests and database-less runs. */
export const MemorySpendStore: Layer.Layer<SpendStore> = Layer.sync(SpendStore, () => makeMemorySpendStore())
