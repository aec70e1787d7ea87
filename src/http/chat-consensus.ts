/**
 * `model: "consensus"` and `"consensus/<preset>"` in chat completions: the consensus
 * engine, answered in OpenAI's shape so that OpenAI SDKs work unchanged. The body may
 * carry consensus's own fields (models, fanout, strategy, …: the same as on
 * /v1/consensus, a preset's settings being their defaults); they never reach an upstream.
 * The report rides along in an extra `consensus` field; a stream carries the chosen
 * answer once it is decided.
 */
import { Effect, Either } from "effect"
import { pullOf } from "../domain/pull"
import type { ResolvedConfig } from "../config/gateway-config"
import { firstIssue } from "../config/paths"
import type { Consensus } from "../consensus/engine"
import { type ConsensusReport, type ConsensusRequest, ConsensusSetup, samplingOf } from "../consensus/request"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletionChunk } from "../protocol/chat-response"
import { chunk, usageChunk } from "../providers/build"
import { UnknownModel } from "../routing/errors"
import { formatUsd } from "../domain/money"
import { type ClientError, InvalidRequest } from "./errors"
import { checkReport } from "./policies"
import type { Policy } from "../policy/policy"
import { validator } from "../protocol/validate"
import { COST_HEADER } from "./metered"
import type { Ticket } from "../billing/ticket"
import type { ChatAnswer } from "./chat-answer"

const SETUP_FIELDS = Object.keys(ConsensusSetup.fields) as ReadonlyArray<keyof ConsensusSetup>
const checkSetup = validator(ConsensusSetup)

/** The consensus fields a chat body carries, checked as /v1/consensus checks them. */
const setupOf = (request: ChatCompletionRequest) => {
  const given = Object.fromEntries(Object.entries(request).filter(([key]) => (SETUP_FIELDS as ReadonlyArray<string>).includes(key)))
  const checked = checkSetup(given)
  if (Either.isRight(checked)) return Effect.succeed(checked.right)
  const issue = firstIssue(checked.left)
  return Effect.fail(new InvalidRequest({ message: `Invalid value for '${issue.path}': ${issue.message}`, param: issue.path, code: "invalid_value" }))
}

/** A preset's settings under the body's: naming models or a fanout in the body replaces both of the preset's. */
const overlay = (preset: ConsensusSetup, body: ConsensusSetup): ConsensusSetup => {
  const { fanout: _fanout, models: _models, ...rest } = preset
  return body.models !== undefined || body.fanout !== undefined ? { ...rest, ...body } : { ...preset, ...body }
}

/** The report minus what the completion already says. */
const reportField = (report: ConsensusReport, cost: string) => ({
  ...report.consensus,
  answer_model: report.answer.model,
  candidates: report.candidates,
  evaluator_errors: report.evaluator_errors,
  fallback: report.fallback,
  cost_usd: cost,
  latency_ms: report.latency_ms
})

const withReport = (finishing: ChatCompletionChunk, report: ReturnType<typeof reportField>): ChatCompletionChunk => {
  const carrying = { ...finishing, consensus: report }
  return carrying
}

/** The chosen answer as stream chunks: its text, or its tool calls, one chunk each. */
const answerChunks = (header: Parameters<typeof chunk>[0], report: ConsensusReport): ReadonlyArray<ChatCompletionChunk> =>
  report.answer.tool_calls === undefined
    ? [chunk(header, { content: report.answer.content ?? "" })]
    : report.answer.tool_calls.map((call, index) => chunk(header, { tool_calls: [{ index, id: call.id, type: "function", function: call.function }] }))

export const consensusChat: (
  config: ResolvedConfig,
  consensus: Consensus,
  request: ChatCompletionRequest,
  ticket: Ticket,
  /** The policies the request is under (its key's included), for the answer. */
  policies: ReadonlyArray<Policy>
) => Effect.Effect<ChatAnswer, ClientError> = Effect.fnUntraced(function*(
  config: ResolvedConfig,
  consensus: Consensus,
  request: ChatCompletionRequest,
  ticket: Ticket,
  policies: ReadonlyArray<Policy>
) {
  const presetId = request.model === "consensus" ? undefined : request.model.slice("consensus/".length)
  const preset = presetId === undefined ? undefined : config.consensus.presets.get(presetId)
  if (presetId !== undefined && preset === undefined) {
    return yield* new UnknownModel({ model: request.model, known: ["consensus", ...[...config.consensus.presets.keys()].map((id) => `consensus/${id}`)] })
  }
  const { id: _id, ...defaults } = preset ?? { id: "" }
  const setup = overlay(defaults, yield* setupOf(request))
  const { messages, model, response_format, stream, stream_options } = request
  // A preset is a task of its own unless the body names one.
  const task = setup.task ?? presetId
  const consensusRequest: ConsensusRequest = { ...setup, ...(task === undefined ? {} : { task }), messages, ...(response_format === undefined ? {} : { response_format }) }
  // Output policies see the answer and every candidate's text before anything of the report leaves.
  const report = yield* Effect.flatMap(consensus.run(consensusRequest, samplingOf(request)), (r) => checkReport(policies, r))
  // A consensus stream is written after the answer is decided, so its cost is known up front.
  const cost = formatUsd(ticket.finish(200))
  const created = Math.floor(Date.now() / 1000)
  const toolCalls = report.answer.tool_calls
  const finishReason = toolCalls === undefined ? "stop" as const : "tool_calls" as const

  const answer = {
    id: report.id,
    object: "chat.completion" as const,
    created,
    model,
    choices: [{
      index: 0,
      message: { role: "assistant" as const, content: report.answer.content, refusal: null, ...(toolCalls === undefined ? {} : { tool_calls: toolCalls }) },
      finish_reason: finishReason,
      logprobs: null
    }],
    usage: report.usage,
    consensus: reportField(report, cost)
  }
  if (stream !== true) return { _tag: "Completion", completion: answer, headers: { [COST_HEADER]: cost } } as const
  const header = { id: report.id, model, created }
  const chunks: ReadonlyArray<ChatCompletionChunk> = [
    chunk(header, { role: "assistant", content: toolCalls === undefined ? "" : null }),
    ...answerChunks(header, report),
    // The report rides on the finishing chunk, as an extra field (clients ignore what they do not know).
    withReport(chunk(header, {}, finishReason), reportField(report, cost)),
    ...(stream_options?.include_usage === true ? [usageChunk(header, report.usage)] : [])
  ]
  return { _tag: "Stream", chunks: pullOf(chunks), headers: { "x-quorum-deployment": "consensus", [COST_HEADER]: cost } } as const
})
