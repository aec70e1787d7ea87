/**
 * Learning from outcomes, live: consensus outcomes written off the request path (a queue
 * and a writer fiber, like the ledger), labels from feedback, each task's reliability,
 * and its learned policy, recomputed by a background fiber after new labels and kept in
 * the database (so replicas share it and a restart keeps it).
 */
import { Deferred, Duration, Effect, FiberId, Layer, Queue, Schedule } from "effect"
import { GatewayConfig } from "../../config/gateway-config"
import { type SpendStoreError } from "../../billing/errors"
import { type LabelledOutcome, type OutcomeEntry, OutcomeStore } from "./outcome-store"
import { formatUsd } from "../../domain/money"
import { pickModels, voteWeightOf } from "../pick"
import type { ConsensusOutcome } from "../outcome"
import { answerKinds } from "./kinds"
import { learnPolicy, newcomerWeight, nextWave } from "./learn"
import type { LabelledVote, ModelRecord, Policy } from "./policy"
import { LearnedPolicies, OutcomeSink } from "./source"

const DAY_MS = 86_400_000
/** How long a replica trusts its copy of a task's learned policy before reading the database again. */
const POLICY_CACHE_MS = 2_000
const MAX_BATCH = 500
const MAX_PENDING = 100_000

/** What is kept of a learned policy: enough to rebuild it without relearning. */
interface LearnedState {
  readonly weights: Record<string, number>
  readonly slack: number
  readonly sharpness: number
  readonly records: ReadonlyArray<ModelRecord>
  /** Absent in states stored before answer kinds were learned. */
  readonly kinds?: ReadonlyArray<string>
}

/** A labelled outcome as the learner sees it: cancelled calls were never answers. */
export const labelledVote = (item: LabelledOutcome): LabelledVote => ({
  answers: new Map(item.candidates.filter((c) => c.status !== "cancelled").map((c) => [c.model, c.group])),
  truth: item.truth
})

/** The policy a stored state describes; `prior` weighs models the labels never saw (see newcomerWeight). */
export const policyOfState = (state: LearnedState, labels: number, prior: (model: string) => number): Policy => {
  const weights = new Map(Object.entries(state.weights))
  const newcomer = (model: string) => newcomerWeight(weights, state.sharpness, prior(model))
  return {
    rule: "learned",
    labels,
    weights,
    records: state.records,
    answerKinds: state.kinds === undefined ? undefined : new Set(state.kinds),
    weightOf: (model) => weights.get(model) ?? newcomer(model),
    next: (candidates, observed) => nextWave(candidates, observed, weights, state.slack, newcomer)
  }
}

export interface ModelReliability {
  readonly model: string
  readonly labelled: number
  readonly answered: number
  readonly correct: number
  /** Right when it answered; null before any answer was labelled. */
  readonly accuracy: number | null
  readonly abstention_rate: number | null
  readonly mean_latency_ms: number | null
  readonly mean_cost_usd: string | null
  /** What the config gives it (weight, or log-odds of accuracy, else 1). */
  readonly config_weight: number
  /** What labels taught, once the task has a learned policy. */
  readonly learned_weight: number | null
  readonly weight: number
}

export class Learning extends Effect.Service<Learning>()("quorum/Learning", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const store = yield* OutcomeStore
    const settings = config.consensus.learning
    const queue = yield* Queue.unbounded<OutcomeEntry>()
    const pending = new Map<string, Deferred.Deferred<void>>()
    const dirty = yield* Queue.unbounded<string>()
    const cache = new Map<string, { at: number; policy: Policy | undefined }>()
    let dropped = 0
    const since = () => Date.now() - settings.retentionDays * DAY_MS

    const writer = Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      yield* Effect.sleep(Duration.millis(config.spend.flushMs))
      const batch = [first, ...(yield* Queue.takeUpTo(queue, MAX_BATCH - 1))]
      yield* store.writeBatch(batch).pipe(
        Effect.tapError((error) => Effect.logError(`consensus outcomes: ${batch.length} not written yet, retrying: ${error.message}`)),
        Effect.retry(Schedule.exponential("100 millis", 2).pipe(Schedule.union(Schedule.spaced("5 seconds"))))
      )
      for (const { outcome } of batch) {
        const waiting = pending.get(outcome.id)
        pending.delete(outcome.id)
        if (waiting !== undefined) yield* Deferred.succeed(waiting, undefined)
      }
    }).pipe(
      Effect.catchAllDefect((defect) => Effect.logError(`consensus outcomes: writer failed: ${String(defect)}`).pipe(Effect.zipRight(Effect.sleep("1 second")))),
      Effect.forever
    )

    /** Relearns a task from its labelled history; below min_labels the config policy stands. */
    const relearn = Effect.fnUntraced(function*(task: string) {
      const outcomes = yield* store.labelled(task, since())
      const history = outcomes.map(labelledVote)
      if (history.length < settings.minLabels) {
        yield* store.deletePolicy(task)
      } else {
        const models = new Set(history.flatMap((h) => [...h.answers.keys()]))
        const prior = new Map([...models].map((m) => [m, voteWeightOf(config, m)]))
        const learned = learnPolicy(history, prior)
        const kinds = answerKinds(outcomes)
        const state: LearnedState = {
          weights: Object.fromEntries(learned.weights),
          slack: learned.slack,
          sharpness: learned.sharpness,
          records: learned.records,
          ...(kinds === undefined ? {} : { kinds })
        }
        yield* store.savePolicy(task, history.length, JSON.stringify(state), Date.now())
      }
      cache.delete(task)
    })

    const learner = Effect.gen(function*() {
      const task = yield* Queue.take(dirty)
      // Labels come in bursts: one recomputation per task for all that arrived meanwhile.
      const more = yield* Queue.takeAll(dirty)
      for (const t of new Set([task, ...more])) {
        yield* relearn(t).pipe(Effect.catchAll((error) => Effect.logError(`consensus learning: task ${t} not relearned: ${error.message}`)))
      }
    }).pipe(Effect.forever)

    const sweeper = Effect.suspend(() => store.sweep(since())).pipe(
      Effect.catchAll((error) => Effect.logWarning(`consensus outcomes: retention sweep failed: ${error.message}`)),
      Effect.repeat(Schedule.spaced("1 hour"))
    )

    yield* Effect.forkScoped(writer)
    yield* Effect.forkScoped(learner)
    yield* Effect.forkScoped(sweeper)
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(queue), (rest) =>
        rest.length === 0 ? Effect.void : store.writeBatch([...rest]).pipe(
          Effect.timeout("10 seconds"),
          Effect.catchAllCause(() => Effect.logError(`consensus outcomes: ${rest.length} lost at shutdown`))
        )))

    /** The models a request of this task calls when it names none: its preset's, else Quorum's default pick. */
    const likelyCandidates = (task: string): ReadonlyArray<string> => {
      const preset = config.consensus.presets.get(task)
      return preset?.models ?? pickModels(config, preset?.fanout ?? config.consensus.defaultFanout)
    }

    // Asked on every consensus request: its generator is made once, here (README, Development).
    const forTask: (task: string) => Effect.Effect<Policy | undefined> = Effect.fnUntraced(function*(task: string) {
      const cached = cache.get(task)
      if (cached !== undefined && Date.now() - cached.at < POLICY_CACHE_MS) return cached.policy
      const stored = yield* store.loadPolicy(task).pipe(Effect.catchAll((error) =>
        Effect.logWarning(`consensus learning: policy of ${task} unreadable, using config: ${error.message}`).pipe(Effect.as(undefined))
      ))
      const policy = stored === undefined || stored.labels < settings.minLabels
        ? undefined
        : policyOfState(JSON.parse(stored.state) as LearnedState, stored.labels, (model) => voteWeightOf(config, model))
      cache.set(task, { at: Date.now(), policy })
      return policy
    })

    return {
      /** Queues an outcome; the request does not wait for it. */
      record: (outcome: ConsensusOutcome, keyId: string | null): void => {
        // While the database is away outcomes wait in memory, up to a bound; beyond it they are dropped (feedback on them is a 404).
        if (pending.size >= MAX_PENDING) {
          if (dropped++ % 1_000 === 0) Effect.runFork(Effect.logError(`consensus outcomes: ${MAX_PENDING} waiting; dropping outcomes until the database is back`))
          return
        }
        pending.set(outcome.id, Deferred.unsafeMake<void>(FiberId.none))
        queue.unsafeOffer({ outcome, keyId, createdAt: Date.now() })
      },
      /** Waits until an outcome this process queued is in the database (at once for any other id). */
      written: (id: string): Effect.Effect<void> => {
        const waiting = pending.get(id)
        // Bounded: with the database away, feedback answers (a 503 or a 404) instead of hanging.
        return waiting === undefined ? Effect.void : Deferred.await(waiting).pipe(Effect.timeout("10 seconds"), Effect.ignore)
      },
      find: (id: string) => store.find(id, since()),
      label: (id: string, task: string, label: string, truth: string | null): Effect.Effect<void, SpendStoreError> =>
        Effect.zipRight(store.label(id, label, truth, Date.now()), Queue.offer(dirty, task)),
      forTask,
      keyIdOf: store.keyIdOf,
      reliability: Effect.fnUntraced(function*(task: string) {
        const items = yield* store.labelled(task, since())
        const policy = yield* forTask(task)
        const models = new Map<string, { labelled: number; answered: number; correct: number; latency: number; latencies: number; cost: number; calls: number }>()
        // Before any label, the models the task would call show the weights config gives them.
        for (const model of likelyCandidates(task)) models.set(model, { labelled: 0, answered: 0, correct: 0, latency: 0, latencies: 0, cost: 0, calls: 0 })
        for (const item of items) {
          for (const c of item.candidates) {
            if (c.status === "cancelled") continue
            const m = models.get(c.model) ?? { labelled: 0, answered: 0, correct: 0, latency: 0, latencies: 0, cost: 0, calls: 0 }
            m.labelled++
            if (c.group !== null) {
              m.answered++
              if (item.truth !== null && c.group === item.truth) m.correct++
            }
            if (c.latencyMs !== null) {
              m.latency += c.latencyMs
              m.latencies++
            }
            m.cost += c.costMicros
            m.calls++
            models.set(c.model, m)
          }
        }
        const data: Array<ModelReliability> = [...models.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([model, m]) => {
          const configWeight = voteWeightOf(config, model)
          const learned = policy?.weights.get(model)
          return {
            model,
            labelled: m.labelled,
            answered: m.answered,
            correct: m.correct,
            accuracy: m.answered === 0 ? null : m.correct / m.answered,
            abstention_rate: m.labelled === 0 ? null : 1 - m.answered / m.labelled,
            mean_latency_ms: m.latencies === 0 ? null : Math.round((m.latency / m.latencies) * 10) / 10,
            mean_cost_usd: m.calls === 0 ? null : formatUsd(Math.round(m.cost / m.calls)),
            config_weight: configWeight,
            learned_weight: learned ?? null,
            // A model the labels never saw weighs its prior sharpened like the learned ones.
            weight: policy?.weightOf(model) ?? configWeight
          }
        })
        return {
          object: "reliability" as const,
          task,
          rule: policy === undefined ? "config" as const : "learned" as const,
          labels: items.length,
          learned_from: policy?.labels ?? 0,
          min_labels: settings.minLabels,
          /** The kinds of answer the task's right answers take, once learned (others abstain). */
          answer_kinds: policy?.answerKinds === undefined ? null : [...policy.answerKinds],
          data
        }
      })
    }
  })
}) {}

/** The engine's source of learned policies, from the Learning service. */
export const LearnedPoliciesLive = Layer.effect(LearnedPolicies, Effect.map(Learning, (learning) => ({ forTask: learning.forTask })))

/** Where the engine's outcomes go: the Learning service's queue. */
export const OutcomeSinkLive = Layer.effect(OutcomeSink, Effect.map(Learning, (learning) => ({ record: learning.record })))
