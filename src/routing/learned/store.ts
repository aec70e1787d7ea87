/**
 * Learned routes' beliefs in the database replicas share (migration 0007), and this
 * worker's snapshot of them for the adaptive strategy (view.ts).
 *
 * Outcomes come from two places. The ledger: every second, the rows of requests to an
 * adaptive route that ended since the watermark are folded in, attempt by attempt (a
 * completed call counts for its target's quality, with its cost and latency; a failure
 * the upstream caused counts against it; the caller's own mistakes and cancelled calls
 * count for nothing), and the watermark is moved by compare-and-set in the same
 * transaction, so that whichever replica gets there first folds a batch and the others
 * fold nothing of it. And feedback: a label for a routed answer is that call's quality in
 * place of the completion's (labelled before its row is folded, the fold counts only its
 * cost and latency; after, the label takes over the count the completion made), so that a
 * labelled call counts once.
 *
 * Rows are folded once they ended SETTLE_MS ago, long enough for the ledger writer of any
 * replica to have written them; a row written later than that (the database away longer)
 * is passed by and never folded, which costs a belief one observation, never a double one.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import { Duration, Effect, Schedule } from "effect"
import { GatewayConfig, type Route } from "../../config/gateway-config"
import { SpendStoreError } from "../../billing/errors"
import { type Belief, PRIOR, withCall, withQuality } from "./belief"
import { type BeliefMap, LearnedBeliefs } from "./view"

const FOLD_EVERY = Duration.seconds(1)
const SETTLE_MS = 5_000
const BATCH = 500

/** Attempt failures that are the upstream's doing (as for circuits, see countsAsFailure): they count against a target. */
const UPSTREAM_FAULTS: ReadonlySet<string> = new Set(["rate_limited", "overloaded", "server", "timeout", "connection", "malformed", "stream_cut", "auth"])

/** A belief as stored, with the labels feedback gave (for reports). */
export interface StoredBelief extends Belief {
  readonly feedback: number
}

/** A routed answer, as the ledger tells it: who asked, which route, which target answered. */
export interface RoutedAnswer {
  readonly id: string
  readonly keyId: string | null
  readonly route: string | null
  /** The target whose attempt completed; undefined when none did. */
  readonly target: string | undefined
  /** When its ledger row says it ended (the fold's order). */
  readonly endedAt: number
}

/** A batch of ledger rows read from the watermark `from`, to be folded if the watermark is still there. */
export interface FoldPlan {
  readonly from: { readonly endedAt: number; readonly id: string }
  readonly to: { readonly endedAt: number; readonly id: string }
  readonly requests: number
  readonly outcomes: ReadonlyArray<{ readonly attempt: AttemptRow; readonly route: string; readonly order: number }>
}

export interface FoldMark {
  /** Ledger rows that ended before this instant (epoch ms) are folded. */
  readonly endedAt: number
  readonly folded: number
}

interface BeliefRow {
  readonly route: string
  readonly target: string
  readonly alpha: unknown
  readonly beta: unknown
  readonly cost_usd: unknown
  readonly latency_ms: unknown
  readonly calls: unknown
  readonly feedback: unknown
}

export interface AttemptRow {
  readonly request_id: string
  readonly seq: unknown
  readonly model: string
  readonly status: string
  readonly error_kind: string | null
  readonly cost_micros: unknown
  readonly latency_ms: unknown
}

/** PostgreSQL returns BIGINT as a string; SQLite as a number. */
const num = (value: unknown): number => (typeof value === "number" ? value : Number(value))
const numOrUndefined = (value: unknown): number | undefined => (value === null || value === undefined ? undefined : num(value))

const beliefOf = (row: BeliefRow): StoredBelief => ({
  alpha: num(row.alpha),
  beta: num(row.beta),
  costUsd: numOrUndefined(row.cost_usd),
  latencyMs: numOrUndefined(row.latency_ms),
  calls: num(row.calls),
  feedback: num(row.feedback)
})

const storeError = (error: SqlError.SqlError) =>
  new SpendStoreError({ message: `spend database: ${error.message}`.replace(/postgres(ql)?:\/\/[^\s"']+/gi, "postgres://[redacted]") })

const pairKey = (route: string, target: string) => `${route}\u0000${target}`

export class BeliefStore extends Effect.Service<BeliefStore>()("quorum/BeliefStore", {
  scoped: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const config = yield* GatewayConfig
    const learned = new Map([...config.routes.values()].flatMap((r) => (r.adaptive === undefined ? [] : [[r.id, r] as const])))
    const routeIds = [...learned.keys()]
    const memoryOf = (route: string) => learned.get(route)?.adaptive?.memory ?? 200
    const snapshot = yield* LearnedBeliefs
    const settle = SETTLE_MS + config.spend.flushMs

    const run = <A>(effect: Effect.Effect<A, SqlError.SqlError>): Effect.Effect<A, SpendStoreError> => Effect.mapError(effect, storeError)

    const rowsOf = (routes: ReadonlyArray<string>, lock: boolean) => {
      const select = sql<BeliefRow>`SELECT route, target, alpha, beta, cost_usd, latency_ms, calls, feedback FROM quorum_route_beliefs
        WHERE ${sql.in("route", routes)} ORDER BY route, target`
      // Feedback and folds of several replicas change the same rows: read them locked (SQLite's write lock is the transaction's).
      return lock ? sql.onDialectOrElse({ pg: () => sql<BeliefRow>`${select} FOR UPDATE`, orElse: () => select }) : select
    }

    /** Applies `change` to the beliefs of the given (route, target) pairs, inside the caller's transaction. */
    const mutate = (pairs: ReadonlyArray<readonly [string, string]>, change: (route: string, target: string, belief: StoredBelief) => StoredBelief) =>
      Effect.gen(function*() {
        const now = Date.now()
        const unique = [...new Map(pairs.map(([r, t]) => [pairKey(r, t), [r, t] as const])).values()]
        for (const [route, target] of unique) {
          yield* sql`INSERT INTO quorum_route_beliefs (route, target, alpha, beta, cost_usd, latency_ms, calls, feedback, updated_at)
            VALUES (${route}, ${target}, ${PRIOR.alpha}, ${PRIOR.beta}, NULL, NULL, 0, 0, ${now}) ON CONFLICT (route, target) DO NOTHING`
        }
        const rows = yield* rowsOf([...new Set(unique.map(([r]) => r))], true)
        const current = new Map(rows.map((row) => [pairKey(row.route, row.target), beliefOf(row)]))
        const changed = new Map<string, StoredBelief>()
        for (const [route, target] of unique) {
          const key = pairKey(route, target)
          // Every pair has its row by now: the prior, when the insert above made it.
          const next = change(route, target, current.get(key) ?? { ...PRIOR, feedback: 0 })
          changed.set(key, next)
          yield* sql`UPDATE quorum_route_beliefs SET alpha = ${next.alpha}, beta = ${next.beta}, cost_usd = ${next.costUsd ?? null},
            latency_ms = ${next.latencyMs ?? null}, calls = ${next.calls}, feedback = ${next.feedback}, updated_at = ${now}
            WHERE route = ${route} AND target = ${target}`
        }
        return changed
      })

    const readMark = sql<{ ended_at: unknown; request_id: string; folded: unknown }>`SELECT ended_at, request_id, folded FROM quorum_route_fold WHERE id = 'ledger'`

    /**
     * The next batch of ledger rows to fold, from the watermark as read now; undefined
     * when nothing ended since it (or there is no learned route).
     */
    const planFold: Effect.Effect<FoldPlan | undefined, SqlError.SqlError> = Effect.gen(function*() {
      if (routeIds.length === 0) return undefined
      const [mark] = yield* readMark
      if (mark === undefined) return undefined
      const from = { endedAt: num(mark.ended_at), id: mark.request_id }
      const cutoff = Date.now() - settle
      if (from.endedAt >= cutoff) return undefined
      const requests = yield* sql<{ id: string; model: string; ended: unknown }>`SELECT id, model, (started_at + latency_ms) AS ended FROM quorum_requests
        WHERE (started_at + latency_ms) < ${cutoff}
          AND ((started_at + latency_ms) > ${from.endedAt} OR ((started_at + latency_ms) = ${from.endedAt} AND id > ${from.id}))
          AND ${sql.in("model", routeIds)}
        ORDER BY (started_at + latency_ms), id LIMIT ${BATCH}`
      // A full batch stops at its last row; a short one took everything that ended before the cutoff.
      const last = requests.at(-1)
      const to = requests.length === BATCH && last !== undefined ? { endedAt: num(last.ended), id: last.id } : { endedAt: cutoff, id: "" }
      const attempts = requests.length === 0 ? [] : yield* sql<AttemptRow>`SELECT request_id, seq, model, status, error_kind, cost_micros, latency_ms
        FROM quorum_attempts WHERE ${sql.in("request_id", requests.map((r) => r.id))}`
      const routeOf = new Map(requests.map((r, i) => [r.id, { route: r.model, order: i }]))
      const outcomes = attempts
        // Attempts were read by these requests' ids, so each has its request.
        .flatMap((a) => {
          const request = routeOf.get(a.request_id)
          return request === undefined ? [] : [{ attempt: a, route: request.route, order: request.order }]
        })
        .filter(({ attempt: a, route }) =>
          learned.get(route)?.targets.some((t) => t.deployment === a.model) === true && (a.status === "ok" || (a.status === "error" && UPSTREAM_FAULTS.has(a.error_kind ?? ""))))
        .sort((x, y) => x.order - y.order || num(x.attempt.seq) - num(y.attempt.seq))
      return { from, to, requests: requests.length, outcomes }
    })

    /**
     * A planned batch into the beliefs, if the watermark is still where the plan read it
     * (compare-and-set, in the same transaction): the ledger rows it moved past, 0 when
     * another replica moved it first.
     */
    const applyFold = (plan: FoldPlan) =>
      sql.withTransaction(Effect.gen(function*() {
        const { from, to, outcomes } = plan
        const moved = yield* sql<{ id: string }>`UPDATE quorum_route_fold SET ended_at = ${to.endedAt}, request_id = ${to.id},
          folded = folded + ${outcomes.length}, updated_at = ${Date.now()}
          WHERE id = 'ledger' AND ended_at = ${from.endedAt} AND request_id = ${from.id} RETURNING id`
        if (moved.length === 0) return 0
        // A labelled answer's quality is its label's (feedback took it, under the watermark's lock): here only its cost and latency.
        const ids = [...new Set(outcomes.map(({ attempt }) => attempt.request_id))]
        const labelled = new Set(ids.length === 0 ? [] : (yield* sql<{ request_id: string }>`SELECT request_id FROM quorum_route_feedback WHERE ${sql.in("request_id", ids)}`).map((r) => r.request_id))
        const byPair = new Map<string, Array<AttemptRow>>()
        for (const { attempt, route } of outcomes) {
          const key = pairKey(route, attempt.model)
          byPair.set(key, [...(byPair.get(key) ?? []), attempt])
        }
        if (outcomes.length > 0) {
          yield* mutate(outcomes.map(({ attempt, route }) => [route, attempt.model] as const), (route, target, belief) => {
            const memory = memoryOf(route)
            let next: StoredBelief = belief
            for (const a of byPair.get(pairKey(route, target)) ?? []) {
              if (a.status !== "ok") next = { ...withQuality(next, 0, memory), feedback: next.feedback }
              else {
                const called = withCall(next, num(a.cost_micros) / 1e6, num(a.latency_ms), memory)
                next = { ...(labelled.has(a.request_id) ? called : withQuality(called, 1, memory)), feedback: next.feedback }
              }
            }
            return next
          })
        }
        return plan.requests
      }))

    const foldOnce = Effect.flatMap(planFold, (plan) => (plan === undefined ? Effect.succeed(0) : applyFold(plan)))

    const beliefsOf = (routes: ReadonlyArray<string>) =>
      Effect.map(routes.length === 0 ? Effect.succeed([]) : rowsOf(routes, false), (rows) => {
        const map = new Map<string, Map<string, StoredBelief>>()
        for (const row of rows) {
          let route = map.get(row.route)
          if (route === undefined) map.set(row.route, (route = new Map()))
          route.set(row.target, beliefOf(row))
        }
        return map
      })

    const refresh = Effect.map(beliefsOf(routeIds), (map) => snapshot.replace(map as BeliefMap))

    let failing = false
    const loop = Effect.gen(function*() {
      // Folds until caught up (a backlog goes in batches), then reads what every replica learned.
      while ((yield* foldOnce) > 0) { /* next batch */ }
      yield* refresh
      failing = false
    }).pipe(
      Effect.catchAll((error) => (failing ? Effect.void : Effect.sync(() => (failing = true)).pipe(Effect.zipRight(Effect.logWarning(`learned routes: beliefs not updated: ${storeError(error).message}`))))),
      Effect.catchAllDefect((defect) => Effect.logError(`learned routes: fold failed: ${String(defect)}`)),
      Effect.repeat(Schedule.spaced(FOLD_EVERY))
    )
    if (routeIds.length > 0) yield* Effect.forkScoped(loop)

    return {
      /** The routes that learn, by id. */
      learned: learned as ReadonlyMap<string, Route>,
      snapshot,
      /** What the database holds for a route's targets now. */
      beliefs: (route: string) => run(Effect.map(beliefsOf([route]), (map) => map.get(route) ?? new Map<string, StoredBelief>())),
      mark: run(Effect.map(readMark, ([row]): FoldMark => ({ endedAt: row === undefined ? 0 : num(row.ended_at), folded: row === undefined ? 0 : num(row.folded) }))),
      /** A routed answer by its request id (the x-request-id the gateway answered with); undefined until its ledger row is written. */
      answerOf: (id: string) =>
        run(Effect.gen(function*() {
          const [request] = yield* sql<{ id: string; key_id: string | null; model: string | null; ended: unknown }>`SELECT id, key_id, model,
            (started_at + latency_ms) AS ended FROM quorum_requests WHERE id = ${id}`
          if (request === undefined) return undefined
          const [answered] = yield* sql<{ model: string }>`SELECT model FROM quorum_attempts WHERE request_id = ${id} AND status = 'ok' ORDER BY seq DESC LIMIT 1`
          return { id: request.id, keyId: request.key_id, route: request.model, target: answered?.model, endedAt: num(request.ended) } satisfies RoutedAnswer
        })),
      /**
       * A label's quality (1 good, 0 bad, or between) for the target that answered; false
       * when the answer was labelled before (each answer counts once).
       */
      label: (answer: RoutedAnswer & { readonly route: string; readonly target: string }, quality: number) =>
        run(sql.withTransaction(Effect.gen(function*() {
          const inserted = yield* sql<{ request_id: string }>`INSERT INTO quorum_route_feedback (request_id, route, target, quality, created_at)
            VALUES (${answer.id}, ${answer.route}, ${answer.target}, ${quality}, ${Date.now()}) ON CONFLICT (request_id) DO NOTHING RETURNING request_id`
          if (inserted.length === 0) return false
          // Locks the watermark (a no-op write), so that a fold decides whether the call was folded before or after this.
          const [mark] = yield* sql<{ ended_at: unknown; request_id: string }>`UPDATE quorum_route_fold SET updated_at = updated_at
            WHERE id = 'ledger' RETURNING ended_at, request_id`
          const markedAt = mark === undefined ? 0 : num(mark.ended_at)
          const folded = answer.endedAt < markedAt || (answer.endedAt === markedAt && answer.id <= (mark?.request_id ?? ""))
          const memory = memoryOf(answer.route)
          const changed = yield* mutate([[answer.route, answer.target]], (_, __, belief) => ({
            // Folded already, the call counted as good: the label takes that count over (as near as faded evidence allows).
            ...(folded ? { ...belief, alpha: Math.max(1, belief.alpha - (1 - quality)), beta: belief.beta + (1 - quality) } : withQuality(belief, quality, memory)),
            feedback: belief.feedback + 1
          }))
          // This worker routes by it at once; the others when they next read the database.
          const belief = changed.get(pairKey(answer.route, answer.target))
          if (belief !== undefined) snapshot.set(answer.route, answer.target, belief)
          return true
        }))),
      /** One fold in two steps, read then written, for tests of replicas racing (the loop does both every second). */
      planFold: run(planFold),
      applyFold: (plan: FoldPlan) => run(applyFold(plan)),
      /** Folds what ended and reads the beliefs again, now (tests and benches; the loop does it every second). */
      sync: run(Effect.gen(function*() {
        while ((yield* foldOnce) > 0) { /* next batch */ }
        yield* refresh
      }))
    }
  })
}) {}
