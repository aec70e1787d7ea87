/**
 * Consensus outcomes in the spend database, as SQL that SQLite and PostgreSQL both run:
 * what each consensus request's candidates answered (written in batches, off the request
 * path), the labels feedback gives them, the labelled history a task learns from, and
 * each task's learned policy.
 */
import { SqlClient, SqlError } from "@effect/sql"
import { Effect } from "effect"
import type { ConsensusOutcome } from "../outcome"
import { SpendStoreError } from "../../billing/errors"
import { hashKey } from "../../billing/keys"

export interface OutcomeEntry {
  readonly outcome: ConsensusOutcome
  readonly keyId: string | null
  readonly createdAt: number
}

export interface StoredCandidate {
  readonly model: string
  readonly status: string
  readonly kind: string | null
  readonly answer: string | null
  readonly group: string | null
  readonly latencyMs: number | null
  readonly costMicros: number
}

export interface StoredOutcome {
  readonly id: string
  readonly keyId: string | null
  readonly task: string
  readonly answerGroup: string | null
  readonly createdAt: number
  readonly candidates: ReadonlyArray<StoredCandidate>
}

/** One labelled consensus: its candidates and the group the label matched (null: none). */
export interface LabelledOutcome {
  readonly truth: string | null
  readonly candidates: ReadonlyArray<StoredCandidate>
}

export interface StoredPolicy {
  readonly labels: number
  readonly state: string
  readonly updatedAt: number
}

const num = (value: unknown): number => (typeof value === "number" ? value : Number(value))
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : num(value))

const storeError = (error: SqlError.SqlError) =>
  new SpendStoreError({ message: `spend database: ${error.message}`.replace(/postgres(ql)?:\/\/[^\s"']+/gi, "postgres://[redacted]") })

interface CandidateRow {
  readonly consensus_id: string
  readonly model: string
  readonly status: string
  readonly kind: string | null
  readonly answer: string | null
  readonly group_key: string | null
  readonly latency_ms: unknown
  readonly cost_micros: unknown
}

const candidateOf = (row: CandidateRow): StoredCandidate => ({
  model: row.model,
  status: row.status,
  kind: row.kind,
  answer: row.answer,
  group: row.group_key,
  latencyMs: numOrNull(row.latency_ms),
  costMicros: num(row.cost_micros)
})

export class OutcomeStore extends Effect.Service<OutcomeStore>()("quorum/OutcomeStore", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const run = <A>(effect: Effect.Effect<A, SqlError.SqlError>): Effect.Effect<A, SpendStoreError> =>
      effect.pipe(
        Effect.mapError(storeError),
        Effect.catchAllDefect((defect) => (defect instanceof SqlError.SqlError ? Effect.fail(storeError(defect)) : Effect.die(defect)))
      )

    /** A batch in one transaction; an outcome already written (a retried batch) is skipped. */
    const writeBatch = (entries: ReadonlyArray<OutcomeEntry>) =>
      run(sql.withTransaction(Effect.gen(function*() {
        for (const { createdAt, keyId, outcome } of entries) {
          const inserted = yield* sql<{ id: string }>`INSERT INTO quorum_consensus ${
            sql.insert({ id: outcome.id, key_id: keyId, task: outcome.task, answer_group: outcome.answerGroup, created_at: createdAt })
          } ON CONFLICT (id) DO NOTHING RETURNING id`
          if (inserted.length === 0 || outcome.candidates.length === 0) continue
          yield* sql`INSERT INTO quorum_consensus_candidates ${
            sql.insert(outcome.candidates.map((c, seq) => ({
              consensus_id: outcome.id,
              seq,
              model: c.model,
              status: c.status,
              kind: c.kind,
              answer: c.answer,
              group_key: c.group,
              latency_ms: c.latencyMs,
              cost_micros: c.costMicros
            })))
          }`
        }
      })))

    /** An outcome not older than `since` (epoch ms), or undefined. */
    const find = (id: string, since: number) =>
      run(Effect.gen(function*() {
        const rows = yield* sql<{ id: string; key_id: string | null; task: string; answer_group: string | null; created_at: unknown }>`
          SELECT id, key_id, task, answer_group, created_at FROM quorum_consensus WHERE id = ${id} AND created_at >= ${since}`
        const row = rows[0]
        if (row === undefined) return undefined
        const candidates = yield* sql<CandidateRow>`SELECT * FROM quorum_consensus_candidates WHERE consensus_id = ${id} ORDER BY seq`
        return {
          id: row.id,
          keyId: row.key_id,
          task: row.task,
          answerGroup: row.answer_group,
          createdAt: num(row.created_at),
          candidates: candidates.map(candidateOf)
        } satisfies StoredOutcome
      }))

    const label = (id: string, label: string, truth: string | null, now: number) =>
      run(sql`UPDATE quorum_consensus SET label = ${label}, truth = ${truth}, labelled_at = ${now} WHERE id = ${id}`)

    /** The task's labelled outcomes, oldest label first, within retention. */
    const labelled = (task: string, since: number) =>
      run(Effect.gen(function*() {
        const heads = yield* sql<{ id: string; truth: string | null }>`SELECT id, truth FROM quorum_consensus
          WHERE task = ${task} AND labelled_at IS NOT NULL AND created_at >= ${since} ORDER BY labelled_at, id`
        if (heads.length === 0) return []
        const rows = yield* sql<CandidateRow>`SELECT c.* FROM quorum_consensus_candidates c
          JOIN quorum_consensus o ON o.id = c.consensus_id
          WHERE o.task = ${task} AND o.labelled_at IS NOT NULL AND o.created_at >= ${since} ORDER BY c.consensus_id, c.seq`
        const byId = new Map<string, Array<StoredCandidate>>()
        for (const row of rows) byId.set(row.consensus_id, [...(byId.get(row.consensus_id) ?? []), candidateOf(row)])
        return heads.map((h): LabelledOutcome => ({ truth: h.truth, candidates: byId.get(h.id) ?? [] }))
      }))

    const labelCount = (task: string, since: number) =>
      run(Effect.map(
        sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_consensus WHERE task = ${task} AND labelled_at IS NOT NULL AND created_at >= ${since}`,
        (rows) => num(rows[0]?.n ?? 0)
      ))

    const savePolicy = (task: string, labels: number, state: string, now: number) =>
      run(sql`INSERT INTO quorum_consensus_policies (task, labels, state, updated_at) VALUES (${task}, ${labels}, ${state}, ${now})
        ON CONFLICT (task) DO UPDATE SET labels = ${labels}, state = ${state}, updated_at = ${now}`)

    const deletePolicy = (task: string) => run(sql`DELETE FROM quorum_consensus_policies WHERE task = ${task}`)

    const loadPolicy = (task: string) =>
      run(Effect.map(
        sql<{ labels: unknown; state: string; updated_at: unknown }>`SELECT labels, state, updated_at FROM quorum_consensus_policies WHERE task = ${task}`,
        (rows): StoredPolicy | undefined => rows[0] === undefined ? undefined : { labels: num(rows[0].labels), state: rows[0].state, updatedAt: num(rows[0].updated_at) }
      ))

    /** Outcomes older than `before` go, with their candidates. */
    const sweep = (before: number) =>
      run(sql.withTransaction(Effect.gen(function*() {
        yield* sql`DELETE FROM quorum_consensus_candidates WHERE consensus_id IN (SELECT id FROM quorum_consensus WHERE created_at < ${before})`
        yield* sql`DELETE FROM quorum_consensus WHERE created_at < ${before}`
      })))

    /** The id of a live virtual key, from its secret. */
    const keyIdOf = (secret: string) =>
      run(Effect.map(
        sql<{ id: string }>`SELECT id FROM quorum_keys WHERE hash = ${hashKey(secret)} AND revoked_at IS NULL`,
        (rows) => rows[0]?.id
      ))

    return { writeBatch, find, label, labelled, labelCount, savePolicy, deletePolicy, loadPolicy, sweep, keyIdOf }
  })
}) {}
