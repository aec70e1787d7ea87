/**
 * Every read and write of spend state, as SQL that SQLite and PostgreSQL both run.
 *
 * Budgets are exact because admission locks the key's row (on PostgreSQL inside the
 * server-side function quorum_admit, one round trip for all of a key's admissions waiting
 * together; on SQLite in an IMMEDIATE transaction, which locks the file, one for all the
 * admissions asked for in a turn of the event loop), reads what the
 * period has spent and what calls in flight have reserved (a running total per key and
 * period, kept by admission, settlement and the sweep), and reserves the new call's
 * worst case only if all of it fits. Reservations carry an expiry, so those of a crashed
 * process stop counting on their own.
 */
import { SqlClient, SqlError, type Statement } from "@effect/sql"
import { Cause, Duration, Effect, Exit, FiberId, Layer } from "effect"
import { coalescing, perTurn, type TurnCall } from "../coalesce"
import { changedInTransaction, runInTransaction } from "../db/sqlite"
import { LEASE_MS, OWNER, RECONCILED } from "../owner"
import { type AdmissionError, CostsNeeded, ModelNotAllowed, SpendStoreError } from "../errors"
import {
  type BudgetPeriod,
  type CreateKey,
  dayOf,
  distinct,
  type KeyFacts,
  type KeyView,
  newKeyOf,
  periodOf,
  type UpdateKey
} from "../keys"
import { formatUsd, usdToMicros } from "../../domain/money"
import { newId } from "../../domain/ids"
import { countStatuses, type RequestDetail, type SpendReportRow, type RequestPage, type RequestQuery } from "../reports"
import { quotaError, requestsLimited, revokedKey, tokensLimited, unknownKey } from "./refusals"
import { SpendStore, type SpendStoreShape } from "./store"
import type { Admission, AdmitInput, AttemptRow, CostOption, LedgerEntry, ReportDimension, ReportQuery, RequestRow } from "./types"
import { attemptView, requestView } from "./views"

/** PostgreSQL returns BIGINT as a string; SQLite as a number. */
const num = (value: unknown): number => (typeof value === "number" ? value : Number(value))
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : num(value))
/** A list of names as a key's row keeps it: JSON text, null for none. */
const names = (text: string | null): ReadonlyArray<string> => (text === null ? [] : (JSON.parse(text) as ReadonlyArray<string>))
const namesText = (list: ReadonlyArray<string>): string | null => (list.length === 0 ? null : JSON.stringify(distinct(list)))

interface KeyRow {
  readonly id: string
  readonly name: string
  readonly prefix: string
  readonly models: string | null
  readonly budget_micros: unknown
  readonly budget_period: BudgetPeriod
  readonly rpm: unknown
  readonly tpm: unknown
  /** JSON arrays of strings; null for none (keys made before tags and policies). */
  readonly tags: string | null
  readonly policies: string | null
  readonly req_level: unknown
  readonly req_at: unknown
  readonly tok_level: unknown
  readonly tok_at: unknown
  readonly created_at: unknown
  readonly updated_at: unknown
  readonly revoked_at: unknown
  readonly last_used_at: unknown
}

/** What an admission reads of its key (each column a row returns costs the binding time). */
const LOCKED_COLUMNS = "id, prefix, models, budget_micros, budget_period, rpm, tpm, req_level, tok_level, revoked_at"
type LockedKey = Pick<KeyRow, "id" | "prefix" | "models" | "budget_micros" | "budget_period" | "rpm" | "tpm" | "req_level" | "tok_level" | "revoked_at">

/** What settlement changes in a key's period: spend added, reservations released. */
interface Totals {
  readonly keyId: string
  readonly period: string
  spent: number
  released: number
}

interface ReleasedRow {
  readonly key_id: string
  readonly period: string
  readonly amount_micros: unknown
}

const addTo = (totals: Map<string, Totals>, keyId: string, period: string, spent: number, released: number) => {
  const at = `${keyId} ${period}`
  const sum = totals.get(at) ?? { keyId, period, spent: 0, released: 0 }
  sum.spent += spent
  sum.released += released
  totals.set(at, sum)
}

const sortedTotals = (totals: Map<string, Totals>) =>
  [...totals.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, sum]) => sum)

/** Database errors can quote a connection URL, and with it a password: never pass one on. */
const withoutUrls = (text: string): string => text.replace(/postgres(ql)?:\/\/[^\s"']+/gi, "postgres://[redacted]")

const storeError = (error: SqlError.SqlError) =>
  new SpendStoreError({ message: withoutUrls(`spend database: ${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ""}`) })

/** The ledger's column a report dimension groups on. */
const columnOf = (dimension: ReportDimension): string => (dimension === "key" ? "key_id" : dimension)

/**
 * Rows in groups whose sizes are powers of two up to `max`, itself one (200 rows, max
 * 128: 128, 64, 8), so that a multi-row statement has few shapes. Each connection
 * prepares, and keeps, one program per statement text: with a group for any size a batch
 * could have, a SQLite connection kept hundreds of them, up to thousands of steps each
 * (~30 MB of a worker's memory after a burst), and prepared most batches anew.
 */
export const chunks = <A>(rows: ReadonlyArray<A>, max: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let at = 0; at < rows.length;) {
    let size = max
    while (size > rows.length - at) size >>= 1
    out.push(rows.slice(at, at + size))
    at += size
  }
  return out
}

const WRITE_TIMEOUT = Duration.seconds(10)

/** The store on the SqlClient it is given (database.ts picks SQLite or PostgreSQL and runs the migrations). */
export const SqlSpendStore: Layer.Layer<SpendStore, never, SqlClient.SqlClient> = Layer.effect(
  SpendStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // For the statements of write transactions that run on every request: see runInTransaction.
    const tx = runInTransaction(sql)
    const changed = changedInTransaction(sql)

    /**
     * A write, atomic; SQL failures become SpendStoreError, those of COMMIT and ROLLBACK
     * too (@effect/sql makes them defects: a connection lost mid-transaction is one).
     */
    const write = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, SqlError.SqlError> | SpendStoreError> =>
      sql.withTransaction(effect).pipe(
        Effect.catchIf((e): e is SqlError.SqlError => (e as { _tag?: string })._tag === "SqlError", (e) => Effect.fail(storeError(e))),
        Effect.catchAllDefect((defect) => (defect instanceof SqlError.SqlError ? Effect.fail(storeError(defect)) : Effect.die(defect)))
      ) as Effect.Effect<A, Exclude<E, SqlError.SqlError> | SpendStoreError>

    const read = <A>(effect: Effect.Effect<A, SqlError.SqlError>): Effect.Effect<A, SpendStoreError> =>
      Effect.mapError(effect, storeError)

    /** What a key's period has spent, and what its calls in flight hold (expired reservations do not count). */
    const spentOf = (keyId: string, period: string) =>
      sql`(SELECT COALESCE(SUM(spent_micros), 0) FROM quorum_key_spend WHERE key_id = ${keyId} AND period = ${period})`
    const reservedOf = (keyId: string, period: string, now: number) =>
      sql`(SELECT COALESCE(SUM(amount_micros), 0) FROM quorum_reservations WHERE key_id = ${keyId} AND period = ${period} AND expires_at > ${now})`

    /**
     * Both, from the period's running totals row: one row read, where the sum visits every
     * reservation in flight. It counts expired reservations until the sweep takes them off,
     * so what fits by it fits by the sum too; the sum decides only when it does not.
     */
    const heldOf = (keyId: string, period: string) =>
      sql`(SELECT COALESCE(SUM(spent_micros + reserved_micros), 0) FROM quorum_key_spend WHERE key_id = ${keyId} AND period = ${period})`

    /** Both, in one round trip. */
    const spentAndReserved = (keyId: string, period: string, now: number) =>
      Effect.map(
        sql<{ spent: unknown; reserved: unknown }>`SELECT ${spentOf(keyId, period)} AS spent, ${reservedOf(keyId, period, now)} AS reserved`,
        // An aggregate without GROUP BY answers one row; none would mean nothing spent or held.
        (rows) => ({ spent: num(rows[0]?.spent ?? 0), reserved: num(rows[0]?.reserved ?? 0) })
      )

    const view = Effect.fnUntraced(function*(row: KeyRow, now: number) {
      const period = periodOf(row.budget_period, now)
      const { reserved, spent } = yield* spentAndReserved(row.id, period, now)
      const budget = numOrNull(row.budget_micros)
      return {
        id: row.id,
        object: "key" as const,
        name: row.name,
        prefix: row.prefix,
        models: row.models === null ? null : [...names(row.models)],
        budget_usd: budget === null ? null : budget / 1e6,
        budget_period: row.budget_period,
        rpm: numOrNull(row.rpm),
        tpm: numOrNull(row.tpm),
        tags: [...names(row.tags)],
        policies: [...names(row.policies)],
        created_at: num(row.created_at),
        updated_at: num(row.updated_at),
        revoked_at: numOrNull(row.revoked_at),
        last_used_at: numOrNull(row.last_used_at),
        spend: { period, spent_usd: formatUsd(spent), reserved_usd: formatUsd(reserved) }
      } satisfies KeyView
    })

    const keyById = (id: string) => sql<KeyRow>`SELECT * FROM quorum_keys WHERE id = ${id}`

    const createKey = Effect.fnUntraced(function*(input: CreateKey, now: number) {
      const { secret, id, ...made } = newKeyOf(input)
      yield* write(sql`INSERT INTO quorum_keys ${
        sql.insert({
          id,
          name: made.name,
          hash: made.hash,
          prefix: made.prefix,
          models: made.models === null ? null : JSON.stringify(made.models),
          budget_micros: made.budgetMicros,
          budget_period: made.budgetPeriod,
          rpm: made.rpm,
          tpm: made.tpm,
          tags: namesText(made.tags),
          policies: namesText(made.policies),
          created_at: now,
          updated_at: now
        })
      }`)
      const key = yield* getKey(id, now)
      if (key === undefined) return yield* new SpendStoreError({ message: "a key just created could not be read back" })
      return { secret, key }
    })

    const listKeys = (now: number) =>
      read(Effect.flatMap(sql<KeyRow>`SELECT * FROM quorum_keys ORDER BY created_at, id`, (rows) => Effect.forEach(rows, (row) => view(row, now))))

    const getKey = (id: string, now: number) =>
      read(Effect.flatMap(keyById(id), ([row]) => (row === undefined ? Effect.succeed(undefined) : view(row, now))))

    const updateKey = Effect.fnUntraced(function*(id: string, patch: UpdateKey, now: number) {
      const set: Record<string, unknown> = { updated_at: now }
      if (patch.name !== undefined) set.name = patch.name
      if (patch.models !== undefined) set.models = patch.models === null ? null : JSON.stringify(patch.models)
      if (patch.budget_usd !== undefined) set.budget_micros = patch.budget_usd === null ? null : usdToMicros(patch.budget_usd)
      if (patch.budget_period !== undefined) set.budget_period = patch.budget_period
      if (patch.rpm !== undefined) set.rpm = patch.rpm
      if (patch.tpm !== undefined) set.tpm = patch.tpm
      if (patch.tags !== undefined) set.tags = namesText(patch.tags)
      if (patch.policies !== undefined) set.policies = namesText(patch.policies)
      yield* write(sql`UPDATE quorum_keys SET ${sql.update(set)} WHERE id = ${id}`)
      return yield* getKey(id, now)
    })

    const revokeKey = Effect.fnUntraced(function*(id: string, now: number) {
      yield* write(sql`UPDATE quorum_keys SET revoked_at = ${now}, updated_at = ${now} WHERE id = ${id} AND revoked_at IS NULL`)
      return yield* getKey(id, now)
    })

    /** What quorum_admit (migration 0004) answers: an outcome, and what the errors and the admission need. */
    interface AdmitAnswer {
      readonly outcome: "ok" | "unknown" | "revoked" | "model_not_allowed" | "needs_cost" | "rate_requests" | "rate_tokens" | "quota"
      readonly key_id?: string
      readonly prefix?: string
      readonly models?: Array<string>
      readonly period?: string
      readonly option?: number
      readonly reserved?: number | null
      readonly budget?: number | null
      readonly budget_period?: BudgetPeriod
      readonly spent?: number
      readonly rpm?: number
      readonly tpm?: number | null
      readonly level?: number
    }

    /** One admission's arguments to quorum_admit. */
    interface AdmitCall {
      readonly hash: string
      readonly now: number
      readonly models: ReadonlyArray<string>
      readonly charge: number
      readonly micros: ReadonlyArray<number> | null
      readonly day: string
      readonly month: string
      readonly ttl: number
      readonly reservation: string
      readonly owner: string
    }

    const firstRow = <A>(rows: ReadonlyArray<A>, what: string): Effect.Effect<A, SpendStoreError> => {
      const row = rows[0]
      return row === undefined ? Effect.fail(new SpendStoreError({ message: `${what} answered no row` })) : Effect.succeed(row)
    }

    /** One admission alone, the common case below saturation: its arguments as parameters, nothing to unpack. */
    const admitOne = (c: AdmitCall) =>
      read(sql<{ r: AdmitAnswer }>`SELECT quorum_admit(${c.hash}, ${c.now}, ${JSON.stringify(c.models)}::jsonb, ${c.charge},
        ${c.micros === null ? null : JSON.stringify(c.micros)}::jsonb, ${c.day}, ${c.month}, ${c.ttl}, ${c.reservation}, ${c.owner}) AS r`).pipe(
        Effect.flatMap((rows) => firstRow(rows, "quorum_admit")),
        Effect.map((row) => row.r)
      )

    /**
     * The admissions of one key waiting together, in one statement: one transaction, so
     * quorum_admit locks the key's row once for all of them, and each call, a statement of
     * its own inside, sees the reservations of the calls before it (exact as one at a time).
     */
    const admitGrouped = coalescing((calls: ReadonlyArray<AdmitCall>) => {
      const [only, ...more] = calls
      return only !== undefined && more.length === 0 ? Effect.map(admitOne(only), (answer) => [answer]) : read(sql<{ r: AdmitAnswer }>`SELECT quorum_admit(c.v->>'hash', (c.v->>'now')::BIGINT, c.v->'models', (c.v->>'charge')::DOUBLE PRECISION,
          NULLIF(c.v->'micros', 'null'::jsonb), c.v->>'day', c.v->>'month', (c.v->>'ttl')::BIGINT, c.v->>'reservation', c.v->>'owner') AS r
        FROM jsonb_array_elements(${JSON.stringify(calls)}::jsonb) WITH ORDINALITY AS c(v, n) ORDER BY c.n`).pipe(
        Effect.map((rows) => rows.map((row) => row.r))
      )
    })

    // Time-ordered, as request ids are: each admission's insert lands on the index's last page.
    const newReservationId = () => newId("rsv")

    /**
     * Admission on PostgreSQL: one call of quorum_admit, one round trip, the same checks
     * and the same exactness as the transaction below (see the migration). A key that
     * needs cost options the caller did not give is answered `needs_cost`, with nothing
     * drawn or reserved.
     */
    const admitByFunction: (input: AdmitInput) => Effect.Effect<Admission, AdmissionError | CostsNeeded> = Effect.fnUntraced(function*(input: AdmitInput) {
      const { now, options } = input
      const hash = input.hash
      const reservationId = newReservationId()
      const answer = yield* admitGrouped(hash, {
        hash, now, models: input.models, charge: options?.[0]?.tokens ?? 0, micros: options === undefined ? null : options.map((o) => o.micros),
        day: periodOf("day", now), month: periodOf("month", now), ttl: input.ttlMs, reservation: reservationId, owner: OWNER.id
      })
      return yield* admissionOf(answer, input, reservationId)
    })

    /** quorum_admit's answer as the admission, or the refusal it stands for. */
    const admissionOf = (answer: AdmitAnswer, input: AdmitInput, reservationId: string): Effect.Effect<Admission, AdmissionError | CostsNeeded> => {
      const keyId = answer.key_id ?? ""
      const charge = input.options?.[0]?.tokens ?? 0
      switch (answer.outcome) {
        case "unknown":
          return Effect.fail(unknownKey())
        case "needs_cost":
          return Effect.fail(new CostsNeeded())
        case "revoked":
          return Effect.fail(revokedKey(answer.prefix ?? ""))
        case "model_not_allowed": {
          const allowed = answer.models ?? []
          return Effect.fail(new ModelNotAllowed({ models: input.models.filter((m) => !allowed.includes(m)), allowed, keyId }))
        }
        case "rate_requests":
          return Effect.fail(requestsLimited(keyId, num(answer.rpm), num(answer.level)))
        case "rate_tokens":
          return Effect.fail(tokensLimited(keyId, num(answer.tpm), num(answer.level), charge))
        case "quota":
          return Effect.fail(quotaError(keyId, answer.budget_period ?? "month", num(answer.budget), num(answer.spent), num(answer.reserved), input.options ?? []))
        case "ok": {
          const reserved = numOrNull(answer.reserved)
          const period = answer.period
          if (period === undefined) return Effect.fail(new SpendStoreError({ message: "quorum_admit admitted without naming the period" }))
          return Effect.succeed({
            keyId,
            period,
            option: num(answer.option),
            reservation: reserved === null ? undefined : { id: reservationId, period, micros: reserved },
            tokensCharged: answer.tpm === null ? 0 : charge
          })
        }
      }
    }

    /**
     * Finds the key by its hash and locks its row, refilling and drawing its rate buckets
     * in SQL (every right-hand side reads the row as it was). A bucket below zero means the
     * limit is reached: the caller refuses, and the transaction rolls the draw back.
     */
    const lockKey = (hash: string, now: number, charge: number) =>
      Effect.map(
        tx(sql<LockedKey>`UPDATE quorum_keys SET
            last_used_at = ${now},
            req_level = CASE WHEN rpm IS NULL THEN NULL
              WHEN req_level IS NULL OR req_level + (${now} - req_at) * rpm / 60000.0 > rpm THEN rpm - 1
              ELSE req_level + (${now} - req_at) * rpm / 60000.0 - 1 END,
            req_at = ${now},
            tok_level = CASE WHEN tpm IS NULL THEN NULL
              WHEN tok_level IS NULL OR tok_level + (${now} - tok_at) * tpm / 60000.0 > tpm THEN tpm - ${charge}
              ELSE tok_level + (${now} - tok_at) * tpm / 60000.0 - ${charge} END,
            tok_at = ${now}
          WHERE hash = ${hash} RETURNING ${sql.literal(LOCKED_COLUMNS)}`),
        (rows) => rows[0]
      )

    /** The checks before money: the key exists, is not revoked, may call the models, and was given the options it needs. */
    const checkKey = (row: LockedKey | undefined, input: AdmitInput): Effect.Effect<LockedKey, AdmissionError | CostsNeeded> => {
      if (row === undefined) return Effect.fail(unknownKey())
      if (row.revoked_at !== null) return Effect.fail(revokedKey(row.prefix))
      if (row.models !== null) {
        const allowed = names(row.models)
        const denied = input.models.filter((m) => !allowed.includes(m))
        if (denied.length > 0) return Effect.fail(new ModelNotAllowed({ models: denied, allowed: [...allowed], keyId: row.id }))
      }
      const needsCost = row.budget_micros !== null || row.tpm !== null
      return needsCost && input.options === undefined ? Effect.fail(new CostsNeeded()) : Effect.succeed(row)
    }

    /** The rate buckets as the lock left them: below zero, the limit is reached. */
    const checkBuckets = (row: LockedKey, charge: number): Effect.Effect<void, AdmissionError> => {
      const rpm = numOrNull(row.rpm)
      const requests = numOrNull(row.req_level)
      if (rpm !== null && requests !== null && requests < 0) return Effect.fail(requestsLimited(row.id, rpm, requests))
      const tpm = numOrNull(row.tpm)
      const tokens = numOrNull(row.tok_level)
      if (tpm !== null && tokens !== null && tokens < 0) return Effect.fail(tokensLimited(row.id, tpm, tokens, charge))
      return Effect.void
    }

    /**
     * Reserves `micros` only if it fits beside what the period holds (`held`: its totals, or
     * the exact sum): one statement, whose snapshot (taken after the key's lock) sees every
     * other reservation; undefined when it does not fit.
     */
    const reserveIfFits = Effect.fnUntraced(function*(keyId: string, period: string, budget: number, micros: number, input: AdmitInput, held: Statement.Fragment) {
      const { now } = input
      const id = newReservationId()
      const inserted = yield* tx(sql<{ id: string }>`INSERT INTO quorum_reservations (id, key_id, period, amount_micros, expires_at, owner, created_at)
        SELECT ${id}, ${keyId}, ${period}, ${micros}, ${now + input.ttlMs}, ${OWNER.id}, ${now}
        WHERE ${held} + ${micros} <= ${budget}
        RETURNING id`)
      if (inserted.length === 0) return undefined
      yield* tx(sql`INSERT INTO quorum_key_spend (key_id, period, spent_micros, reserved_micros) VALUES (${keyId}, ${period}, 0, ${micros})
        ON CONFLICT (key_id, period) DO UPDATE SET reserved_micros = quorum_key_spend.reserved_micros + ${micros}`)
      return { id, period, micros }
    })

    /**
     * Reserves `micros` if it fits beside the period's totals: when the totals row exists,
     * one row updated on its condition and the reservation inserted (two plain statements,
     * half the cost of the general form); the first of a period, through reserveIfFits.
     */
    const reserveByTotals = (keyId: string, period: string, budget: number, micros: number, input: AdmitInput) =>
      Effect.flatMap(
        changed(sql`UPDATE quorum_key_spend SET reserved_micros = reserved_micros + ${micros}
          WHERE key_id = ${keyId} AND period = ${period} AND spent_micros + reserved_micros + ${micros} <= ${budget}`),
        (count) => {
          if (count === 0) return reserveIfFits(keyId, period, budget, micros, input, heldOf(keyId, period))
          const id = newReservationId()
          const { now } = input
          return Effect.as(
            tx(sql`INSERT INTO quorum_reservations (id, key_id, period, amount_micros, expires_at, owner, created_at)
              VALUES (${id}, ${keyId}, ${period}, ${micros}, ${now + input.ttlMs}, ${OWNER.id}, ${now})`),
            { id, period, micros }
          )
        }
      )

    /**
     * The first option the budget holds, reserved. Most requests have one option and it
     * fits: one statement. Otherwise read what is left, then reserve what fits.
     */
    const reserveFirstFitting = Effect.fnUntraced(function*(row: LockedKey, period: string, budget: number, options: ReadonlyArray<CostOption>, input: AdmitInput) {
      const [first] = options
      const reservation = first === undefined ? undefined : yield* reserveByTotals(row.id, period, budget, first.micros, input)
      if (reservation !== undefined) return { option: 0, reservation }
      const { reserved, spent } = yield* spentAndReserved(row.id, period, input.now)
      const left = budget - spent - reserved
      const option = options.findIndex((o) => o.micros <= left)
      const fits = options[option]
      if (fits === undefined) return yield* quotaError(row.id, row.budget_period, budget, spent, reserved, options)
      const taken = yield* reserveIfFits(row.id, period, budget, fits.micros, input, sql`${spentOf(row.id, period)} + ${reservedOf(row.id, period, input.now)}`)
      if (taken === undefined) return yield* new SpendStoreError({ message: "a reservation that fitted under the key's lock no longer fits" })
      return { option, reservation: taken }
    })

    /**
     * One admission's statements on SQLite, inside a transaction (the file's lock): the key
     * locked and its buckets drawn, the checks, then the reservation, which runs after the
     * lock is held, so it sees every admission that came before.
     */
    const admitSteps: (input: AdmitInput) => Effect.Effect<Admission, AdmissionError | CostsNeeded | SqlError.SqlError> = Effect.fnUntraced(function*(input: AdmitInput) {
      const options = input.options
      const charge = options?.[0]?.tokens ?? 0
      const row = yield* Effect.flatMap(lockKey(input.hash, input.now, charge), (locked) => checkKey(locked, input))
      yield* checkBuckets(row, charge)
      const period = periodOf(row.budget_period, input.now)
      const tokensCharged = row.tpm === null ? 0 : charge
      const budget = numOrNull(row.budget_micros)
      if (budget === null || options === undefined) return { keyId: row.id, period, option: 0, reservation: undefined, tokensCharged }
      // A smaller fallback than the first option draws fewer tokens: the difference is refunded at settlement.
      const { option, reservation } = yield* reserveFirstFitting(row, period, budget, options, input)
      return { keyId: row.id, period, option, reservation, tokensCharged }
    })

    /**
     * Admissions on SQLite: those asked for in one turn of the event loop share one
     * IMMEDIATE transaction (one BEGIN and one COMMIT, most of an admission's cost), each
     * in a savepoint of its own, in the order they came: each sees the ones before it.
     */
    const admitTogether = perTurn((calls: ReadonlyArray<TurnCall<AdmitInput>>) => {
      const [only, ...more] = calls
      return only !== undefined && more.length === 0 ? Effect.map(admitAlone(only), (exit) => [exit]) : write(Effect.forEach(calls, admitInSavepoint))
    })

    /**
     * A group of one (every admission at one request at a time, many under load) needs no
     * savepoint: its transaction is its own, rolled back whole on a refusal, an error or a
     * caller that left. Two statements fewer.
     */
    const admitAlone = (call: TurnCall<AdmitInput>): Effect.Effect<Exit.Exit<Admission, AdmissionError | CostsNeeded | SpendStoreError>> =>
      call.left()
        ? Effect.succeed(Exit.interrupt(FiberId.none))
        : Effect.exit(write(Effect.tap(admitSteps(call.item), () => (call.left() ? Effect.failCause(Cause.interrupt(FiberId.none)) : Effect.void))))

    /**
     * One admission of a group: a refusal, an error, or a caller that left (its client
     * went away while the group waited for another process's lock) rolls back its own
     * draws and reservation only; a reservation nobody will settle would hold budget until
     * it expired. The savepoint is released every time, so the next one starts clean; a
     * savepoint statement that fails fails the whole group.
     */
    const inSavepoint = Effect.fnUntraced(function*(call: TurnCall<AdmitInput>) {
      yield* tx(sql.unsafe("SAVEPOINT quorum_admit"))
      const exit = yield* Effect.exit(admitSteps(call.item))
      const kept = Exit.isSuccess(exit) && !call.left()
      if (!kept) yield* tx(sql.unsafe("ROLLBACK TO quorum_admit"))
      yield* tx(sql.unsafe("RELEASE quorum_admit"))
      if (Exit.isSuccess(exit) && !kept) return Exit.interrupt(FiberId.none)
      return Exit.mapError(exit, (error) => (error._tag === "SqlError" ? storeError(error) : error))
    })
    const admitInSavepoint = (call: TurnCall<AdmitInput>): Effect.Effect<Exit.Exit<Admission, AdmissionError | CostsNeeded | SpendStoreError>, SqlError.SqlError> =>
      Effect.suspend(() => (call.left() ? Effect.succeed(Exit.interrupt(FiberId.none)) : inSavepoint(call)))

    /** One round trip on PostgreSQL; SQLite's transaction is in-process, so its statements cost no round trips. */
    const admit: (input: AdmitInput) => Effect.Effect<Admission, AdmissionError | CostsNeeded> = sql.onDialectOrElse({
      pg: () => admitByFunction,
      orElse: () => admitTogether
    })

    /**
     * A PostgreSQL batch may hang on a connection the server dropped: the attempt is
     * abandoned after a while and fails (the ledger tries the batch again; one that did
     * commit is then skipped). A SQLite batch cannot hang (its statements run in-process;
     * a lock held elsewhere fails on its own), and is spared the two fibers this takes.
     */
    const writeBatch: SpendStoreShape["writeBatch"] = sql.onDialectOrElse({
      pg: () => (all) =>
        Effect.disconnect(writeBatchNow(all)).pipe(
          Effect.timeoutFail({ duration: WRITE_TIMEOUT, onTimeout: () => new SpendStoreError({ message: `no answer from the database within ${Duration.format(WRITE_TIMEOUT)}` }) })
        ),
      orElse: () => (all) => writeBatchNow(all)
    })

    /**
     * One transaction per batch: a batch is in the ledger, and settled, entirely or not
     * at all. Keys' rows are touched last, once per key, so that admissions on the same
     * key wait for this batch as briefly as possible.
     */
    const batchSteps = Effect.fnUntraced(function*(all: ReadonlyArray<LedgerEntry>) {
      // A batch may be written again when nobody knows whether its first try committed
      // (a timeout, a shutdown): a request already in the ledger was settled with it, so
      // it is skipped. (With the ledger off there is no row to tell, and no such guard.)
      const written = new Set<string>()
      for (const rows of chunks(all.flatMap((e) => (e.request === undefined ? [] : [e.request])), 128)) {
        const inserted = yield* tx(sql<{ id: string }>`INSERT INTO quorum_requests ${sql.insert(rows)} ON CONFLICT (id) DO NOTHING RETURNING id`)
        for (const { id } of inserted) written.add(id)
      }
      const entries = all.filter((e) => e.request === undefined || written.has(e.request.id))
      for (const rows of chunks(entries.flatMap((e) => e.attempts), 128)) yield* tx(sql`INSERT INTO quorum_attempts ${sql.insert(rows)}`)
      const reservations = entries.flatMap((e) => (e.settle?.reservation === undefined ? [] : [e.settle.reservation.id]))
      // Only what this batch deletes leaves the reserved totals: a reservation the sweep took first was subtracted then.
      const released = new Map<string, Totals>()
      const deleted = new Set<string>()
      for (const ids of chunks(reservations, 256)) {
        const gone = yield* tx(sql<ReleasedRow & { id: string }>`DELETE FROM quorum_reservations WHERE ${sql.in("id", ids)} RETURNING id, key_id, period, amount_micros`)
        for (const row of gone) {
          deleted.add(row.id)
          addTo(released, row.key_id, row.period, 0, num(row.amount_micros))
        }
      }
      // A reservation already charged by reconciliation (this process's lease lapsed while it lived on: a long
      // stall, the database out of reach): its worst case leaves the ledger and the spend, the real cost replaces it.
      const charged = new Map(entries.flatMap((e) =>
        e.settle?.reservation === undefined || deleted.has(e.settle.reservation.id) ? [] : [[e.settle.reservation.id, e.settle] as const]))
      for (const ids of chunks([...charged.keys()], 256)) {
        const undone = yield* tx(sql<{ id: string; cost_micros: unknown }>`DELETE FROM quorum_requests WHERE ${sql.in("id", ids)} AND status = 0
          RETURNING id, cost_micros`)
        for (const row of undone) {
          const settle = charged.get(row.id)
          if (settle !== undefined) addTo(released, settle.keyId, settle.period, -num(row.cost_micros), 0)
        }
      }
      const refunds = new Map<string, number>()
      for (const { costMicros, settle } of entries) {
        if (settle === undefined) continue
        addTo(released, settle.keyId, settle.period, costMicros, 0)
        if (settle.tokenRefund > 0) refunds.set(settle.keyId, (refunds.get(settle.keyId) ?? 0) + settle.tokenRefund)
      }
      // Rows are locked in one order everywhere (a key's row before its totals, and in sorted order), so that
      // admissions, batches and sweeps of several processes wait for each other instead of deadlocking.
      for (const [keyId, refund] of [...refunds].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        yield* tx(sql`UPDATE quorum_keys SET tok_level = CASE WHEN tok_level + ${refund} > tpm THEN tpm ELSE tok_level + ${refund} END
          WHERE id = ${keyId} AND tpm IS NOT NULL AND tok_level IS NOT NULL`)
      }
      yield* applyTotals(released)
    })
    const writeBatchNow = (all: ReadonlyArray<LedgerEntry>) => write(batchSteps(all))

    /** Adds a batch's spend to the totals and takes its released reservations off, one row per key and period. */
    const applyTotals = (totals: Map<string, Totals>) =>
      Effect.forEach(sortedTotals(totals), ({ keyId, period, spent, released }) =>
        tx(sql`INSERT INTO quorum_key_spend (key_id, period, spent_micros, reserved_micros) VALUES (${keyId}, ${period}, ${spent}, ${-released})
          ON CONFLICT (key_id, period) DO UPDATE SET spent_micros = quorum_key_spend.spent_micros + ${spent},
            reserved_micros = quorum_key_spend.reserved_micros - ${released}`), { discard: true })

    /** Expired reservations no longer count; this tidies the table and takes them off the reserved totals. */
    const sweepReservations = (now: number) =>
      write(Effect.gen(function*() {
        const gone = yield* sql<ReleasedRow>`DELETE FROM quorum_reservations WHERE expires_at <= ${now} RETURNING key_id, period, amount_micros`
        const released = new Map<string, Totals>()
        for (const row of gone) addTo(released, row.key_id, row.period, 0, num(row.amount_micros))
        yield* applyTotals(released)
      }))

    /**
     * This process's lease on its reservations (see owner.ts), renewed by the ledger while
     * the process holds any: at rest it writes nothing (one write a second per worker and
     * replica, for nothing, and a log to checkpoint). A reservation made after the lease lapsed is safe
     * until the next renewal, a second later: `orphaned` leaves one younger than a lease
     * alone.
     */
    const renewLease = (now: number) =>
      read(sql`SELECT 1 AS held FROM quorum_reservations WHERE owner = ${OWNER.id} LIMIT 1`).pipe(
        Effect.flatMap((held) =>
          held.length === 0 ? Effect.void : write(sql`INSERT INTO quorum_owners (id, host, pid, started_at, lease_until)
            VALUES (${OWNER.id}, ${OWNER.host}, ${OWNER.pid}, ${OWNER.startedAt}, ${now + LEASE_MS})
            ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until`))
      )

    /** On shutdown, after the ledger's last batch: whatever this process still holds is charged at once by the others. */
    const endLease = write(sql`UPDATE quorum_owners SET lease_until = 0 WHERE id = ${OWNER.id}`)

    /**
     * Reservations whose owner's lease has lapsed. One made less than a lease ago is left
     * alone even without its owner's row: a process admits before it renews a lease it let
     * lapse while it held nothing (or, starting, before its first).
     */
    const orphaned = (now: number) =>
      sql`owner IS NOT NULL AND created_at <= ${now - LEASE_MS}
        AND NOT EXISTS (SELECT 1 FROM quorum_owners o WHERE o.id = quorum_reservations.owner AND o.lease_until > ${now})`

    /**
     * Charges the reservations of processes that stopped: each becomes a ledger row (its
     * id the reservation's, status 0, the error saying so, the reserved worst case as its
     * cost) and goes into the key's spend, in one transaction. The owner's requests had
     * either been written, and their reservations deleted with them, or not at all (a
     * batch is atomic), so nothing is charged twice; should the owner live on after all,
     * its batch replaces the charge with the real cost (writeBatch). Answers how many.
     */
    const reconcile = Effect.fnUntraced(function*(now: number) {
      // A read first: most of the time there is nothing to do, and on SQLite a write would take the file's lock.
      const any = yield* read(sql<{ id: string }>`SELECT id FROM quorum_reservations WHERE ${orphaned(now)} LIMIT 1`)
      if (any.length === 0) return 0
      return yield* write(Effect.gen(function*() {
        const gone = yield* sql<ReleasedRow & { id: string; created_at: unknown }>`DELETE FROM quorum_reservations WHERE ${orphaned(now)}
          RETURNING id, key_id, period, amount_micros, created_at`
        const totals = new Map<string, Totals>()
        for (const row of gone) addTo(totals, row.key_id, row.period, num(row.amount_micros), num(row.amount_micros))
        for (const rows of chunks(gone.map((row) => reconciledRow(row, now)), 128)) {
          yield* sql`INSERT INTO quorum_requests ${sql.insert(rows)} ON CONFLICT (id) DO NOTHING`
        }
        yield* applyTotals(totals)
        yield* sql`DELETE FROM quorum_owners WHERE lease_until <= ${now}
          AND NOT EXISTS (SELECT 1 FROM quorum_reservations r WHERE r.owner = quorum_owners.id)`
        return gone.length
      }))
    })

    const reconciledRow = (row: ReleasedRow & { id: string; created_at: unknown }, now: number): RequestRow => {
      const startedAt = numOrNull(row.created_at) ?? now
      return {
        id: row.id, key_id: row.key_id, endpoint: "unknown", model: null, consensus_id: null, status: 0, error: RECONCILED,
        stream: 0, cancelled: 0, attempts: 0, prompt_tokens: 0, completion_tokens: 0, cost_micros: num(row.amount_micros),
        latency_ms: 0, started_at: startedAt, day: dayOf(startedAt)
      }
    }

    /**
     * Spend by group, and how its requests were answered. Requests that called no upstream
     * (refused by a key's limits, invalid) have no attempt rows: they come from the
     * requests table, grouped under the model the client asked for and no provider, so
     * that a report counts every request the ledger holds (with the cost of the reconciled
     * ones, which is their reserved worst case).
     */
    const report = (query: ReportQuery) =>
      read(Effect.gen(function*() {
        const rows = yield* reportRows(query.groupBy, query)
        const names = query.groupBy.includes("key")
          ? new Map((yield* sql<{ id: string; name: string }>`SELECT id, name FROM quorum_keys`).map((k) => [k.id, k.name]))
          : undefined
        const data: Array<SpendReportRow> = rows.map((group) => ({
          ...group.dims,
          ...(names === undefined ? {} : { key_name: names.get(group.dims.key as string) ?? null }),
          ...group.totals
        }))
        // Counted again without groups: a request with attempts on two models is in two groups, but is one request.
        const total = (query.groupBy.length === 0 ? rows[0]?.totals : (yield* reportRows([], query))[0]?.totals) ?? emptyTotals()
        // Without groups there is always one row, as SQL's aggregate without GROUP BY has.
        return { data: query.groupBy.length === 0 ? [total as SpendReportRow] : data, total }
      }))

    const reportRows = Effect.fnUntraced(function*(groupBy: ReadonlyArray<ReportDimension>, query: ReportQuery) {
      const columns = groupBy.map(columnOf)
      const filters = (alias: string) => [
        ...(query.from === undefined ? [] : [sql`${sql.literal(alias)}.day >= ${query.from}`]),
        ...(query.to === undefined ? [] : [sql`${sql.literal(alias)}.day <= ${query.to}`]),
        ...(query.keyId === undefined ? [] : [sql`${sql.literal(alias)}.key_id = ${query.keyId}`])
      ]
      const where = (alias: string, ...more: Array<Statement.Fragment>) => {
        const all = [...more, ...filters(alias)]
        return all.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(all)}`
      }
      const select = sql.literal([...columns, "status", "upstream"].join(", "))
      // Nulls last on both databases (SQLite sorts them first, PostgreSQL last).
      const order = sql.literal(columns.map((c) => `${c} IS NULL, ${c}`).join(", ") || "status")
      const rows = yield* sql<Record<string, unknown>>`SELECT ${select},
          COUNT(DISTINCT request_id) AS requests, SUM(upstream) AS attempts,
          SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, SUM(cost_micros) AS cost_micros
        FROM (
          SELECT a.request_id AS request_id, a.key_id AS key_id, a.model AS model, a.provider AS provider, a.day AS day,
            r.status AS status, 1 AS upstream, a.prompt_tokens AS prompt_tokens, a.completion_tokens AS completion_tokens, a.cost_micros AS cost_micros
          FROM quorum_attempts a JOIN quorum_requests r ON r.id = a.request_id ${where("a")}
          UNION ALL
          SELECT r.id, r.key_id, r.model, NULL, r.day, r.status, 0, 0, 0, r.cost_micros
          FROM quorum_requests r ${where("r", sql`r.attempts = 0`)}
        ) u
        GROUP BY ${select} ORDER BY ${order}`
      // One SQL row per group, status and whether an upstream was called: folded into one per group.
      const groups = new Map<string, { dims: Partial<Record<ReportDimension, string | null>>; rows: Array<Record<string, unknown>> }>()
      for (const row of rows) {
        const dims: Partial<Record<ReportDimension, string | null>> = Object.fromEntries(groupBy.map((d) => [d, row[columnOf(d)] ?? null]))
        const at = JSON.stringify(dims)
        const group = groups.get(at) ?? { dims, rows: [] as Array<Record<string, unknown>> }
        group.rows.push(row)
        groups.set(at, group)
      }
      return [...groups.values()].map(({ dims, rows }) => {
        const sum = (name: string) => rows.reduce((total, row) => total + num(row[name] ?? 0), 0)
        const cost = sum("cost_micros")
        return {
          dims,
          totals: {
            ...countStatuses(rows.map((row) => ({ status: num(row.status), upstream: num(row.upstream) === 1, requests: num(row.requests) }))),
            attempts: sum("attempts"),
            prompt_tokens: sum("prompt_tokens"),
            completion_tokens: sum("completion_tokens"),
            cost_micros: cost,
            cost_usd: formatUsd(cost)
          }
        }
      })
    })

    const emptyTotals = () => ({ ...countStatuses([]), attempts: 0, prompt_tokens: 0, completion_tokens: 0, cost_micros: 0, cost_usd: formatUsd(0) })

    /** Requests newest first, one more than asked for, to tell whether there is another page. */
    const listRequests = (query: RequestQuery) =>
      read(Effect.gen(function*() {
        const conditions = [
          ...(query.keyId === undefined ? [] : [sql`key_id = ${query.keyId}`]),
          // The name the client asked for, or a model that was called for it (a route's target, a consensus candidate).
          ...(query.model === undefined
            ? []
            : [sql`(model = ${query.model} OR EXISTS (SELECT 1 FROM quorum_attempts a WHERE a.request_id = quorum_requests.id AND a.model = ${query.model}))`]),
          ...(query.status === undefined ? [] : [sql`status >= ${query.status.min} AND status <= ${query.status.max}`]),
          ...(query.from === undefined ? [] : [sql`started_at >= ${query.from}`]),
          ...(query.to === undefined ? [] : [sql`started_at < ${query.to}`]),
          ...(query.after === undefined
            ? []
            : [sql`(started_at < ${query.after.startedAt} OR (started_at = ${query.after.startedAt} AND id < ${query.after.id}))`])
        ]
        const rows = yield* sql<RequestRow>`SELECT * FROM quorum_requests
          ${conditions.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(conditions)}`}
          ORDER BY started_at DESC, id DESC LIMIT ${query.limit + 1}`
        const page = rows.slice(0, query.limit).map(requestView)
        const last = page.at(-1)
        const more = rows.length > query.limit
        return { object: "list" as const, data: page, has_more: more, next_after: more && last !== undefined ? last.id : null } satisfies RequestPage
      }))

    /** Where a request falls in the newest-first order, for a page that starts after it. */
    const requestPosition = (id: string) =>
      read(Effect.map(
        sql<{ started_at: unknown }>`SELECT started_at FROM quorum_requests WHERE id = ${id}`,
        ([row]) => (row === undefined ? undefined : { startedAt: num(row.started_at), id })
      ))

    /** A request and its upstream attempts, by its `x-request-id`. */
    const getRequest = (id: string) =>
      read(Effect.gen(function*() {
        const [row] = yield* sql<RequestRow>`SELECT * FROM quorum_requests WHERE id = ${id}`
        if (row === undefined) return undefined
        const attempts = yield* sql<AttemptRow>`SELECT * FROM quorum_attempts WHERE request_id = ${id} ORDER BY seq`
        return { ...requestView(row), upstream_attempts: attempts.map(attemptView) } satisfies RequestDetail
      }))

    /** A key's facts by its hash: one read on the hash's unique index. */
    const keyFacts = (hash: string) =>
      read(Effect.map(
        sql<Pick<KeyRow, "id" | "prefix" | "models" | "tags" | "policies" | "budget_micros" | "budget_period" | "tpm" | "revoked_at">>`SELECT
          id, prefix, models, tags, policies, budget_micros, budget_period, tpm, revoked_at FROM quorum_keys WHERE hash = ${hash}`,
        ([row]): KeyFacts | undefined => row === undefined ? undefined : {
          id: row.id,
          hash,
          prefix: row.prefix,
          tags: names(row.tags),
          policies: names(row.policies),
          models: row.models === null ? null : names(row.models),
          needsCost: row.budget_micros !== null || row.tpm !== null,
          budgetPeriod: row.budget_period,
          revoked: row.revoked_at !== null
        }
      ))

    return {
      createKey, listKeys, getKey, updateKey, revokeKey, admit, keyFacts, writeBatch, sweepReservations, renewLease, endLease, reconcile,
      report, listRequests, requestPosition, getRequest
    } satisfies SpendStoreShape
  })
)
