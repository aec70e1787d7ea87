/**
 * `model: "consensus"` and `"consensus/<preset>"` in chat completions: the consensus
 * engine, answered in OpenAI's shape so that OpenAI SDKs work unchanged. The report
 * rides along in an extra `consensus` field; a stream carries the chosen answer once it
 * is decided.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Stream } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import type { Consensus } from "../consensus/engine"
import type { ConsensusReport, ConsensusRequest } from "../consensus/request"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import { chunk, usageChunk } from "../providers/build"
import { UnknownModel } from "../routing/errors"
import { formatUsd } from "../spend/price"
import type { Spend } from "../spend/spend"
import { admitFanout } from "./consensus"
import { COST_HEADER, type RequestSpend } from "./metered"
import { DONE, sse, SSE_HEADERS } from "./sse"


/** The report minus what the completion already says. */
const reportField = (report: ConsensusReport) => ({
  ...report.consensus,
  answer_model: report.answer.model,
  candidates: report.candidates,
  evaluator_errors: report.evaluator_errors,
  fallback: report.fallback,
  cost_usd: report.cost_usd,
  latency_ms: report.latency_ms
})

export const consensusChat = (
  config: ResolvedConfig,
  consensus: Consensus,
  request: ChatCompletionRequest,
  spend: Spend,
  authorization: string | undefined,
  metering: RequestSpend
) =>
  Effect.gen(function*() {
    const presetId = request.model === "consensus" ? undefined : request.model.slice("consensus/".length)
    const preset = presetId === undefined ? undefined : config.consensus.presets.get(presetId)
    if (presetId !== undefined && preset === undefined) {
      return yield* new UnknownModel({ model: request.model, known: ["consensus", ...[...config.consensus.presets.keys()].map((id) => `consensus/${id}`)] })
    }
    const { messages, model, response_format, stream, stream_options, ...sampling } = request
    const { id: _id, ...setup } = preset ?? { id: "" }
    const consensusRequest: ConsensusRequest = { ...setup, messages, ...(response_format === undefined ? {} : { response_format }) }
    const report = yield* consensus.run(consensusRequest, sampling, yield* admitFanout(spend, authorization, metering))
    // A consensus stream is written after the answer is decided, so its cost is known up front.
    const cost = formatUsd(metering.finish(200))
    const created = Math.floor(Date.now() / 1000)

    if (stream !== true) {
      return HttpServerResponse.unsafeJson({
        id: report.id,
        object: "chat.completion",
        created,
        model,
        choices: [{
          index: 0,
          message: { role: "assistant", content: report.answer.content, refusal: null },
          finish_reason: "stop",
          logprobs: null
        }],
        usage: report.usage,
        consensus: reportField(report)
      }, { headers: { [COST_HEADER]: cost } })
    }
    const header = { id: report.id, model, created }
    const chunks = [
      chunk(header, { role: "assistant", content: "" }),
      chunk(header, { content: report.answer.content }),
      { ...chunk(header, {}, "stop"), consensus: reportField(report) },
      ...(stream_options?.include_usage === true ? [usageChunk(header, report.usage)] : [])
    ]
    return HttpServerResponse.stream(
      Stream.fromIterable(chunks).pipe(Stream.map(sse), Stream.concat(Stream.succeed(DONE))),
      { contentType: "text/event-stream", headers: { ...SSE_HEADERS, "x-quorum-deployment": "consensus", [COST_HEADER]: cost } }
    )
  })
