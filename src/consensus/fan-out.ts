/**
 * The calls of one consensus: the waves start (all at once, or a cascade's fewest most
 * reliable models first, hedged after hedge_ms), each answer is taken in as it arrives
 * (gates run on it alone), and the calls stop as soon as the outcome is settled: the
 * exact rule for `parallel`, the policy's for a cascade. What is still running then can no
 * longer matter and is interrupted, which aborts its upstream call; it is reported
 * cancelled (billed on an estimate), or as a timeout when timeout_ms ran out first.
 */
import type { TracingShape } from "../telemetry/tracing-tag"
import { Effect, Exit, Fiber, Option, Queue } from "effect"
import type { ChatCompletionRequest, ResponseFormat, ToolCall } from "../protocol/chat-request"
import type { Usage } from "../protocol/chat-response"
import type { RouteError, Router } from "../routing/router"
import { costMicros } from "../domain/money"
import { abstainsAlone } from "./abstain"
import type { Policy } from "./learning/policy"
import type { Mode } from "./mode"
import { normalizeToolCalls } from "./normalize"
import type { ConsensusRequest } from "./request"
import { type Arrival, candidateAt, type Round } from "./round"
import { applyGates, type ChosenEvaluator } from "./scoring"
import { group, settled } from "./vote"
import type { Waves } from "./waves"

/** What one call brought back. */
interface Reply {
  readonly content: string | null
  readonly toolCalls: ReadonlyArray<ToolCall> | undefined
  readonly usage: Usage | undefined
  readonly micro: number
  readonly finishReason: string | null | undefined
  readonly refusal: string | null | undefined
}

export interface FanOut {
  readonly router: Router
  /** Each candidate's span, when traces are on. */
  readonly traced?: TracingShape["candidate"] | undefined
  readonly round: Round
  /** One request object per candidate: the meter's attempt records point to it. */
  readonly requests: ReadonlyArray<ChatCompletionRequest>
  readonly waves: Waves
  readonly policy: Policy
  readonly mode: Mode
  readonly strategy: ConsensusRequest["strategy"]
  readonly earlyStop: boolean
  readonly minAgreement: number
  readonly timeoutMs: number
  readonly startedAt: number
  readonly hedgeMs: number
  readonly gates: ReadonlyArray<ChosenEvaluator>
  readonly evaluatorTimeoutMs: number
  readonly format: ResponseFormat | undefined
  readonly evaluatorErrors: Map<string, string>
}

/** Milliseconds to a tenth. */
export const round1 = (ms: number): number => Math.round(ms * 10) / 10

const describeError = (error: RouteError): string =>
  error._tag === "UpstreamError" ? `${error.kind}: ${error.message}` : error._tag === "UnknownModel" ? `unknown model ${error.model}` : "cooling down after repeated failures"

const replyOf = (routed: Effect.Effect.Success<ReturnType<Router["complete"]>>): Reply => {
  const usage = routed.value.usage
  const price = routed.deployment.price
  const choice = routed.value.choices[0]
  const message = choice?.message
  const toolCalls = message?.tool_calls !== undefined && message.tool_calls.length > 0 ? message.tool_calls : undefined
  const refusal = message !== undefined && "refusal" in message ? (message as { refusal?: string | null }).refusal : undefined
  return {
    content: message?.content ?? null,
    toolCalls,
    usage,
    micro: usage === undefined || price === undefined ? 0 : costMicros(price, usage),
    finishReason: choice?.finish_reason,
    refusal
  }
}

/** A call's end as the round records it, before gates. */
const arrivalOf = (exit: Exit.Exit<Reply, RouteError>, latencyMs: number): Arrival => {
  if (Exit.isFailure(exit)) {
    const failure = exit.cause._tag === "Fail" ? describeError(exit.cause.error) : "failed"
    return { status: "error", error: failure, latencyMs, gated: false, gateFailures: [], scores: {} }
  }
  const { content, micro, toolCalls, usage } = exit.value
  const common = { latencyMs, gated: false, gateFailures: [], scores: {}, answerMicroUsd: micro, ...(usage ? { usage } : {}) }
  if (toolCalls !== undefined) return { ...common, status: "ok", content: normalizeToolCalls(toolCalls).key, toolCalls }
  if (content === null) return { ...common, status: "error", error: "the model answered with neither text nor tool calls" }
  const alone = abstainsAlone(exit.value)
  return { ...common, status: "ok", content, ...(alone === undefined ? {} : { abstained: alone }) }
}

/** Whether the answers so far settle the outcome, so the calls still running can stop. */
const settledNow = (input: FanOut, received: number): boolean => {
  const { earlyStop, minAgreement, mode, policy, round, strategy, waves } = input
  if (strategy === "score" || !earlyStop) return false
  if (mode === "parallel") {
    const ballots = round.votes()
    const pending = round.pendingWeight()
    // Free-text votes would all abstain if an answer of another kind came: never settled by them alone.
    const provisional = strategy !== "similarity" && ballots.every((b) => b.answer.kind === "text")
    return pending > 0 && !provisional && ballots.length >= 2 && settled(group(ballots), pending, minAgreement)
  }
  // A cascade settled with calls still running: they can no longer change the answer.
  return mode === "cascade" && received < waves.launched.size && policy.next(round.models, round.observed()).length === 0
}

type Arrived = readonly [number, Exit.Exit<Reply, RouteError>, number]

/** One call, its end (and how long it took) queued for the fan-out to take in. */
const callOne = Effect.fnUntraced(function*(input: FanOut, queue: Queue.Queue<Arrived>, i: number) {
  const { requests, round, router } = input
  const t0 = performance.now()
  const answered = Effect.map(router.complete(candidateAt(requests, i)), replyOf)
  const exit = yield* Effect.exit(input.traced === undefined ? answered : input.traced(round.modelOf(i), answered))
  yield* Queue.offer(queue, [i, exit, round1(performance.now() - t0)] as const)
})

/** A wave started: each of its calls forked, its fiber kept to be interrupted once the outcome is settled. */
const launchWave = Effect.fnUntraced(function*(
  input: FanOut,
  queue: Queue.Queue<Arrived>,
  fibers: Array<Fiber.RuntimeFiber<void>>,
  indices: ReadonlyArray<number>,
  reason: string
) {
  input.waves.start(indices, reason, performance.now())
  for (const i of indices) fibers.push(yield* Effect.fork(callOne(input, queue, i)))
})

/** Runs the calls to their end (or the outcome's); returns whether it stopped early. */
export const fanOut: (input: FanOut) => Effect.Effect<{ readonly earlyStopped: boolean }> = Effect.fnUntraced(function*(input: FanOut) {
  const { mode, policy, requests, round, waves } = input
  const queue = yield* Queue.unbounded<Arrived>()
  const fibers: Array<Fiber.RuntimeFiber<void>> = []
  const launch = (indices: ReadonlyArray<number>, reason: string) => launchWave(input, queue, fibers, indices, reason)
  yield* launch(waves.first(policy), waves.firstReason())

  let received = 0
  let earlyStopped = false
  const deadline = input.startedAt + input.timeoutMs
  for (;;) {
    if (received === waves.launched.size) {
      // Every call made so far has answered: a cascade calls the next wave while the outcome is open.
      const more = mode === "cascade" ? waves.more(policy, round.observed()) : []
      if (more.length === 0) break
      yield* launch(more, waves.escalationReason(round.arrivals))
      continue
    }
    const hedgeAt = mode === "cascade" && waves.launched.size < round.models.length ? waves.hedgeAt : Number.POSITIVE_INFINITY
    const next = yield* Queue.take(queue).pipe(Effect.timeout(Math.max(0, Math.min(deadline, hedgeAt) - performance.now())), Effect.option)
    if (Option.isNone(next)) {
      if (performance.now() >= deadline) break
      // The wave has not settled within hedge_ms: the next one starts beside it.
      const more = waves.hedge(policy, round.observed())
      if (more.length > 0) yield* launch(more, `hedge: the previous wave had not settled within ${input.hedgeMs} ms`)
      else waves.hedgeAt = Number.POSITIVE_INFINITY
      continue
    }
    received++
    const [i, exit, latencyMs] = next.value
    const arrival = arrivalOf(exit, latencyMs)
    if (arrival.status === "ok" && arrival.content !== undefined) {
      const answer = { ...arrival, status: "ok" as const, content: arrival.content }
      const gated = { index: i, model: round.modelOf(i), answer, request: candidateAt(requests, i), format: input.format }
      yield* applyGates(input.gates, gated, input.evaluatorTimeoutMs, input.evaluatorErrors)
      round.arrivals[i] = answer
    } else {
      round.arrivals[i] = arrival
    }
    if (settledNow(input, received)) {
      earlyStopped = true
      break
    }
  }
  // Whatever is still running can no longer matter: cancel it now, before evaluators run
  // (the upstream calls are aborted). Forked fibers would also end with this one.
  yield* Fiber.interruptAll(fibers)
  for (const i of waves.launched) {
    if (round.arrivals[i] === undefined) {
      round.arrivals[i] = earlyStopped
        ? { status: "cancelled", gated: false, gateFailures: [], scores: {} }
        : { status: "error", error: `no answer within ${input.timeoutMs} ms (timeout_ms)`, gated: false, gateFailures: [], scores: {} }
    }
  }
  round.callsOver = true
  return { earlyStopped }
})
