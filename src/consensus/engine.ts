/**
 * The consensus engine: one request fanned out to several models in parallel, answers
 * counted as they arrive, the rest cancelled as soon as they can no longer change the
 * outcome, evaluators run, and the answer the models agree on returned (or, without
 * agreement, the best-scored one, marked as such).
 */
import { Effect, Exit, Fiber, FiberRef, Option, Queue, Schema } from "effect"
import { compileSchema, parseJsonAnswer } from "../../evaluators/json-schema"
import { type ConsensusSettings, GatewayConfig } from "../config/gateway-config"
import type { ChatCompletionRequest, Message } from "../protocol/chat-request"
import { type Usage, usageOf } from "../protocol/chat-response"
import { newId } from "../providers/build"
import type { RouteError } from "../routing/router"
import { Router } from "../routing/router"
import type { Candidate, Evaluator } from "./evaluator"
import { Evaluators } from "./evaluators"
import { normalize, type Normalized } from "./normalize"
import type { CandidateReport, ConsensusReport, ConsensusRequest } from "./request"
import { CurrentMeter, meterStorage } from "../spend/meter"
import { costMicros, formatUsd, usdToMicros } from "../spend/price"
import type { CostOption } from "../spend/store"
import { promptTokens } from "../spend/tokens"
import { worstCaseOf } from "../spend/worst-case"
import { fitBudget } from "./budget"
import { type Ballot, decide, group, settled } from "./vote"

export class InvalidConsensusRequest extends Schema.TaggedError<InvalidConsensusRequest>()("InvalidConsensusRequest", {
  message: Schema.String,
  param: Schema.NullOr(Schema.String)
}) {}

/**
 * Admits a fan-out against the caller's budget: given the costs of running the whole
 * fan-out, then one model fewer, and so on, it reserves the first that fits and says
 * which, and whether anything was reserved (then calls must stay within their estimate).
 */
export interface Admit<E = unknown> {
  /** `options` is called only when the caller's key has a budget or a token limit. */
  (options: () => ReadonlyArray<CostOption>, models: ReadonlyArray<string>): Effect.Effect<{ readonly index: number; readonly reserved: boolean }, E>
  /** The models the caller may use (null: any), for a fan-out Quorum picks. */
  readonly allowed: ReadonlyArray<string> | null
}

export class NoAnswer extends Schema.TaggedError<NoAnswer>()("NoAnswer", { message: Schema.String }) {}

interface Arrival {
  status: "ok" | "error" | "cancelled"
  content?: string
  usage?: Usage
  costMicroUsd?: number
  latencyMs?: number
  error?: string
  /** Excluded by a gate evaluator. */
  gated: boolean
  scores: Record<string, number>
}

/** Milliseconds to a tenth. */
const round = (ms: number): number => Math.round(ms * 10) / 10

const invalid = (param: string | null, message: string) => new InvalidConsensusRequest({ message, param })

const describeError = (error: RouteError): string =>
  error._tag === "UpstreamError" ? `${error.kind}: ${error.message}` : error._tag === "UnknownModel" ? `unknown model ${error.model}` : "cooling down after repeated failures"

/** Runs an evaluator under a timeout; a failure is a value, never the request's failure. */
const runEvaluator = (evaluator: Evaluator, candidates: ReadonlyArray<Candidate>, request: ChatCompletionRequest, options: Record<string, unknown>, timeoutMs: number) =>
  Effect.flatMap(FiberRef.get(CurrentMeter), (meter) =>
    Effect.tryPromise({
      try: async (signal) => await meterStorage.run(meter, () => evaluator.evaluate({ request, candidates, options, signal })),
      catch: (error) => (error instanceof Error ? error.message : String(error))
    })).pipe(
    Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => `timed out after ${timeoutMs} ms` }),
    Effect.flatMap((scores) =>
      scores.length === candidates.length && scores.every((s) => typeof s === "number" && s >= 0 && s <= 1)
        ? Effect.succeed(scores)
        : Effect.fail(`returned ${scores.length} scores for ${candidates.length} candidates, or scores outside [0, 1]`)
    ),
    Effect.either
  )

/** `fanout` models: the heaviest voters first, alternating providers so that errors are less correlated. */
export const pickModels = (
  config: { deployments: ReadonlyMap<string, { id: string; provider: string; voteWeight: number }> },
  fanout: number,
  allowed: ReadonlyArray<string> | null = null
): ReadonlyArray<string> => {
  const byProvider = new Map<string, Array<{ id: string; voteWeight: number }>>()
  for (const d of config.deployments.values()) {
    if (allowed === null || allowed.includes(d.id)) byProvider.set(d.provider, [...(byProvider.get(d.provider) ?? []), d])
  }
  const queues = [...byProvider.values()].map((q) => q.sort((a, b) => b.voteWeight - a.voteWeight))
  queues.sort((a, b) => b[0]!.voteWeight - a[0]!.voteWeight)
  const picked: Array<string> = []
  while (picked.length < fanout && queues.some((q) => q.length > 0)) {
    for (const q of queues) if (picked.length < fanout && q.length > 0) picked.push(q.shift()!.id)
  }
  return picked
}

export class Consensus extends Effect.Service<Consensus>()("quorum/Consensus", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* Router
    const { registry } = yield* Evaluators
    const settings: ConsensusSettings = config.consensus
    const weightOf = (model: string) => config.deployments.get(model)?.voteWeight ?? 1

    const plan = <E>(request: ConsensusRequest, sampling: Record<string, unknown>, admit: Admit<E> | undefined) =>
      Effect.gen(function*() {
        if ((request.messages === undefined) === (request.prompt === undefined)) {
          return yield* invalid("messages", "Give either `messages` or `prompt`")
        }
        if (request.models !== undefined && request.fanout !== undefined) {
          return yield* invalid("fanout", "Give either `models` or `fanout`")
        }
        const known = [...config.routes.keys(), ...config.deployments.keys()]
        // Quorum's own pick draws only on the models the caller's key may use.
        const models = request.models ?? pickModels(config, request.fanout ?? settings.defaultFanout, admit?.allowed ?? null)
        for (const [i, model] of models.entries()) {
          if (!config.routes.has(model) && !config.deployments.has(model)) {
            return yield* invalid(`models[${i}]`, `Unknown model \`${model}\`; available: ${known.join(", ")}`)
          }
        }
        if (models.length > settings.maxFanout) {
          return yield* invalid(request.models === undefined ? "fanout" : "models", `At most ${settings.maxFanout} models per consensus request (got ${models.length})`)
        }
        const format = request.response_format
        const jsonMode = format !== undefined && format.type !== "text"
        const chosen = request.evaluators ?? [
          { name: "answer_match" },
          { name: "consistency" },
          ...(jsonMode ? [{ name: "json_schema" }] : [])
        ]
        const evaluators: Array<{ evaluator: Evaluator; weight: number; options: Record<string, unknown> }> = []
        for (const [i, choice] of chosen.entries()) {
          const evaluator = registry.get(choice.name)
          if (evaluator === undefined) {
            return yield* invalid(`evaluators[${i}].name`, `Unknown evaluator \`${choice.name}\`; registered: ${[...registry.keys()].join(", ")}`)
          }
          evaluators.push({ evaluator, weight: "weight" in choice ? choice.weight ?? 1 : 1, options: "options" in choice ? choice.options ?? {} : {} })
        }
        if (format?.type === "json_schema" && format.json_schema.schema !== undefined) {
          const compiled = compileSchema(format.json_schema.schema)
          if (compiled._tag === "Left") return yield* invalid("response_format.json_schema.schema", `Invalid JSON schema: ${compiled.left}`)
        }
        const messages: ReadonlyArray<Message> = request.messages ?? [{ role: "user", content: request.prompt! }]
        const requested = sampling.max_completion_tokens ?? sampling.max_tokens
        const explicitOutput = typeof requested === "number" ? requested : undefined
        if (request.max_cost_usd === undefined && admit === undefined) {
          return { models, skipped: [], evaluators, messages, jsonMode, outputCap: undefined, budgetReason: undefined }
        }

        const output = explicitOutput ?? settings.defaultOutputTokens
        // Counted only if max_cost_usd or the caller's key needs the estimate: otherwise no tokenizer runs.
        let counted: number | undefined
        const prompt = () => (counted ??= promptTokens(messages))
        const estimate = (m: string) => worstCaseOf(config, m, prompt(), output)
        let kept = models
        let skipped: Array<{ model: string; reason: string }> = []
        let budgetReason: string | undefined
        if (request.max_cost_usd !== undefined) {
          const ceiling = usdToMicros(request.max_cost_usd)
          const fit = fitBudget(models, weightOf, estimate, ceiling)
          if (fit.kept.length === 0) {
            return yield* invalid(
              "max_cost_usd",
              fit.cheapestMicroUsd === undefined
                ? "No model of this request has a configured price, so none can be kept within max_cost_usd"
                : `max_cost_usd ($${request.max_cost_usd}) is below the cheapest model's estimated cost ($${formatUsd(fit.cheapestMicroUsd)} for ${prompt()} prompt and ${output} output tokens)`
            )
          }
          kept = fit.kept
          skipped = [...fit.skipped]
          budgetReason = "budget: only one model fits max_cost_usd"
        }
        let capped = request.max_cost_usd !== undefined
        if (admit !== undefined) {
          // The key's budget: the whole fan-out if it fits, else fewer models (the least
          // trusted dropped first), down to the single most trusted one.
          const byTrust = [...kept].sort((a, b) => weightOf(b) - weightOf(a))
          const options = () =>
            byTrust.map((_, i) => {
              const size = byTrust.length - i
              return { micros: byTrust.slice(0, size).reduce((sum, m) => sum + (estimate(m) ?? 0), 0), tokens: size * (prompt() + output) }
            })
          const admitted = yield* admit(options, models)
          if (admitted.index > 0) {
            const dropped = new Set(byTrust.slice(byTrust.length - admitted.index))
            for (const model of kept) if (dropped.has(model)) skipped.push({ model, reason: "the fan-out does not fit the key's remaining budget" })
            kept = kept.filter((m) => !dropped.has(m))
            budgetReason = "budget: only one model fits the key's remaining budget"
          }
          capped ||= admitted.reserved
        }
        // Each call is capped at the output it was priced for, so the estimate is a bound.
        return { models: kept, skipped, evaluators, messages, jsonMode, outputCap: capped && explicitOutput === undefined ? output : undefined, budgetReason }
      })

    const run = <E>(
      request: ConsensusRequest,
      sampling: Record<string, unknown>,
      admit?: Admit<E>
    ): Effect.Effect<ConsensusReport, InvalidConsensusRequest | NoAnswer | E> =>
      Effect.gen(function*() {
        const id = newId("consensus")
        const meter = yield* FiberRef.get(CurrentMeter)
        if (meter !== undefined) meter.consensusId = id
        const startedAt = performance.now()
        const { budgetReason, evaluators, jsonMode, messages, models, outputCap, skipped } = yield* plan(request, sampling, admit)
        const minAgreement = request.min_agreement ?? settings.minAgreement
        const timeoutMs = request.timeout_ms ?? settings.timeoutMs
        const earlyStop = request.early_stop ?? true
        const strategy = request.strategy
        const chat = (model: string): ChatCompletionRequest => ({
          ...sampling,
          ...(outputCap === undefined ? {} : { max_tokens: outputCap }),
          model,
          messages,
          ...(request.response_format === undefined ? {} : { response_format: request.response_format }),
          stream: false
        })
        const gates = evaluators.filter((e) => e.evaluator.gate === true)
        const scorers = evaluators.filter((e) => e.evaluator.gate !== true)
        const evaluatorErrors = new Map<string, string>()

        const arrivals: Array<Arrival | undefined> = models.map(() => undefined)
        const ballotOf = (i: number, content: string): Ballot => {
          const answer: Normalized = strategy === "similarity"
            ? { kind: "text", key: content.replace(/\s+/g, " ").trim().toLowerCase() }
            : normalize(content)
          return { id: String(i), answer, weight: weightOf(models[i]!) }
        }

        const queue = yield* Queue.unbounded<readonly [number, Exit.Exit<{ content: string | null; usage: Usage | undefined; micro: number }, RouteError>, number]>()
        const fibers = yield* Effect.forEach(models, (model, i) =>
          Effect.fork(
            Effect.gen(function*() {
              const t0 = performance.now()
              const exit = yield* Effect.exit(router.complete(chat(model)).pipe(
                Effect.map((routed) => {
                  const usage = routed.value.usage
                  const price = routed.deployment.price
                  const micro = usage === undefined || price === undefined ? 0 : costMicros(price, usage)
                  return { content: routed.value.choices[0]?.message.content ?? null, usage, micro }
                })
              ))
              yield* Queue.offer(queue, [i, exit, round(performance.now() - t0)] as const)
            })
          ))

        let received = 0
        let earlyStopped = false
        const deadline = startedAt + timeoutMs
        while (received < models.length) {
          const next = yield* Queue.take(queue).pipe(Effect.timeout(Math.max(0, deadline - performance.now())), Effect.option)
          if (Option.isNone(next)) break
          received++
          const [i, exit, latencyMs] = next.value
          if (Exit.isFailure(exit)) {
            const failure = exit.cause._tag === "Fail" ? describeError(exit.cause.error) : "failed"
            arrivals[i] = { status: "error", error: failure, latencyMs, gated: false, scores: {} }
            continue
          }
          const { content, micro, usage } = exit.value
          if (content === null) {
            arrivals[i] = { status: "error", error: "the model answered without text content", latencyMs, gated: false, scores: {}, costMicroUsd: micro, ...(usage ? { usage } : {}) }
            continue
          }
          const arrival: Arrival = { status: "ok", content, latencyMs, gated: false, scores: {}, costMicroUsd: micro, ...(usage ? { usage } : {}) }
          // Gates judge each answer alone, as it arrives, so that early stop counts only valid votes.
          for (const gate of gates) {
            const result = yield* runEvaluator(gate.evaluator, [{ id: String(i), model: models[i]!, content }], chat(models[i]!), gate.options, settings.evaluatorTimeoutMs)
            if (result._tag === "Left") evaluatorErrors.set(gate.evaluator.name, result.left)
            else {
              arrival.scores[gate.evaluator.name] = result.right[0]!
              if (result.right[0] === 0) arrival.gated = true
            }
          }
          arrivals[i] = arrival
          if (!earlyStop || strategy === "score") continue
          const ballots = arrivals.flatMap((a, k) => (a?.status === "ok" && !a.gated ? [ballotOf(k, a.content!)] : []))
          const pending = models.reduce((sum, m, k) => (arrivals[k] === undefined ? sum + weightOf(m) : sum), 0)
          if (pending > 0 && ballots.length >= 2 && settled(group(ballots), pending, minAgreement)) {
            earlyStopped = true
            break
          }
        }
        // Whatever is still running can no longer matter: cancel it now, before evaluators run
        // (the upstream calls are aborted). Forked fibers would also end with this one.
        yield* Fiber.interruptAll(fibers)
        for (const [i] of models.entries()) {
          if (arrivals[i] === undefined) {
            arrivals[i] = earlyStopped
              ? { status: "cancelled", gated: false, scores: {} }
              : { status: "error", error: `no answer within ${timeoutMs} ms (timeout_ms)`, gated: false, scores: {} }
          }
        }

        const answered = arrivals.flatMap((a, i) => (a!.status === "ok" ? [i] : []))
        if (answered.length === 0) {
          return yield* new NoAnswer({
            message: `No model answered: ${arrivals.map((a, i) => `${models[i]}: ${a!.error ?? a!.status}`).join("; ")}`
          })
        }
        const eligible = answered.filter((i) => !arrivals[i]!.gated)
        const scored = eligible.length > 0 ? eligible : answered
        const candidates: Array<Candidate> = scored.map((i) => ({ id: String(i), model: models[i]!, content: arrivals[i]!.content! }))
        for (const scorer of scorers) {
          const result = yield* runEvaluator(scorer.evaluator, candidates, chat("consensus"), scorer.options, settings.evaluatorTimeoutMs)
          if (result._tag === "Left") evaluatorErrors.set(scorer.evaluator.name, result.left)
          else for (const [k, i] of scored.entries()) arrivals[i]!.scores[scorer.evaluator.name] = result.right[k]!
        }
        const scoreOf = (i: number): number => {
          let total = 0
          let weights = 0
          for (const { evaluator, weight } of scorers) {
            const s = arrivals[i]!.scores[evaluator.name]
            if (s === undefined) continue
            total += s * weight
            weights += weight
          }
          return weights === 0 ? 0 : total / weights
        }
        const best = (indices: ReadonlyArray<number>) => indices.reduce((a, b) => (scoreOf(b) > scoreOf(a) ? b : a))

        const groups = group(eligible.map((i) => ballotOf(i, arrivals[i]!.content!)))
        const decision = decide(groups, minAgreement)
        let answerIndex: number
        let reached = false
        let supporting: ReadonlyArray<string>
        let fallback: ConsensusReport["fallback"] = null
        if (eligible.length < 2) {
          answerIndex = best(scored)
          supporting = [models[answerIndex]!]
          fallback = {
            reason: eligible.length === 0
              ? "no answer passed the gate evaluators"
              : budgetReason !== undefined && models.length === 1
              ? budgetReason
              : "only one model gave a usable answer",
            mode: "single",
            model: models[answerIndex]!
          }
        } else if (strategy !== "score" && decision.reached) {
          const members = decision.winner!.members.map(Number)
          answerIndex = best(members)
          reached = true
          supporting = members.map((i) => models[i]!)
        } else {
          answerIndex = best(eligible)
          const home = groups.find((g) => g.members.includes(String(answerIndex)))
          reached = strategy === "score" && home !== undefined && decision.cast > 0 && home.weight / decision.cast >= minAgreement
          supporting = (home?.members ?? [String(answerIndex)]).map((i) => models[Number(i)]!)
        }
        const content = arrivals[answerIndex]!.content!
        const home = groups.find((g) => g.members.includes(String(answerIndex)))
        const agreement = eligible.length < 2 ? (eligible.length === 1 ? 1 : 0) : home === undefined ? 0 : home.weight / decision.cast
        const parsed = jsonMode ? parseJsonAnswer(content) : undefined

        const report: Array<CandidateReport> = [...arrivals.map((a, i) => ({
          model: models[i]!,
          status: a!.status,
          ...(a!.content === undefined ? {} : { content: a!.content }),
          scores: a!.scores,
          ...(a!.status === "ok" && !a!.gated ? { score: scoreOf(i) } : {}),
          ...(a!.latencyMs === undefined ? {} : { latency_ms: a!.latencyMs }),
          ...(a!.usage === undefined ? {} : { usage: a!.usage }),
          ...(a!.costMicroUsd === undefined ? {} : { cost_usd: a!.costMicroUsd / 1e6 }),
          ...(a!.error === undefined ? {} : { error: a!.error })
        })), ...skipped.map((s): CandidateReport => ({ model: s.model, status: "skipped", scores: {}, error: `skipped: ${s.reason}` }))]
        const totalMicro = arrivals.reduce((sum, a) => sum + (a!.costMicroUsd ?? 0), 0)
        const usage = arrivals.reduce(
          (sum, a) => usageOf(sum.prompt_tokens + (a!.usage?.prompt_tokens ?? 0), sum.completion_tokens + (a!.usage?.completion_tokens ?? 0)),
          usageOf(0, 0)
        )
        return {
          id,
          object: "consensus" as const,
          answer: { content, ...(parsed?.ok === true ? { parsed: parsed.value } : {}), model: models[answerIndex]! },
          consensus: {
            reached,
            strategy: strategy ?? (home?.kind === "text" ? "similarity" : "vote"),
            agreement,
            confidence: reached ? agreement : scoreOf(answerIndex),
            supporting_models: supporting,
            early_stopped: earlyStopped
          },
          candidates: report,
          evaluator_errors: [...evaluatorErrors].map(([name, error]) => ({ name, error })),
          fallback,
          usage,
          cost_usd: totalMicro / 1e6,
          latency_ms: round(performance.now() - startedAt)
        }
      }).pipe(Effect.scoped)

    return { run, evaluators: registry }
  })
}) {}
