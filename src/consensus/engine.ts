/**
 * The consensus engine: one request fanned out to several models in parallel, answers
 * counted as they arrive, the rest cancelled as soon as they can no longer change the
 * outcome, evaluators run, and the answer the models agree on returned (or, without
 * agreement, the best-scored one, marked as such).
 */
import { Effect, Exit, Fiber, FiberRef, Option, Queue, Schema } from "effect"
import { compileSchema, parseJsonAnswer } from "../../evaluators/json-schema"
import { type ConsensusSettings, GatewayConfig } from "../config/gateway-config"
import type { ChatCompletionRequest, Message, ResponseFormat, ToolCall } from "../protocol/chat-request"
import { type Usage, usageOf } from "../protocol/chat-response"
import { newId } from "../providers/build"
import type { RouteError } from "../routing/router"
import { Router } from "../routing/router"
import type { Candidate, Evaluator } from "./evaluator"
import { Evaluators } from "./evaluators"
import { normalize, normalizeToolCalls, type Normalized } from "./normalize"
import { pickModels, voteWeightOf } from "./pick"
import type { CandidateReport, ConsensusReport, ConsensusRequest } from "./request"
import { type AttemptRecord, CurrentMeter, meterStorage } from "../spend/meter"
import { costMicros, formatUsd, usdToMicros } from "../spend/price"
import type { CostOption } from "../spend/store"
import { promptTokens } from "../spend/tokens"
import { worstCaseOf } from "../spend/worst-case"
import { fitBudget } from "./budget"
import { type Ballot, decide, group, reaches, settled } from "./vote"

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
  /** The models and routes the caller may use (null: any), for a fan-out Quorum picks. */
  readonly allowed: ReadonlyArray<string> | null
}

export class NoAnswer extends Schema.TaggedError<NoAnswer>()("NoAnswer", { message: Schema.String }) {}

/** Every answer was excluded by a gate (an invalid JSON answer, say): there is nothing valid to return. */
export class NoValidAnswer extends Schema.TaggedError<NoValidAnswer>()("NoValidAnswer", { message: Schema.String }) {}

/** A fan-out Quorum picks found nothing the caller's key allows (a key for `consensus` only, say). */
export class NoUsableModel extends Schema.TaggedError<NoUsableModel>()("NoUsableModel", { allowed: Schema.Array(Schema.String) }) {}

interface Arrival {
  status: "ok" | "error" | "cancelled"
  /** The text; for tool calls, their canonical JSON (what evaluators read). */
  content?: string
  toolCalls?: ReadonlyArray<ToolCall>
  usage?: Usage
  /** What the answering call cost, from its usage (used when no meter records the attempts). */
  answerMicroUsd?: number
  latencyMs?: number
  error?: string
  /** Excluded by a gate evaluator; `gateFailures` says which and why. */
  gated: boolean
  gateFailures: Array<string>
  scores: Record<string, number>
}

/** An attempt's cost as the ledger bills it: the provider's usage, else an estimate (a cancelled call). */
const attemptMicros = (attempt: AttemptRecord): number =>
  attempt.deployment.price === undefined ? 0 : costMicros(attempt.deployment.price, attempt.tokens().usage)

/** Why an answer is not valid JSON for the request's schema, for the error that says no answer was. */
const schemaProblem = (content: string, format: ResponseFormat | undefined): string | undefined => {
  const parsed = parseJsonAnswer(content)
  if (!parsed.ok) return "not valid JSON"
  if (format?.type !== "json_schema" || format.json_schema.schema === undefined) return undefined
  const compiled = compileSchema(format.json_schema.schema)
  if (compiled._tag === "Left" || compiled.right(parsed.value)) return undefined
  const first = compiled.right.errors?.[0]
  return first === undefined ? undefined : `${first.instancePath === "" ? "the answer" : first.instancePath} ${first.message ?? "is invalid"}`
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
      // A plug-in is untrusted code: whatever it returns is checked, never assumed to be an array.
      Array.isArray(scores) && scores.length === candidates.length && scores.every((s) => typeof s === "number" && s >= 0 && s <= 1)
        ? Effect.succeed(scores as ReadonlyArray<number>)
        : Effect.fail(Array.isArray(scores)
          ? `returned ${scores.length} scores for ${candidates.length} candidates, or scores outside [0, 1]`
          : `returned ${scores === null ? "null" : typeof scores} instead of an array of scores`)
    ),
    Effect.either
  )

export class Consensus extends Effect.Service<Consensus>()("quorum/Consensus", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* Router
    const { registry } = yield* Evaluators
    const settings: ConsensusSettings = config.consensus
    const weightOf = (model: string) => voteWeightOf(config, model)

    const plan = <E>(request: ConsensusRequest, sampling: Record<string, unknown>, admit: Admit<E> | undefined) =>
      Effect.gen(function*() {
        if ((request.messages === undefined) === (request.prompt === undefined)) {
          return yield* invalid("messages", "Give either `messages` or `prompt`")
        }
        if (request.models !== undefined && request.fanout !== undefined) {
          return yield* invalid("fanout", "Give either `models` or `fanout`")
        }
        const known = [...config.routes.keys(), ...config.deployments.keys()]
        // Quorum's own pick draws only on the models and routes the caller's key may use.
        const models = request.models ?? pickModels(config, request.fanout ?? settings.defaultFanout, admit?.allowed ?? null)
        if (models.length === 0) return yield* new NoUsableModel({ allowed: admit?.allowed ?? [] })
        // Why a fan-out may come down to one model, for the fallback it then reports.
        const keyLimited = request.models === undefined && models.length === 1 && admit?.allowed != null
          ? "the caller's key allows only one model or route to fan out to"
          : undefined
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
          return { models, skipped: [], evaluators, messages, jsonMode, outputCap: undefined, singleReason: keyLimited }
        }

        const output = explicitOutput ?? settings.defaultOutputTokens
        // Counted only if max_cost_usd or the caller's key needs the estimate: otherwise no tokenizer runs.
        let counted: number | undefined
        const prompt = () => (counted ??= promptTokens(messages))
        const estimate = (m: string) => worstCaseOf(config, m, prompt(), output)
        let kept = models
        let skipped: Array<{ model: string; reason: string }> = []
        let singleReason = keyLimited
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
          singleReason = "budget: only one model fits max_cost_usd"
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
            singleReason = "budget: only one model fits the key's remaining budget"
          }
          capped ||= admitted.reserved
        }
        // Each call is capped at the output it was priced for, so the estimate is a bound.
        return { models: kept, skipped, evaluators, messages, jsonMode, outputCap: capped && explicitOutput === undefined ? output : undefined, singleReason }
      })

    const run = <E>(
      request: ConsensusRequest,
      sampling: Record<string, unknown>,
      admit?: Admit<E>
    ): Effect.Effect<ConsensusReport, InvalidConsensusRequest | NoUsableModel | NoAnswer | NoValidAnswer | E> =>
      Effect.gen(function*() {
        const id = newId("consensus")
        const meter = yield* FiberRef.get(CurrentMeter)
        if (meter !== undefined) meter.consensusId = id
        const startedAt = performance.now()
        const { singleReason, evaluators, jsonMode, messages, models, outputCap, skipped } = yield* plan(request, sampling, admit)
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
        // One request object per candidate: the meter's attempt records point to it, which
        // is how a candidate's calls (retries, a cancelled one) are found to price them.
        const requests = models.map(chat)
        const gates = evaluators.filter((e) => e.evaluator.gate === true)
        const scorers = evaluators.filter((e) => e.evaluator.gate !== true)
        const evaluatorErrors = new Map<string, string>()

        const arrivals: Array<Arrival | undefined> = models.map(() => undefined)
        const ballotOf = (i: number, arrival: Arrival): Ballot => {
          const content = arrival.content!
          const answer: Normalized = arrival.toolCalls !== undefined
            ? normalizeToolCalls(arrival.toolCalls)
            : strategy === "similarity"
            ? { kind: "text", key: content.replace(/\s+/g, " ").trim().toLowerCase() }
            : normalize(content)
          return { id: String(i), answer, weight: weightOf(models[i]!) }
        }

        type Answered = { content: string | null; toolCalls: ReadonlyArray<ToolCall> | undefined; usage: Usage | undefined; micro: number }
        const queue = yield* Queue.unbounded<readonly [number, Exit.Exit<Answered, RouteError>, number]>()
        const fibers = yield* Effect.forEach(models, (_, i) =>
          Effect.fork(
            Effect.gen(function*() {
              const t0 = performance.now()
              const exit = yield* Effect.exit(router.complete(requests[i]!).pipe(
                Effect.map((routed): Answered => {
                  const usage = routed.value.usage
                  const price = routed.deployment.price
                  const micro = usage === undefined || price === undefined ? 0 : costMicros(price, usage)
                  const message = routed.value.choices[0]?.message
                  const toolCalls = message?.tool_calls !== undefined && message.tool_calls.length > 0 ? message.tool_calls : undefined
                  return { content: message?.content ?? null, toolCalls, usage, micro }
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
            arrivals[i] = { status: "error", error: failure, latencyMs, gated: false, gateFailures: [], scores: {} }
            continue
          }
          const { content, micro, toolCalls, usage } = exit.value
          const common = { latencyMs, gated: false, gateFailures: [], scores: {}, answerMicroUsd: micro, ...(usage ? { usage } : {}) }
          if (content === null && toolCalls === undefined) {
            arrivals[i] = { ...common, status: "error", error: "the model answered with neither text nor tool calls" }
            continue
          }
          // Tool calls are an answer too: evaluators read them as canonical JSON.
          const arrival: Arrival = toolCalls === undefined
            ? { ...common, status: "ok", content: content! }
            : { ...common, status: "ok", content: normalizeToolCalls(toolCalls).key, toolCalls }
          // Gates judge each answer alone, as it arrives, so that early stop counts only valid votes.
          for (const gate of gates) {
            const candidate: Candidate = { id: String(i), model: models[i]!, content: arrival.content!, ...(toolCalls === undefined ? {} : { tool_calls: toolCalls }) }
            const result = yield* runEvaluator(gate.evaluator, [candidate], requests[i]!, gate.options, settings.evaluatorTimeoutMs)
            if (result._tag === "Left") evaluatorErrors.set(gate.evaluator.name, result.left)
            else {
              arrival.scores[gate.evaluator.name] = result.right[0]!
              if (result.right[0] === 0) {
                arrival.gated = true
                const problem = gate.evaluator.name === "json_schema" && toolCalls === undefined ? schemaProblem(arrival.content!, request.response_format) : undefined
                arrival.gateFailures.push(problem === undefined ? gate.evaluator.name : `${gate.evaluator.name} (${problem})`)
              }
            }
          }
          arrivals[i] = arrival
          if (!earlyStop || strategy === "score") continue
          const ballots = arrivals.flatMap((a, k) => (a?.status === "ok" && !a.gated ? [ballotOf(k, a)] : []))
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
              ? { status: "cancelled", gated: false, gateFailures: [], scores: {} }
              : { status: "error", error: `no answer within ${timeoutMs} ms (timeout_ms)`, gated: false, gateFailures: [], scores: {} }
          }
        }

        const answered = arrivals.flatMap((a, i) => (a!.status === "ok" ? [i] : []))
        if (answered.length === 0) {
          return yield* new NoAnswer({
            message: `No model answered: ${arrivals.map((a, i) => `${models[i]}: ${a!.error ?? a!.status}`).join("; ")}`
          })
        }
        const eligible = answered.filter((i) => !arrivals[i]!.gated)
        if (eligible.length === 0) {
          // An answer a gate refused (JSON that breaks the schema) must not reach a client as if it were valid.
          return yield* new NoValidAnswer({
            message: `No answer passed the gate evaluators: ${
              arrivals.map((a, i) => `${models[i]}: ${a!.status === "ok" ? `failed ${a!.gateFailures.join(", ")}` : a!.error ?? a!.status}`).join("; ")
            }`
          })
        }
        const candidates: Array<Candidate> = eligible.map((i) => ({
          id: String(i),
          model: models[i]!,
          content: arrivals[i]!.content!,
          ...(arrivals[i]!.toolCalls === undefined ? {} : { tool_calls: arrivals[i]!.toolCalls! })
        }))
        for (const scorer of scorers) {
          const result = yield* runEvaluator(scorer.evaluator, candidates, chat("consensus"), scorer.options, settings.evaluatorTimeoutMs)
          if (result._tag === "Left") evaluatorErrors.set(scorer.evaluator.name, result.left)
          else for (const [k, i] of eligible.entries()) arrivals[i]!.scores[scorer.evaluator.name] = result.right[k]!
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

        const groups = group(eligible.map((i) => ballotOf(i, arrivals[i]!)))
        const decision = decide(groups, minAgreement)
        let answerIndex: number
        let reached = false
        let supporting: ReadonlyArray<string>
        let fallback: ConsensusReport["fallback"] = null
        if (eligible.length < 2) {
          // One answer: nothing agreed with it, so there is no agreement to report.
          answerIndex = eligible[0]!
          supporting = [models[answerIndex]!]
          fallback = {
            reason: singleReason !== undefined && models.length === 1 ? singleReason : "only one model gave a usable answer",
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
          reached = strategy === "score" && home !== undefined && decision.cast > 0 && reaches(home.weight / decision.cast, minAgreement)
          supporting = (home?.members ?? [String(answerIndex)]).map((i) => models[Number(i)]!)
        }
        const winner = arrivals[answerIndex]!
        const home = groups.find((g) => g.members.includes(String(answerIndex)))
        const agreement = eligible.length < 2 ? null : home === undefined || decision.cast === 0 ? 0 : home.weight / decision.cast
        const parsed = jsonMode && winner.toolCalls === undefined ? parseJsonAnswer(winner.content!) : undefined

        // A candidate costs what its calls cost as the ledger bills them, a call cancelled by
        // early stop (billed on an estimate) included; without a meter, what its answer reported.
        const costOf = (i: number): number | undefined =>
          meter === undefined
            ? arrivals[i]!.answerMicroUsd
            : meter.attempts.reduce((sum, a) => (a.request === requests[i] ? sum + attemptMicros(a) : sum), 0)
        const costs = models.map((_, i) => costOf(i))
        const report: Array<CandidateReport> = [...arrivals.map((a, i) => ({
          model: models[i]!,
          status: a!.status,
          ...(a!.toolCalls === undefined ? a!.content === undefined ? {} : { content: a!.content } : { content: null, tool_calls: a!.toolCalls }),
          scores: a!.scores,
          ...(a!.status === "ok" && !a!.gated ? { score: scoreOf(i) } : {}),
          ...(a!.latencyMs === undefined ? {} : { latency_ms: a!.latencyMs }),
          ...(a!.usage === undefined ? {} : { usage: a!.usage }),
          ...(costs[i] === undefined ? {} : { cost_usd: formatUsd(costs[i]!) }),
          ...(a!.error === undefined ? {} : { error: a!.error })
        })), ...skipped.map((s): CandidateReport => ({ model: s.model, status: "skipped", scores: {}, error: `skipped: ${s.reason}` }))]
        // Everything the request's calls cost, LLM judges' included: what the ledger records.
        const totalMicro = meter === undefined
          ? costs.reduce((sum: number, c) => sum + (c ?? 0), 0)
          : meter.attempts.reduce((sum, a) => sum + attemptMicros(a), 0)
        const usage = arrivals.reduce(
          (sum, a) => usageOf(sum.prompt_tokens + (a!.usage?.prompt_tokens ?? 0), sum.completion_tokens + (a!.usage?.completion_tokens ?? 0)),
          usageOf(0, 0)
        )
        return {
          id,
          object: "consensus" as const,
          answer: {
            content: winner.toolCalls === undefined ? winner.content! : null,
            ...(winner.toolCalls === undefined ? {} : { tool_calls: winner.toolCalls }),
            ...(parsed?.ok === true ? { parsed: parsed.value } : {}),
            model: models[answerIndex]!
          },
          consensus: {
            reached,
            strategy: strategy ?? (home?.kind === "text" ? "similarity" : "vote"),
            agreement,
            supporting_models: supporting,
            early_stopped: earlyStopped
          },
          candidates: report,
          evaluator_errors: [...evaluatorErrors].map(([name, error]) => ({ name, error })),
          fallback,
          usage,
          cost_usd: formatUsd(totalMicro),
          latency_ms: round(performance.now() - startedAt)
        }
      }).pipe(Effect.scoped)

    return { run, evaluators: registry }
  })
}) {}
