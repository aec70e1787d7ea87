/**
 * The consensus engine: one request fanned out to several models, as named steps: plan
 * (plan.ts: which models, within which budget), fan out (fan-out.ts: the waves, answers
 * taken in as they arrive, the rest cancelled once they can no longer change the outcome),
 * score (scoring.ts: the evaluators), decide (decide.ts: the heaviest group under the
 * weights in force, abstentions left out) and report (report.ts: the client's report and
 * the outcome kept for learning).
 */
import { Effect, FiberRef, Option } from "effect"
import { type ConsensusSettings, GatewayConfig } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import { newId } from "../domain/ids"
import { Router } from "../routing/router"
import type { AdmissionError } from "../billing/errors"
import { CurrentTicket, type RequestLimits, type Ticket } from "../billing/ticket"
import { LATENCY_PERCENTILE } from "../routing/constraints"
import { decideAnswer } from "./decide"
import { InvalidConsensusRequest, NoAnswer, NoUsableModel, NoValidAnswer } from "./errors"
import { Evaluators } from "./evaluators"
import { fanOut } from "./fan-out"
import { configPolicy } from "./learning/config-policy"
import type { Policy } from "./learning/policy"
import { ConsensusRandom, LearnedPolicies, OutcomeSink } from "./learning/source"
import { chooseMode, type Mode } from "./mode"
import type { ConsensusOutcome } from "./outcome"
import { voteWeightOf } from "./pick"
import { type Admit, plan, type Plan } from "./plan"
import type { CostOption } from "../billing/store/store"
import { reportOf } from "./report"
import type { ConsensusReport, ConsensusRequest } from "./request"
import { Round } from "./round"
import { applyScorers } from "./scoring"
import { Waves } from "./waves"
import { Telemetry } from "../telemetry/telemetry"
import { Tracing } from "../telemetry/tracing-tag"

export { InvalidConsensusRequest, NoAnswer, NoUsableModel, NoValidAnswer } from "./errors"
export type { Admit } from "./plan"

/**
 * The request held to the caller's own limits (`quorum.max_cost_usd`, `max_latency_ms` or
 * their headers): the fan-out's worst case within the cost, and no wait past the latency.
 * Models expected to be slower than it are left out by the plan.
 */
const heldTo = (request: ConsensusRequest, limits: RequestLimits | undefined, defaultTimeoutMs: number): ConsensusRequest => {
  if (limits === undefined) return request
  const cost = limits.max_cost_usd
  const latency = limits.max_latency_ms
  return {
    ...request,
    ...(cost === undefined ? {} : { max_cost_usd: Math.min(request.max_cost_usd ?? cost, cost) }),
    ...(latency === undefined ? {} : { timeout_ms: Math.max(1, Math.floor(Math.min(request.timeout_ms ?? defaultTimeoutMs, latency))) })
  }
}

/** The plan's admission, through the request's ticket: the largest fan-out the key's budget fits. */
const admitThrough = (ticket: Ticket, allowed: ReadonlyArray<string> | null): Admit<AdmissionError> => ({
  allowed,
  reserve: (options: Effect.Effect<ReadonlyArray<CostOption>>, models: ReadonlyArray<string>) =>
    Effect.map(ticket.admit(models, options), (admission) => ({
      index: admission?.option ?? 0,
      reserved: admission?.reservation !== undefined,
      keyId: admission?.keyId ?? null
    }))
})

/** Fails when no call answered, or every answer failed a gate: there is nothing to return. */
const somethingToReturn = (round: Round, called: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<number>, NoAnswer | NoValidAnswer> => {
  const answered = called.filter((i) => round.arrivals[i]?.status === "ok")
  const why = (i: number, gates: boolean) => {
    const arrival = round.arrivals[i]
    const what = arrival === undefined
      ? "no answer"
      : gates && arrival.status === "ok" ? `failed ${arrival.gateFailures.join(", ")}` : arrival.error ?? arrival.status
    return `${round.models[i]}: ${what}`
  }
  if (answered.length === 0) return new NoAnswer({ message: `No model answered: ${called.map((i) => why(i, false)).join("; ")}` })
  const eligible = answered.filter((i) => round.arrivals[i]?.gated !== true)
  if (eligible.length > 0) return Effect.succeed(eligible)
  // An answer a gate refused (JSON that breaks the schema) must not reach a client as if it were valid.
  return new NoValidAnswer({ message: `No answer passed the gate evaluators: ${called.map((i) => why(i, true)).join("; ")}` })
}

/** The calls' requests, one object per candidate: the meter's attempt records point to it. */
const requestsOf = (planned: Plan, sampling: Record<string, unknown>, request: ConsensusRequest): ReadonlyArray<ChatCompletionRequest> =>
  planned.models.map((model): ChatCompletionRequest => ({
    ...sampling,
    ...(planned.outputCap === undefined ? {} : { max_tokens: planned.outputCap }),
    model,
    messages: planned.messages,
    ...(request.response_format === undefined ? {} : { response_format: request.response_format }),
    stream: false
  }))

export class Consensus extends Effect.Service<Consensus>()("quorum/Consensus", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* Router
    const { registry } = yield* Evaluators
    const settings: ConsensusSettings = config.consensus
    const weightOf = (model: string) => voteWeightOf(config, model)
    const learnedPolicies = Option.getOrUndefined(yield* Effect.serviceOption(LearnedPolicies))
    const outcomes = Option.getOrUndefined(yield* Effect.serviceOption(OutcomeSink))
    // Exploration's draw; a test may inject a seeded source.
    const random = Option.match(yield* Effect.serviceOption(ConsensusRandom), { onNone: () => Math.random, onSome: (r) => r })
    const telemetry = Option.getOrUndefined(yield* Effect.serviceOption(Telemetry))
    const tracing = Option.getOrUndefined(yield* Effect.serviceOption(Tracing))

    /** The task's policy: learned once it has enough labels, else the config's weights and the exact rule. */
    const policyFor = (task: string, minAgreement: number) =>
      Effect.map(
        learnedPolicies === undefined ? Effect.succeed(undefined) : learnedPolicies.forTask(task),
        (learned): Policy => learned ?? configPolicy(new Map(), weightOf, minAgreement)
      )

    /** A model's recent p90 latency (a route's: its first target's), for a request's max_latency_ms. */
    const expectedLatencyMs = (model: string): number | undefined =>
      router.health.latencyMs(config.routes.get(model)?.targets[0]?.deployment ?? model, false, LATENCY_PERCENTILE)

    /**
     * Everything fixed before the first call: the request's ticket (admission of the
     * fan-out, the meter), the plan, the task's policy and the mode.
     */
    const prepare = Effect.fnUntraced(function*(request: ConsensusRequest, sampling: Record<string, unknown>) {
      const id = newId("consensus")
      const ticket = yield* FiberRef.get(CurrentTicket)
      if (ticket !== undefined) ticket.consensusId = id
      const startedAt = performance.now()
      const admit = ticket === undefined ? undefined : admitThrough(ticket, yield* ticket.allowed())
      const limits = ticket?.limits
      const held = heldTo(request, limits, settings.timeoutMs)
      const planned = yield* plan({ config, registry, expectedLatencyMs }, held, sampling, admit, limits?.max_latency_ms)
      const minAgreement = held.min_agreement ?? settings.minAgreement
      const strategy = held.strategy
      const policy = yield* policyFor(held.task ?? "default", minAgreement)
      // A score-only decision has no vote to settle, so nothing to cascade on.
      const chosen = chooseMode(held.mode, policy.rule === "learned", settings.learning.explore, random)
      const mode: Mode = strategy === "score" && chosen.mode === "cascade" ? "parallel" : chosen.mode
      const requests = requestsOf(planned, sampling, held)
      return {
        id,
        request: held,
        ticket,
        startedAt,
        planned,
        minAgreement,
        strategy,
        policy,
        mode,
        requests,
        round: new Round(planned.models, strategy, policy),
        waves: new Waves(planned.models, mode, settings.hedgeMs),
        evaluatorErrors: new Map<string, string>()
      }
    })
    type Prepared = Effect.Effect.Success<ReturnType<typeof prepare>>

    /** The calls, in waves, until the outcome can no longer change. */
    const callModels = (run: Prepared) =>
      fanOut({
        router,
        traced: tracing?.candidate,
        round: run.round,
        requests: run.requests,
        waves: run.waves,
        policy: run.policy,
        mode: run.mode,
        strategy: run.strategy,
        earlyStop: run.request.early_stop ?? true,
        minAgreement: run.minAgreement,
        timeoutMs: run.request.timeout_ms ?? settings.timeoutMs,
        startedAt: run.startedAt,
        hedgeMs: settings.hedgeMs,
        gates: run.planned.evaluators.filter((e) => e.evaluator.gate === true),
        evaluatorTimeoutMs: settings.evaluatorTimeoutMs,
        format: run.request.response_format,
        evaluatorErrors: run.evaluatorErrors
      })

    /** The scorers over the answers that may win, then the decision under the policy. */
    const decide = Effect.fnUntraced(function*(run: Prepared, called: ReadonlyArray<number>) {
      const { planned, round } = run
      const eligible = yield* somethingToReturn(round, called)
      const scorers = planned.evaluators.filter((e) => e.evaluator.gate !== true)
      const asked = run.requests[0]
      const scoreOf = asked === undefined
        ? () => 0
        : yield* applyScorers(scorers, round, eligible, { ...asked, model: "consensus" }, settings.evaluatorTimeoutMs, run.evaluatorErrors)
      const decision = decideAnswer({
        votes: round.votes(),
        eligible,
        ballotOf: (i) => round.ballotOf(i),
        scoreOf,
        strategy: run.strategy,
        minAgreement: run.minAgreement,
        modelOf: (i) => planned.models[i] ?? "",
        singleReason: planned.singleReason !== undefined && planned.models.length === 1 ? planned.singleReason : undefined
      })
      return { decision, scoreOf }
    })

    /** A consensus's steps, from the plan to the report and the outcome kept for learning. */
    const consensusOf = Effect.fnUntraced(function*(request: ConsensusRequest, sampling: Record<string, unknown>) {
      const run = yield* prepare(request, sampling)
      const { earlyStopped } = yield* callModels(run)
      const called = run.planned.models.flatMap((_, i) => (run.waves.launched.has(i) ? [i] : []))
      const { decision, scoreOf } = yield* decide(run, called)
      const { outcome, report } = reportOf({
        id: run.id,
        task: request.task ?? "default",
        round: run.round,
        waves: run.waves,
        mode: run.mode,
        policy: run.policy,
        strategy: run.strategy,
        decision,
        scoreOf,
        earlyStopped,
        jsonMode: run.planned.jsonMode,
        skipped: run.planned.skipped,
        requests: run.requests,
        meter: run.ticket,
        evaluatorErrors: run.evaluatorErrors,
        startedAt: run.startedAt
      })
      // Kept for feedback and learning, written off the request path.
      outcomes?.record(outcome, run.planned.keyId)
      telemetry?.consensusFinished({
        task: report.consensus.task ?? "default",
        decision: report.fallback !== null ? "fallback" : report.consensus.reached ? "agreed" : "most_confident",
        calls: called.length,
        waves: report.consensus.waves.length
      })
      return { report, outcome }
    })

    /**
     * Runs a consensus for the request the current ticket is for: the ticket admits the
     * fan-out against the caller's key and is charged for every call. Without a ticket
     * (the engine's own tests, benchmarks) nothing is admitted or charged.
     */
    const runWithOutcome = (
      request: ConsensusRequest,
      sampling: Record<string, unknown>
    ): Effect.Effect<{ readonly report: ConsensusReport; readonly outcome: ConsensusOutcome }, InvalidConsensusRequest | NoUsableModel | NoAnswer | NoValidAnswer | AdmissionError> =>
      consensusOf(request, sampling).pipe(
        Effect.scoped,
        Effect.tapError((error) =>
          Effect.sync(() => {
            // The models failed to give an answer (not a refused or invalid request).
            if (error instanceof NoAnswer || error instanceof NoValidAnswer) {
              telemetry?.consensusFinished({ task: request.task ?? "default", decision: "failed", calls: 0, waves: 0 })
            }
          })
        )
      )

    const run = (request: ConsensusRequest, sampling: Record<string, unknown>) =>
      Effect.map(runWithOutcome(request, sampling), ({ report }) => report)

    return { run, runWithOutcome, evaluators: registry }
  })
}) {}
