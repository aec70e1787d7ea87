/** POST /v1/consensus: the request and the report it answers with. */
import { Schema } from "effect"
import { Message, ResponseFormat } from "../protocol/chat-request"
import { Usage } from "../protocol/chat-response"

export const EvaluatorChoice = Schema.Struct({
  name: Schema.String,
  weight: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * Fields not declared here (temperature, max_tokens, seed, …) are sampling parameters:
 * they go to every model's chat request unchanged.
 */
export const ConsensusRequest = Schema.Struct({
  messages: Schema.optional(Schema.Array(Message).pipe(Schema.minItems(1))),
  prompt: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  models: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(1))),
  fanout: Schema.optional(Schema.Int.pipe(Schema.positive())),
  strategy: Schema.optional(Schema.Literal("vote", "similarity", "score")),
  evaluators: Schema.optional(Schema.Array(EvaluatorChoice)),
  response_format: Schema.optional(ResponseFormat),
  max_cost_usd: Schema.optional(Schema.Number.pipe(Schema.positive())),
  early_stop: Schema.optional(Schema.Boolean),
  min_agreement: Schema.optional(Schema.Number.pipe(Schema.between(0, 1))),
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.positive()))
})
export type ConsensusRequest = typeof ConsensusRequest.Type

export const CandidateReport = Schema.Struct({
  model: Schema.String,
  status: Schema.Literal("ok", "error", "cancelled", "skipped"),
  content: Schema.optional(Schema.String),
  scores: Schema.Record({ key: Schema.String, value: Schema.Number }),
  score: Schema.optional(Schema.Number),
  latency_ms: Schema.optional(Schema.Number),
  usage: Schema.optional(Usage),
  cost_usd: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String)
})
export type CandidateReport = typeof CandidateReport.Type

export const ConsensusReport = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("consensus"),
  answer: Schema.Struct({ content: Schema.String, parsed: Schema.optional(Schema.Unknown), model: Schema.String }),
  consensus: Schema.Struct({
    reached: Schema.Boolean,
    strategy: Schema.Literal("vote", "similarity", "score"),
    agreement: Schema.Number,
    confidence: Schema.Number,
    supporting_models: Schema.Array(Schema.String),
    early_stopped: Schema.Boolean
  }),
  candidates: Schema.Array(CandidateReport),
  /** Evaluators that failed or timed out: reported, and left out of the scores. */
  evaluator_errors: Schema.Array(Schema.Struct({ name: Schema.String, error: Schema.String })),
  fallback: Schema.NullOr(Schema.Struct({ reason: Schema.String, mode: Schema.Literal("single"), model: Schema.String })),
  usage: Usage,
  cost_usd: Schema.Number,
  latency_ms: Schema.Number
})
export type ConsensusReport = typeof ConsensusReport.Type
