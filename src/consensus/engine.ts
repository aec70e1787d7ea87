/**
 * The consensus engine: one request fanned out to several models, in parallel or in
 * cascade waves (waves.ts), answers counted as they arrive, the rest cancelled as soon as
 * they can no longer change the outcome, evaluators run, and the heaviest group's answer
 * returned under the weights in force (decide.ts), abstentions left out (abstain.ts).
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
import { type Ballot, group, settled } from "./vote"
import { abstainsAlone, abstainsByKind } from "./abstain"
import { decideAnswer } from "./decide"
import { configPolicy } from "./learning/config-policy"
import type { Policy } from "./learning/policy"
import { ConsensusRandom, LearnedPolicies, OutcomeSink } from "./learning/source"
import { chooseMode, type Mode } from "./mode"
import type { ConsensusOutcome } from "./outcome"
import { Waves } from "./waves"

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
  (options: () => ReadonlyArray<CostOption>, models: ReadonlyArray<string>): Effect.Effect<{ readonly index: number; readonly reserved: boolean; readonly keyId?: string | null }, E>
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
  /** Why it casts no vote though it answered (a refusal, cut at max_tokens). */
  abstained?: string
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
    const learnedPolicies = Option.getOrUndefined(yield* Effect.serviceOption(LearnedPolicies))
    const outcomes = Option.getOrUndefined(yield* Effect.serviceOption(OutcomeSink))
    // Exploration's draw; a test may inject a seeded source.
    const random = Option.match(yield* Effect.serviceOption(ConsensusRandom), { onNone: () => Math.random, onSome: (r) => r })

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
          return { models, skipped: [], evaluators, messages, jsonMode, outputCap: undefined, singleReason: keyLimited, keyId: null }
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
        let keyId: string | null = null
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
          keyId = admitted.keyId ?? null
        }
        // Each call is capped at the output it was priced for, so the estimate is a bound.
        return { models: kept, skipped, evaluators, messages, jsonMode, outputCap: capped && explicitOutput === undefined ? output : undefined, singleReason, keyId }
      })

    /** The task's policy: learned once it has enough labels, else the config's weights and the exact rule. */
    const policyFor = (task: string, minAgreement: number) =>
      Effect.map(
        learnedPolicies === undefined ? Effect.succeed(undefined) : learnedPolicies.forTask(task),
        (learned): Policy => learned ?? configPolicy(new Map(), weightOf, minAgreement)
      )

    const runWithOutcome = <E>(
      request: ConsensusRequest,
      sampling: Record<string, unknown>,
      admit?: Admit<E>
    ): Effect.Effect<{ readonly report: ConsensusReport; readonly outcome: ConsensusOutcome }, InvalidConsensusRequest | NoUsableModel | NoAnswer | NoValidAnswer | E> =>
      Effect.gen(function*() {
        const id = newId("consensus")
        const meter = yield* FiberRef.get(CurrentMeter)
        if (meter !== undefined) meter.consensusId = id
        const startedAt = performance.now()
        const { evaluators, jsonMode, keyId, messages, models, outputCap, singleReason, skipped } = yield* plan(request, sampling, admit)
        const minAgreement = request.min_agreement ?? settings.minAgreement
        const timeoutMs = request.timeout_ms ?? settings.timeoutMs
        const earlyStop = request.early_stop ?? true
        const strategy = request.strategy
        const task = request.task ?? "default"
        const policy = yield* policyFor(task, minAgreement)
        const weightIn = (model: string): number => policy.weightOf(model)
        // A score-only decision has no vote to settle, so nothing to cascade on.
        const chosen = chooseMode(request.mode, policy.rule === "learned", settings.learning.explore, random)
        const mode: Mode = strategy === "score" && chosen.mode === "cascade" ? "parallel" : chosen.mode
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
        const normalizedOf = (arrival: Arrival): Normalized =>
          arrival.toolCalls !== undefined
            ? normalizeToolCalls(arrival.toolCalls)
            : strategy === "similarity"
            ? { kind: "text", key: arrival.content!.replace(/\s+/g, " ").trim().toLowerCase() }
            : normalize(arrival.content!)
        const ballotOf = (i: number, arrival: Arrival): Ballot => ({ id: String(i), answer: normalizedOf(arrival), weight: weightIn(models[i]!) })
        const kinds = policy.answerKinds
        let callsOver = false
        /** An answer of a kind the task's right answers never take (learned): no final answer. */
        const outOfKind = (answer: Normalized): boolean => kinds !== undefined && !kinds.has(answer.kind)
        /** The ballots cast so far: answers that passed the gates, abstentions left out. */
        const votes = (): ReadonlyArray<Ballot> => {
          const valid = arrivals.flatMap((a, k) => (a?.status === "ok" && !a.gated && a.abstained === undefined ? [ballotOf(k, a)] : []))
          const voting = valid.filter((b) => abstainsByKind(b.answer, valid.map((v) => v.answer)) === undefined)
          const inKind = voting.filter((b) => !outOfKind(b.answer))
          // Out-of-kind answers wait as abstentions while a model may still answer in kind; once
          // no more calls will come and none did, the task's form has changed: they vote.
          return inKind.length > 0 || !callsOver ? inKind : voting
        }
        /** What the answers so far look like to the policy: model → group key, null for an abstention. */
        const observed = (): Map<string, string | null> => {
          const seen = new Map<string, string | null>()
          for (const [k, a] of arrivals.entries()) if (a !== undefined && a.status !== "cancelled") seen.set(models[k]!, null)
          for (const g of group(votes())) for (const member of g.members) seen.set(models[Number(member)]!, g.key)
          return seen
        }

        type Answered = {
          content: string | null
          toolCalls: ReadonlyArray<ToolCall> | undefined
          usage: Usage | undefined
          micro: number
          finishReason: string | null | undefined
          refusal: string | null | undefined
        }
        const queue = yield* Queue.unbounded<readonly [number, Exit.Exit<Answered, RouteError>, number]>()
        const call = (i: number) =>
          Effect.fork(
            Effect.gen(function*() {
              const t0 = performance.now()
              const exit = yield* Effect.exit(router.complete(requests[i]!).pipe(
                Effect.map((routed): Answered => {
                  const usage = routed.value.usage
                  const price = routed.deployment.price
                  const micro = usage === undefined || price === undefined ? 0 : costMicros(price, usage)
                  const choice = routed.value.choices[0]
                  const message = choice?.message
                  const toolCalls = message?.tool_calls !== undefined && message.tool_calls.length > 0 ? message.tool_calls : undefined
                  const refusal = message !== undefined && "refusal" in message ? (message as { refusal?: string | null }).refusal : undefined
                  return { content: message?.content ?? null, toolCalls, usage, micro, finishReason: choice?.finish_reason, refusal }
                })
              ))
              yield* Queue.offer(queue, [i, exit, round(performance.now() - t0)] as const)
            })
          )
        const waves = new Waves(models, mode, settings.hedgeMs)
        const fibers: Array<Fiber.RuntimeFiber<void>> = []
        const launch = (indices: ReadonlyArray<number>, reason: string) =>
          Effect.gen(function*() {
            waves.start(indices, reason, performance.now())
            for (const i of indices) fibers.push(yield* call(i))
          })
        yield* launch(waves.first(policy), waves.firstReason())

        let received = 0
        let earlyStopped = false
        const deadline = startedAt + timeoutMs
        for (;;) {
          if (received === waves.launched.size) {
            // Every call made so far has answered: a cascade calls the next wave while the outcome is open.
            const more = mode === "cascade" ? waves.more(policy, observed()) : []
            if (more.length === 0) break
            yield* launch(more, waves.escalationReason(arrivals))
            continue
          }
          const now = performance.now()
          const hedgeAt = mode === "cascade" && waves.launched.size < models.length ? waves.hedgeAt : Number.POSITIVE_INFINITY
          const next = yield* Queue.take(queue).pipe(Effect.timeout(Math.max(0, Math.min(deadline, hedgeAt) - now)), Effect.option)
          if (Option.isNone(next)) {
            if (performance.now() >= deadline) break
            // The wave has not settled within hedge_ms: the next one starts beside it.
            const more = waves.hedge(policy, observed())
            if (more.length > 0) yield* launch(more, `hedge: the previous wave had not settled within ${settings.hedgeMs} ms`)
            else waves.hedgeAt = Number.POSITIVE_INFINITY
            continue
          }
          received++
          const [i, exit, latencyMs] = next.value
          if (Exit.isFailure(exit)) {
            const failure = exit.cause._tag === "Fail" ? describeError(exit.cause.error) : "failed"
            arrivals[i] = { status: "error", error: failure, latencyMs, gated: false, gateFailures: [], scores: {} }
          } else {
            const { content, micro, toolCalls, usage } = exit.value
            const common = { latencyMs, gated: false, gateFailures: [], scores: {}, answerMicroUsd: micro, ...(usage ? { usage } : {}) }
            if (content === null && toolCalls === undefined) {
              arrivals[i] = { ...common, status: "error", error: "the model answered with neither text nor tool calls" }
            } else {
              // Tool calls are an answer too: evaluators read them as canonical JSON.
              const alone = abstainsAlone(exit.value)
              const arrival: Arrival = toolCalls === undefined
                ? { ...common, status: "ok", content: content!, ...(alone === undefined ? {} : { abstained: alone }) }
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
            }
          }
          if (strategy === "score") continue
          if (mode === "parallel" && earlyStop) {
            const ballots = votes()
            const pending = models.reduce((sum, m, k) => (arrivals[k] === undefined ? sum + weightIn(m) : sum), 0)
            // Free-text votes would all abstain if an answer of another kind came: never settled by them alone.
            const provisional = strategy !== "similarity" && ballots.every((b) => b.answer.kind === "text")
            if (pending > 0 && !provisional && ballots.length >= 2 && settled(group(ballots), pending, minAgreement)) {
              earlyStopped = true
              break
            }
          }
          if (mode === "cascade" && earlyStop && received < waves.launched.size && policy.next(models, observed()).length === 0) {
            // Settled with calls still running: they can no longer change the answer.
            earlyStopped = true
            break
          }
        }
        // Whatever is still running can no longer matter: cancel it now, before evaluators run
        // (the upstream calls are aborted). Forked fibers would also end with this one.
        yield* Fiber.interruptAll(fibers)
        for (const i of waves.launched) {
          if (arrivals[i] === undefined) {
            arrivals[i] = earlyStopped
              ? { status: "cancelled", gated: false, gateFailures: [], scores: {} }
              : { status: "error", error: `no answer within ${timeoutMs} ms (timeout_ms)`, gated: false, gateFailures: [], scores: {} }
          }
        }
        callsOver = true
        // Models a cascade never called are not candidates of this request.
        const calledIdx = models.flatMap((_, i) => (waves.launched.has(i) ? [i] : []))

        const answered = calledIdx.filter((i) => arrivals[i]!.status === "ok")
        if (answered.length === 0) {
          return yield* new NoAnswer({
            message: `No model answered: ${calledIdx.map((i) => `${models[i]}: ${arrivals[i]!.error ?? arrivals[i]!.status}`).join("; ")}`
          })
        }
        const eligible = answered.filter((i) => !arrivals[i]!.gated)
        if (eligible.length === 0) {
          // An answer a gate refused (JSON that breaks the schema) must not reach a client as if it were valid.
          return yield* new NoValidAnswer({
            message: `No answer passed the gate evaluators: ${
              calledIdx.map((i) => `${models[i]}: ${arrivals[i]!.status === "ok" ? `failed ${arrivals[i]!.gateFailures.join(", ")}` : arrivals[i]!.error ?? arrivals[i]!.status}`).join("; ")
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
        const { agreement, answerIndex, ballots, fallback, groups, reached, supporting, voted } = decideAnswer({
          votes: votes(),
          eligible,
          ballotOf: (i) => ballotOf(i, arrivals[i]!),
          scoreOf,
          strategy,
          minAgreement,
          modelOf: (i) => models[i]!,
          singleReason: singleReason !== undefined && models.length === 1 ? singleReason : undefined
        })
        const winner = arrivals[answerIndex]!
        const home = groups.find((g) => g.members.includes(String(answerIndex)))
        const parsed = jsonMode && winner.toolCalls === undefined ? parseJsonAnswer(winner.content!) : undefined

        // A candidate costs what its calls cost as the ledger bills them, a call cancelled by
        // early stop (billed on an estimate) included; without a meter, what its answer reported.
        const costOf = (i: number): number | undefined =>
          meter === undefined
            ? arrivals[i]!.answerMicroUsd
            : meter.attempts.reduce((sum, a) => (a.request === requests[i] ? sum + attemptMicros(a) : sum), 0)
        const costs = models.map((_, i) => (waves.launched.has(i) ? costOf(i) : undefined))
        const abstentionOf = (i: number): string | undefined => {
          const a = arrivals[i]!
          if (a.status !== "ok" || a.gated) return undefined
          if (a.abstained !== undefined || voted.has(i)) return a.abstained
          return kinds !== undefined && outOfKind(normalizedOf(a))
            ? `no answer of the kind this task's right answers take (${[...kinds].join(", ")})`
            : "no final answer of the kind the others give"
        }
        const report: Array<CandidateReport> = [...calledIdx.map((i) => {
          const a = arrivals[i]!
          const abstained = abstentionOf(i)
          return {
            model: models[i]!,
            status: a.status,
            ...(a.toolCalls === undefined ? a.content === undefined ? {} : { content: a.content } : { content: null, tool_calls: a.toolCalls }),
            scores: a.scores,
            ...(a.status === "ok" && !a.gated ? { score: scoreOf(i) } : {}),
            ...(a.latencyMs === undefined ? {} : { latency_ms: a.latencyMs }),
            ...(a.usage === undefined ? {} : { usage: a.usage }),
            ...(costs[i] === undefined ? {} : { cost_usd: formatUsd(costs[i]!) }),
            ...(a.error === undefined ? {} : { error: a.error }),
            ...(abstained === undefined ? {} : { abstained }),
            ...(mode === "cascade" ? { wave: waves.waveOf(i) } : {})
          }
        }), ...skipped.map((s): CandidateReport => ({ model: s.model, status: "skipped", scores: {}, error: `skipped: ${s.reason}` }))]
        // Everything the request's calls cost, LLM judges' included: what the ledger records.
        const totalMicro = meter === undefined
          ? costs.reduce((sum: number, c) => sum + (c ?? 0), 0)
          : meter.attempts.reduce((sum, a) => sum + attemptMicros(a), 0)
        const usage = arrivals.reduce(
          (sum, a) => usageOf(sum.prompt_tokens + (a?.usage?.prompt_tokens ?? 0), sum.completion_tokens + (a?.usage?.completion_tokens ?? 0)),
          usageOf(0, 0)
        )
        const groupOf = new Map<number, string>()
        for (const g of groups) for (const m of g.members) if (voted.has(Number(m))) groupOf.set(Number(m), g.key)
        const outcome: ConsensusOutcome = {
          id,
          task,
          answerGroup: groupOf.get(answerIndex) ?? null,
          candidates: calledIdx.map((i) => {
            const a = arrivals[i]!
            const answer = a.status === "ok" && !a.gated ? normalizedOf(a) : undefined
            return {
              model: models[i]!,
              status: a.status,
              kind: answer?.kind ?? null,
              answer: answer?.key ?? null,
              group: groupOf.get(i) ?? null,
              latencyMs: a.latencyMs ?? null,
              costMicros: costs[i] ?? 0
            }
          })
        }
        const result: ConsensusReport = {
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
            agreement: ballots < 2 ? null : agreement,
            supporting_models: supporting,
            early_stopped: earlyStopped,
            mode,
            task,
            rule: policy.rule,
            labels: policy.labels,
            waves: waves.report()
          },
          candidates: report,
          evaluator_errors: [...evaluatorErrors].map(([name, error]) => ({ name, error })),
          fallback,
          usage,
          cost_usd: formatUsd(totalMicro),
          latency_ms: round(performance.now() - startedAt)
        }
        // Kept for feedback and learning, written off the request path.
        outcomes?.record(outcome, keyId)
        return { report: result, outcome }
      }).pipe(Effect.scoped)

    const run = <E>(request: ConsensusRequest, sampling: Record<string, unknown>, admit?: Admit<E>) =>
      Effect.map(runWithOutcome(request, sampling, admit), ({ report }) => report)

    return { run, runWithOutcome, evaluators: registry }
  })
}) {}
