/**
 * Every read and write of spend state, as SQL that SQLite and PostgreSQL both run.
 *
 * Budgets are exact because admission is one transaction that locks the key's row (an
 * UPDATE, which PostgreSQL locks per row and SQLite's IMMEDIATE transaction locks for
 * the file), reads what the period has spent and what calls in flight have reserved,
 * and reserves the new call's worst case only if all of it fits. Reservations carry an
 * expiry, so those of a crashed process stop counting on their own.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { type AdmissionError, InsufficientQuota, ModelNotAllowed, RateLimited, SpendStoreError, Unauthorized } from "./errors"
import {
  type BudgetPeriod,
  type CreateKey,
  displayPrefix,
  hashKey,
  type KeyView,
  newKeyId,
  newKeySecret,
  periodOf,
  type UpdateKey
} from "./keys"
import { formatUsd, usdToMicros } from "./price"
import { take } from "./rate-limit"

/** One way a request could run (a consensus fan-out offers several sizes), and its worst case. */
export interface CostOption {
  readonly micros: number
  /** Prompt and output tokens, for the token rate limit. */
  readonly tokens: number
}

export interface AdmitInput {
  readonly secret: string
  /** Every model the request may call, as the client names them. */
  readonly models: ReadonlyArray<string>
  /** Most preferred first. Called only for keys with a budget or a token limit (it tokenizes the prompt). */
  readonly options: () => ReadonlyArray<CostOption>
  readonly ttlMs: number
  readonly now: number
}

export interface Admission {
  readonly keyId: string
  /** The budget period the request is charged to ("2026-11-24" or "2026-11"). */
  readonly period: string
  /** The option admitted (an index into `options`, 0 when no option was needed). */
  readonly option: number
  /** Set when the key has a budget. */
  readonly reservation: { readonly id: string; readonly period: string; readonly micros: number } | undefined
  /** Tokens drawn from the key's token bucket, refunded down to what was used. */
  readonly tokensCharged: number
}

export type RequestRow = {
  readonly id: string
  readonly key_id: string | null
  readonly endpoint: string
  readonly model: string | null
  readonly consensus_id: string | null
  readonly status: number
  readonly error: string | null
  readonly stream: number
  readonly cancelled: number
  readonly attempts: number
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly cost_micros: number
  readonly latency_ms: number
  readonly started_at: number
  readonly day: string
}

export type AttemptRow = {
  readonly request_id: string
  readonly seq: number
  readonly key_id: string | null
  readonly consensus_id: string | null
  readonly model: string
  readonly provider: string
  readonly upstream_model: string
  readonly status: "ok" | "error" | "cancelled"
  readonly error_kind: string | null
  readonly http_status: number | null
  readonly prompt_tokens: number
  readonly cached_tokens: number
  readonly completion_tokens: number
  readonly estimated: number
  readonly cost_micros: number
  readonly latency_ms: number
  readonly started_at: number
  readonly day: string
}

/** A finished request: its ledger rows and, for a key, what to settle. */
export interface LedgerEntry {
  readonly request: RequestRow
  readonly attempts: ReadonlyArray<AttemptRow>
  readonly settle: {
    readonly keyId: string
    readonly period: string
    readonly reservation: Admission["reservation"]
    readonly tokenRefund: number
  } | undefined
}

export const REPORT_DIMENSIONS = ["key", "model", "provider", "day"] as const
export type ReportDimension = typeof REPORT_DIMENSIONS[number]

export interface ReportQuery {
  readonly groupBy: ReadonlyArray<ReportDimension>
  readonly from: string | undefined
  readonly to: string | undefined
  readonly keyId: string | undefined
}

/** PostgreSQL returns BIGINT as a string; SQLite as a number. */
const num = (value: unknown): number => (typeof value === "number" ? value : Number(value))
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : num(value))

interface KeyRow {
  readonly id: string
  readonly name: string
  readonly prefix: string
  readonly models: string | null
  readonly budget_micros: unknown
  readonly budget_period: BudgetPeriod
  readonly rpm: unknown
  readonly tpm: unknown
  readonly req_level: unknown
  readonly req_at: unknown
  readonly tok_level: unknown
  readonly tok_at: unknown
  readonly created_at: unknown
  readonly updated_at: unknown
  readonly revoked_at: unknown
  readonly last_used_at: unknown
}

const storeError = (error: SqlError.SqlError) =>
  new SpendStoreError({ message: `spend database: ${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ""}` })

const chunks = <A>(rows: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size))
  return out
}

export class SpendStore extends Effect.Service<SpendStore>()("quorum/SpendStore", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    /** A write, atomic; SQL failures become SpendStoreError. */
    const write = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, SqlError.SqlError> | SpendStoreError> =>
      sql.withTransaction(effect).pipe(
        Effect.catchIf((e): e is SqlError.SqlError => (e as { _tag?: string })._tag === "SqlError", (e) => Effect.fail(storeError(e)))
      ) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | SpendStoreError>

    const read = <A>(effect: Effect.Effect<A, SqlError.SqlError>): Effect.Effect<A, SpendStoreError> =>
      Effect.mapError(effect, storeError)

    const spentAndReserved = (keyId: string, period: string, now: number) =>
      Effect.gen(function*() {
        const spent = yield* sql<{ spent_micros: unknown }>`SELECT spent_micros FROM quorum_key_spend WHERE key_id = ${keyId} AND period = ${period}`
        const reserved = yield* sql<{ total: unknown }>`SELECT COALESCE(SUM(amount_micros), 0) AS total FROM quorum_reservations
          WHERE key_id = ${keyId} AND period = ${period} AND expires_at > ${now}`
        return { spent: spent.length === 0 ? 0 : num(spent[0]!.spent_micros), reserved: num(reserved[0]!.total) }
      })

    const view = (row: KeyRow, now: number) =>
      Effect.gen(function*() {
        const period = periodOf(row.budget_period, now)
        const { reserved, spent } = yield* spentAndReserved(row.id, period, now)
        const budget = numOrNull(row.budget_micros)
        return {
          id: row.id,
          object: "key" as const,
          name: row.name,
          prefix: row.prefix,
          models: row.models === null ? null : (JSON.parse(row.models) as Array<string>),
          budget_usd: budget === null ? null : budget / 1e6,
          budget_period: row.budget_period,
          rpm: numOrNull(row.rpm),
          tpm: numOrNull(row.tpm),
          created_at: num(row.created_at),
          updated_at: num(row.updated_at),
          revoked_at: numOrNull(row.revoked_at),
          last_used_at: numOrNull(row.last_used_at),
          spend: { period, spent_usd: spent / 1e6, reserved_usd: reserved / 1e6 }
        } satisfies KeyView
      })

    const keyById = (id: string) => sql<KeyRow>`SELECT * FROM quorum_keys WHERE id = ${id}`

    const createKey = (input: CreateKey, now: number) =>
      Effect.gen(function*() {
        const secret = newKeySecret()
        const id = newKeyId()
        yield* write(sql`INSERT INTO quorum_keys ${
          sql.insert({
            id,
            name: input.name,
            hash: hashKey(secret),
            prefix: displayPrefix(secret),
            models: input.models == null ? null : JSON.stringify(input.models),
            budget_micros: input.budget_usd == null ? null : usdToMicros(input.budget_usd),
            budget_period: input.budget_period ?? "month",
            rpm: input.rpm ?? null,
            tpm: input.tpm ?? null,
            created_at: now,
            updated_at: now
          })
        }`)
        const rows = yield* read(keyById(id))
        return { secret, key: yield* read(view(rows[0]!, now)) }
      })

    const listKeys = (now: number) =>
      read(Effect.flatMap(sql<KeyRow>`SELECT * FROM quorum_keys ORDER BY created_at, id`, (rows) => Effect.forEach(rows, (row) => view(row, now))))

    const getKey = (id: string, now: number) =>
      read(Effect.flatMap(keyById(id), (rows) => (rows.length === 0 ? Effect.succeed(undefined) : view(rows[0]!, now))))

    const updateKey = (id: string, patch: UpdateKey, now: number) =>
      Effect.gen(function*() {
        const set: Record<string, unknown> = { updated_at: now }
        if (patch.name !== undefined) set.name = patch.name
        if (patch.models !== undefined) set.models = patch.models === null ? null : JSON.stringify(patch.models)
        if (patch.budget_usd !== undefined) set.budget_micros = patch.budget_usd === null ? null : usdToMicros(patch.budget_usd)
        if (patch.budget_period !== undefined) set.budget_period = patch.budget_period
        if (patch.rpm !== undefined) set.rpm = patch.rpm
        if (patch.tpm !== undefined) set.tpm = patch.tpm
        yield* write(sql`UPDATE quorum_keys SET ${sql.update(set)} WHERE id = ${id}`)
        return yield* getKey(id, now)
      })

    const revokeKey = (id: string, now: number) =>
      Effect.gen(function*() {
        yield* write(sql`UPDATE quorum_keys SET revoked_at = ${now}, updated_at = ${now} WHERE id = ${id} AND revoked_at IS NULL`)
        return yield* getKey(id, now)
      })

    const admit = (input: AdmitInput): Effect.Effect<Admission, AdmissionError> =>
      Effect.gen(function*() {
        const { now } = input
        const hash = hashKey(input.secret)
        const found = yield* read(sql<KeyRow>`SELECT * FROM quorum_keys WHERE hash = ${hash}`)
        const key = found[0]
        if (key === undefined) return yield* new Unauthorized({ message: "Incorrect API key provided. Create keys with the admin API (POST /admin/keys)." })
        if (key.revoked_at !== null) return yield* new Unauthorized({ message: `API key ${key.prefix}… was revoked.` })
        if (key.models !== null) {
          const allowed = JSON.parse(key.models) as Array<string>
          const denied = input.models.filter((m) => !allowed.includes(m))
          if (denied.length > 0) return yield* new ModelNotAllowed({ models: denied, allowed })
        }
        const budgeted = key.budget_micros !== null
        const options = budgeted || key.tpm !== null ? input.options() : [{ micros: 0, tokens: 0 }]

        return yield* write(Effect.gen(function*() {
          // The UPDATE locks the key's row until commit and returns its current limits and buckets.
          const locked = yield* sql<KeyRow>`UPDATE quorum_keys SET last_used_at = ${now}
            WHERE id = ${key.id} AND revoked_at IS NULL RETURNING *`
          const row = locked[0]
          if (row === undefined) return yield* new Unauthorized({ message: `API key ${key.prefix}… was revoked.` })
          const rpm = numOrNull(row.rpm)
          const tpm = numOrNull(row.tpm)
          const budget = numOrNull(row.budget_micros)

          let requests = undefined
          if (rpm !== null) {
            const level = numOrNull(row.req_level)
            const taken = take(level === null ? undefined : { level, at: num(row.req_at) }, rpm, 1, now)
            if (!taken.ok) {
              return yield* new RateLimited({ limit: "requests", retryAfterMs: taken.retryAfterMs, message: `Rate limit reached: ${rpm} requests per minute for this key.` })
            }
            requests = taken.bucket
          }

          let option = 0
          let reservation: Admission["reservation"] = undefined
          const period = periodOf(row.budget_period, now)
          if (budget !== null) {
            const { reserved, spent } = yield* spentAndReserved(row.id, period, now)
            const left = budget - spent - reserved
            const fits = options.findIndex((o) => o.micros <= left)
            if (fits === -1) {
              const cheapest = Math.min(...options.map((o) => o.micros))
              return yield* new InsufficientQuota({
                message: `You exceeded your current quota: this key's ${row.budget_period === "day" ? "daily" : "monthly"} budget of $${formatUsd(budget)} ` +
                  `has $${formatUsd(Math.max(0, left))} left (spent $${formatUsd(spent)}, reserved by calls in flight $${formatUsd(reserved)}), ` +
                  `and this request may cost up to $${formatUsd(cheapest)}. Lower max_tokens to reserve less.`
              })
            }
            option = fits
            reservation = { id: "rsv_" + randomBytes(9).toString("base64url"), period, micros: options[fits]!.micros }
            yield* sql`INSERT INTO quorum_reservations ${
              sql.insert({ id: reservation.id, key_id: row.id, period, amount_micros: reservation.micros, expires_at: now + input.ttlMs })
            }`
          }

          let tokensCharged = 0
          let tokens = undefined
          if (tpm !== null) {
            tokensCharged = options[option]!.tokens
            const level = numOrNull(row.tok_level)
            const taken = take(level === null ? undefined : { level, at: num(row.tok_at) }, tpm, tokensCharged, now)
            if (!taken.ok) {
              return yield* new RateLimited({
                limit: "tokens",
                retryAfterMs: taken.retryAfterMs,
                message: tokensCharged > tpm
                  ? `Request too large: it may use ${tokensCharged} tokens (prompt and max_tokens), above this key's limit of ${tpm} tokens per minute.`
                  : `Rate limit reached: ${tpm} tokens per minute for this key (this request may use ${tokensCharged}).`
              })
            }
            tokens = taken.bucket
          }
          if (requests !== undefined || tokens !== undefined) {
            yield* sql`UPDATE quorum_keys SET ${
              sql.update({
                ...(requests === undefined ? {} : { req_level: requests.level, req_at: requests.at }),
                ...(tokens === undefined ? {} : { tok_level: tokens.level, tok_at: tokens.at })
              })
            } WHERE id = ${row.id}`
          }
          return { keyId: row.id, period, option, reservation, tokensCharged }
        }))
      })

    /** One transaction per batch: a batch is in the ledger, and settled, entirely or not at all. */
    const writeBatch = (entries: ReadonlyArray<LedgerEntry>) =>
      write(Effect.gen(function*() {
        for (const rows of chunks(entries.map((e) => e.request), 200)) yield* sql`INSERT INTO quorum_requests ${sql.insert(rows)}`
        for (const rows of chunks(entries.flatMap((e) => e.attempts), 200)) yield* sql`INSERT INTO quorum_attempts ${sql.insert(rows)}`
        const spend = new Map<string, { keyId: string; period: string; micros: number }>()
        for (const { request, settle } of entries) {
          if (settle === undefined) continue
          if (settle.reservation !== undefined) yield* sql`DELETE FROM quorum_reservations WHERE id = ${settle.reservation.id}`
          const at = `${settle.keyId} ${settle.period}`
          const sum = spend.get(at) ?? { keyId: settle.keyId, period: settle.period, micros: 0 }
          spend.set(at, { ...sum, micros: sum.micros + request.cost_micros })
          if (settle.tokenRefund > 0) {
            yield* sql`UPDATE quorum_keys SET tok_level = CASE WHEN tok_level + ${settle.tokenRefund} > tpm THEN tpm ELSE tok_level + ${settle.tokenRefund} END
              WHERE id = ${settle.keyId} AND tpm IS NOT NULL AND tok_level IS NOT NULL`
          }
        }
        for (const { keyId, micros, period } of spend.values()) {
          yield* sql`INSERT INTO quorum_key_spend (key_id, period, spent_micros) VALUES (${keyId}, ${period}, ${micros})
            ON CONFLICT (key_id, period) DO UPDATE SET spent_micros = quorum_key_spend.spent_micros + ${micros}`
        }
      }))

    /** Expired reservations no longer count; this only tidies the table. */
    const sweepReservations = (now: number) => write(sql`DELETE FROM quorum_reservations WHERE expires_at <= ${now}`)

    const report = (query: ReportQuery) =>
      read(Effect.gen(function*() {
        const columns = query.groupBy.map((d) => (d === "key" ? "key_id" : d))
        const select = columns.length === 0 ? sql.literal("") : sql.literal(columns.join(", ") + ",")
        const conditions = [
          ...(query.from === undefined ? [] : [sql`day >= ${query.from}`]),
          ...(query.to === undefined ? [] : [sql`day <= ${query.to}`]),
          ...(query.keyId === undefined ? [] : [sql`key_id = ${query.keyId}`])
        ]
        const rows = yield* sql<Record<string, unknown>>`SELECT ${select}
            COUNT(DISTINCT request_id) AS requests, COUNT(*) AS attempts,
            COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
            COALESCE(SUM(cost_micros), 0) AS cost_micros
          FROM quorum_attempts ${conditions.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(conditions)}`}
          ${columns.length === 0 ? sql.literal("") : sql.literal(`GROUP BY ${columns.join(", ")} ORDER BY ${columns.join(", ")}`)}`
        return rows.map((row) => ({
          ...Object.fromEntries(query.groupBy.map((d, i) => [d, row[columns[i]!] ?? null])),
          requests: num(row.requests),
          attempts: num(row.attempts),
          prompt_tokens: num(row.prompt_tokens),
          completion_tokens: num(row.completion_tokens),
          cost_micros: num(row.cost_micros),
          cost_usd: num(row.cost_micros) / 1e6
        }))
      }))

    return { createKey, listKeys, getKey, updateKey, revokeKey, admit, writeBatch, sweepReservations, report, sql }
  })
}) {}
