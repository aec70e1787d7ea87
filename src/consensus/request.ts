/** POST /v1/consensus: the request and the report it answers with. */
import { Schema } from "effect"
import { Message, ResponseFormat, SamplingFields, ToolCall } from "../protocol/chat-request"
import { Usage } from "../protocol/chat-response"

export const EvaluatorChoice = Schema.Struct({
  name: Schema.String,
  weight: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * How a consensus runs: the fields that mean the same on /v1/consensus and in a chat
 * completion with `model: "consensus"` (where a preset's settings are their defaults).
 * None of them ever reaches an upstream.
 */
export const ConsensusSetup = Schema.Struct({
  models: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(1))),
  fanout: Schema.optional(Schema.Int.pipe(Schema.positive())),
  strategy: Schema.optional(Schema.Literal("vote", "similarity", "score")),
  evaluators: Schema.optional(Schema.Array(EvaluatorChoice)),
  max_cost_usd: Schema.optional(Schema.Number.pipe(Schema.positive())),
  early_stop: Schema.optional(Schema.Boolean),
  min_agreement: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** What the request is an instance of, for feedback and learned reliability (default: the preset's id, else "default"). */
  task: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))),
  /** cascade: the most reliable models first, more only while the answer is open; parallel: all at once, exact early stop; full: every model, no early stop. */
  mode: Schema.optional(Schema.Literal("cascade", "parallel", "full"))
})
export type ConsensusSetup = typeof ConsensusSetup.Type

/**
 * Sampling parameters (temperature, max_tokens, seed, …, and fields Quorum does not know)
 * go to every model's chat request unchanged; the ones OpenAI defines are checked here
 * exactly as a chat request checks them.
 */
export const ConsensusRequest = Schema.Struct({
  ...ConsensusSetup.fields,
  messages: Schema.optional(Schema.Array(Message).pipe(Schema.minItems(1))),
  prompt: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  response_format: Schema.optional(ResponseFormat),
  ...SamplingFields
})
export type ConsensusRequest = typeof ConsensusRequest.Type

/**
 * Quorum's own fields, and the ones the engine sets per call (model, messages, stream):
 * what the caller sent under these names is never forwarded to an upstream, which would
 * refuse a parameter it does not know.
 */
const NOT_FORWARDED: ReadonlySet<string> = new Set([
  ...Object.keys(ConsensusRequest.fields).filter((key) => !(key in SamplingFields)),
  "model",
  "stream",
  "stream_options"
])

/** Everything else in a request body: the sampling parameters sent to every model. */
export const samplingOf = (body: object): Record<string, unknown> =>
  Object.fromEntries(Object.entries(body).filter(([key]) => !NOT_FORWARDED.has(key)))

/**
 * USD amounts in a report are decimal strings of whole micro-dollars ("0.000040"), the
 * digits of the `x-quorum-cost-usd` header: a JSON number this small is shown as 4e-05
 * by jq and most languages' default printing.
 */
const UsdAmount = Schema.String.pipe(Schema.pattern(/^-?\d+\.\d{6}$/))

export const CandidateReport = Schema.Struct({
  model: Schema.String,
  status: Schema.Literal("ok", "error", "cancelled", "skipped"),
  content: Schema.optional(Schema.NullOr(Schema.String)),
  /** A candidate that answered with tool calls instead of text. */
  tool_calls: Schema.optional(Schema.Array(ToolCall)),
  scores: Schema.Record({ key: Schema.String, value: Schema.Number }),
  score: Schema.optional(Schema.Number),
  latency_ms: Schema.optional(Schema.Number),
  usage: Schema.optional(Usage),
  /** Why the candidate cast no vote (no final answer, a refusal, cut at max_tokens, an error); absent when it voted. */
  abstained: Schema.optional(Schema.String),
  /** The cascade wave that called it (0 first). */
  wave: Schema.optional(Schema.Int),
  /** What its upstream calls cost, a call cancelled by early stop included (billed on an estimate). */
  cost_usd: Schema.optional(UsdAmount),
  error: Schema.optional(Schema.String)
})
export type CandidateReport = typeof CandidateReport.Type

export const ConsensusReport = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("consensus"),
  answer: Schema.Struct({
    /** Null when the answer is a set of tool calls. */
    content: Schema.NullOr(Schema.String),
    tool_calls: Schema.optional(Schema.Array(ToolCall)),
    parsed: Schema.optional(Schema.Unknown),
    model: Schema.String
  }),
  consensus: Schema.Struct({
    reached: Schema.Boolean,
    strategy: Schema.Literal("vote", "similarity", "score"),
    /** The answer's group's share of the vote weight cast; null with fewer than two votes. */
    agreement: Schema.NullOr(Schema.Number),
    supporting_models: Schema.Array(Schema.String),
    early_stopped: Schema.Boolean,
    mode: Schema.Literal("cascade", "parallel", "full"),
    task: Schema.String,
    /** Where the weights came from: config, or learned from this many labels. */
    rule: Schema.Literal("config", "learned"),
    labels: Schema.Int,
    /** The waves of calls that ran, and why each one started. */
    waves: Schema.Array(Schema.Struct({ models: Schema.Array(Schema.String), reason: Schema.String }))
  }),
  candidates: Schema.Array(CandidateReport),
  /** Evaluators that failed or timed out: reported, and left out of the scores. */
  evaluator_errors: Schema.Array(Schema.Struct({ name: Schema.String, error: Schema.String })),
  fallback: Schema.NullOr(Schema.Struct({ reason: Schema.String, mode: Schema.Literal("single"), model: Schema.String })),
  usage: Usage,
  /** The whole request's cost: every upstream call, cancelled ones and LLM judges included. */
  cost_usd: UsdAmount,
  latency_ms: Schema.Number
})
export type ConsensusReport = typeof ConsensusReport.Type
