/**
 * The first step of a consensus: which models it calls and how. The request is checked
 * (models known, evaluators registered, a valid schema), Quorum's own pick draws only on
 * what the caller's key allows, and the fan-out shrinks to fit max_cost_usd and the key's
 * budget (the least trusted models dropped first), each call then capped at the output
 * it was priced for so the estimate is a bound.
 */
import { Effect } from "effect"
import { compileSchema } from "./json-answer"
import type { ResolvedConfig } from "../config/gateway-config"
import type { Message } from "../protocol/chat-request"
import { formatUsd, usdToMicros } from "../domain/money"
import { countPrompt, promptTokensOf } from "../protocol/tokens"
import { worstCaseOf } from "../billing/worst-case"
import { fitBudget } from "./budget"
import type { CostOption } from "../billing/store/store"
import { InvalidConsensusRequest, NoUsableModel } from "./errors"
import type { Evaluator } from "./evaluator"
import { pickModels, voteWeightOf } from "./pick"
import { LATENCY_PERCENTILE } from "../routing/constraints"
import type { ConsensusRequest } from "./request"
import type { ChosenEvaluator } from "./scoring"

export interface PlanFleet {
  readonly config: ResolvedConfig
  readonly registry: ReadonlyMap<string, Evaluator>
  /** A model's recent latency at the percentile the request's max_latency_ms is held to; undefined until measured. */
  readonly expectedLatencyMs?: (model: string) => number | undefined
}

type Skipped = { readonly model: string; readonly reason: string }

/**
 * The models expected to answer within the request's max_latency_ms (a model not yet
 * measured is kept: nothing says it is slow), and those left out, with why; a 400 naming
 * each when none is.
 */
const withinLatency = (models: ReadonlyArray<string>, limitMs: number | undefined, expected: PlanFleet["expectedLatencyMs"]) => {
  if (limitMs === undefined || expected === undefined) return Effect.succeed({ models, skipped: [] as ReadonlyArray<Skipped> })
  const skipped: Array<Skipped> = []
  const kept = models.filter((model) => {
    const ms = expected(model)
    if (ms === undefined || ms <= limitMs) return true
    skipped.push({ model, reason: `recent p${LATENCY_PERCENTILE} latency ${Math.round(ms)} ms exceeds max_latency_ms ${limitMs}` })
    return false
  })
  return kept.length > 0
    ? Effect.succeed({ models: kept, skipped: skipped as ReadonlyArray<Skipped> })
    : Effect.fail(new InvalidConsensusRequest({ param: "quorum.max_latency_ms", message: `No model of this fan-out is expected to answer within max_latency_ms: ${skipped.map((s) => `${s.model}: ${s.reason}`).join("; ")}` }))
}

export interface Plan {
  readonly models: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<{ readonly model: string; readonly reason: string }>
  readonly evaluators: ReadonlyArray<ChosenEvaluator>
  readonly messages: ReadonlyArray<Message>
  readonly jsonMode: boolean
  /** The output each call is capped at, when the fan-out was priced on it. */
  readonly outputCap: number | undefined
  /** Why the fan-out came down to one model (budget, key), when it may have. */
  readonly singleReason: string | undefined
  readonly keyId: string | null
}

/**
 * Admits a fan-out against the caller's budget: given the costs of running the whole
 * fan-out, then one model fewer, and so on, it reserves the first that fits and says
 * which, and whether anything was reserved (then calls must stay within their estimate).
 */
export interface Admit<E = unknown> {
  /** `options` is run only when the caller's key has a budget or a token limit. */
  readonly reserve: (options: Effect.Effect<ReadonlyArray<CostOption>>, models: ReadonlyArray<string>) => Effect.Effect<{ readonly index: number; readonly reserved: boolean; readonly keyId?: string | null }, E>
  /** The models and routes the caller may use (null: any), for a fan-out Quorum picks. */
  readonly allowed: ReadonlyArray<string> | null
}

const invalid = (param: string | null, message: string) => new InvalidConsensusRequest({ message, param })

/**
 * The models to call: the request's own, or Quorum's pick among what the caller's key
 * allows; each known, no more than max_fanout, and (with a latency limit) expected in time.
 */
const chooseModels = Effect.fnUntraced(function*<E>(fleet: PlanFleet, request: ConsensusRequest, admit: Admit<E> | undefined, maxLatencyMs: number | undefined) {
  const { config } = fleet
  const settings = config.consensus
  // Quorum's own pick draws only on the models and routes the caller's key may use.
  const picked = request.models ?? pickModels(config, request.fanout ?? settings.defaultFanout, admit?.allowed ?? null)
  if (picked.length === 0) return yield* new NoUsableModel({ allowed: admit?.allowed ?? [] })
  // Why a fan-out may come down to one model, for the fallback it then reports.
  const keyLimited = request.models === undefined && picked.length === 1 && admit?.allowed != null
    ? "the caller's key allows only one model or route to fan out to"
    : undefined
  const known = [...config.routes.keys(), ...config.deployments.keys()]
  for (const [i, model] of picked.entries()) {
    if (!config.routes.has(model) && !config.deployments.has(model)) {
      return yield* invalid(`models[${i}]`, `Unknown model \`${model}\`; available: ${known.join(", ")}`)
    }
  }
  if (picked.length > settings.maxFanout) {
    return yield* invalid(request.models === undefined ? "fanout" : "models", `At most ${settings.maxFanout} models per consensus request (got ${picked.length})`)
  }
  const { models, skipped } = yield* withinLatency(picked, maxLatencyMs, fleet.expectedLatencyMs)
  return { models, skipped, keyLimited }
})

/** The evaluators asked for (by default answer_match and consistency, and json_schema for JSON answers), each registered; a JSON schema that compiles. */
const chooseEvaluators = Effect.fnUntraced(function*(registry: ReadonlyMap<string, Evaluator>, request: ConsensusRequest) {
  const format = request.response_format
  const jsonMode = format !== undefined && format.type !== "text"
  const chosen = request.evaluators ?? [
    { name: "answer_match" },
    { name: "consistency" },
    ...(jsonMode ? [{ name: "json_schema" }] : [])
  ]
  const evaluators: Array<ChosenEvaluator> = []
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
  return { evaluators, jsonMode }
})

/** What the fan-out may cost: the models kept, those dropped and why, whether calls are capped, and whose key paid. */
interface Budgeted {
  readonly models: ReadonlyArray<string>
  readonly skipped: ReadonlyArray<Skipped>
  readonly singleReason: string | undefined
  readonly capped: boolean
  readonly keyId: string | null
}

/**
 * The fan-out within the request's max_cost_usd (the least trusted dropped first), then
 * within the caller's key's budget (reserved: the whole fan-out if it fits, else fewer
 * models, down to the single most trusted one).
 */
const withinBudget = Effect.fnUntraced(function*<E>(
  fleet: PlanFleet,
  request: ConsensusRequest,
  admit: Admit<E> | undefined,
  chosen: Budgeted,
  messages: ReadonlyArray<Message>,
  output: number
) {
  const { config } = fleet
  const weightOf = (model: string) => voteWeightOf(config, model)
  // Counted only if max_cost_usd or the caller's key needs the estimate (otherwise no tokenizer runs), with the event loop let in on a long prompt.
  const prompted = { messages }
  const prompt = () => promptTokensOf(prompted)
  const estimate = (m: string) => worstCaseOf(config, m, prompt(), output)
  let { keyId, models: kept, singleReason } = chosen
  const skipped = [...chosen.skipped]
  if (request.max_cost_usd !== undefined) {
    yield* countPrompt(prompted)
    const fit = fitBudget(kept, weightOf, estimate, usdToMicros(request.max_cost_usd))
    if (fit.kept.length === 0) {
      return yield* invalid(
        "max_cost_usd",
        fit.cheapestMicroUsd === undefined
          ? "No model of this request has a configured price, so none can be kept within max_cost_usd"
          : `max_cost_usd ($${request.max_cost_usd}) is below the cheapest model's estimated cost ($${formatUsd(fit.cheapestMicroUsd)} for ${prompt()} prompt and ${output} output tokens)`
      )
    }
    kept = fit.kept
    skipped.push(...fit.skipped)
    singleReason = "budget: only one model fits max_cost_usd"
  }
  let capped = request.max_cost_usd !== undefined
  if (admit !== undefined) {
    const byTrust = [...kept].sort((a, b) => weightOf(b) - weightOf(a))
    const options = Effect.map(countPrompt(prompted), (tokens) =>
      byTrust.map((_, i) => {
        const size = byTrust.length - i
        return { micros: byTrust.slice(0, size).reduce((sum, m) => sum + (estimate(m) ?? 0), 0), tokens: size * (tokens + output) }
      }))
    const admitted = yield* admit.reserve(options, chosen.models)
    if (admitted.index > 0) {
      const dropped = new Set(byTrust.slice(byTrust.length - admitted.index))
      for (const model of kept) if (dropped.has(model)) skipped.push({ model, reason: "the fan-out does not fit the key's remaining budget" })
      kept = kept.filter((m) => !dropped.has(m))
      singleReason = "budget: only one model fits the key's remaining budget"
    }
    capped ||= admitted.reserved
    keyId = admitted.keyId ?? null
  }
  return { models: kept, skipped, singleReason, capped, keyId } satisfies Budgeted
})

/** The plan of a consensus: which models, which evaluators, within which budget. */
export const plan: <E>(
  fleet: PlanFleet,
  request: ConsensusRequest,
  sampling: Record<string, unknown>,
  admit: Admit<E> | undefined,
  /** The request's own latency limit (`quorum.max_latency_ms`, or its header). */
  maxLatencyMs?: number
) => Effect.Effect<Plan, InvalidConsensusRequest | NoUsableModel | E> = Effect.fnUntraced(function*<E>(
  fleet: PlanFleet,
  request: ConsensusRequest,
  sampling: Record<string, unknown>,
  admit: Admit<E> | undefined,
  maxLatencyMs?: number
) {
  const messages: ReadonlyArray<Message> | undefined = request.messages ?? (request.prompt === undefined ? undefined : [{ role: "user", content: request.prompt }])
  if (messages === undefined || (request.messages !== undefined && request.prompt !== undefined)) {
    return yield* invalid("messages", "Give either `messages` or `prompt`")
  }
  if (request.models !== undefined && request.fanout !== undefined) {
    return yield* invalid("fanout", "Give either `models` or `fanout`")
  }
  const { models, skipped, keyLimited } = yield* chooseModels(fleet, request, admit, maxLatencyMs)
  const { evaluators, jsonMode } = yield* chooseEvaluators(fleet.registry, request)
  const requested = sampling.max_completion_tokens ?? sampling.max_tokens
  const explicitOutput = typeof requested === "number" ? requested : undefined
  if (request.max_cost_usd === undefined && admit === undefined) {
    return { models, skipped, evaluators, messages, jsonMode, outputCap: undefined, singleReason: keyLimited, keyId: null }
  }
  const output = explicitOutput ?? fleet.config.consensus.defaultOutputTokens
  const budgeted = yield* withinBudget(fleet, request, admit, { models, skipped, singleReason: keyLimited, capped: false, keyId: null }, messages, output)
  // Each call is capped at the output it was priced for, so the estimate is a bound.
  return {
    models: budgeted.models,
    skipped: budgeted.skipped,
    evaluators,
    messages,
    jsonMode,
    outputCap: budgeted.capped && explicitOutput === undefined ? output : undefined,
    singleReason: budgeted.singleReason,
    keyId: budgeted.keyId
  }
})
