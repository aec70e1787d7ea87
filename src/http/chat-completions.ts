/**
 * POST /v1/chat/completions. Raw rather than an HttpApi handler: it streams SSE, keeps
 * unknown request fields, and answers every failure in OpenAI's error shape.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Exit, Option, Scope, Stream } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletionChunk } from "../protocol/chat-response"
import type { Router, Routed } from "../routing/router"
import { isConsensusName } from "../config/load"
import type { Consensus } from "../consensus/engine"
import { formatUsd } from "../spend/price"
import type { Spend } from "../spend/spend"
import { chatBound } from "../spend/worst-case"
import { consensusChat } from "./chat-consensus"
import { errorAnswer } from "./errors"
import { COST_HEADER, metered, type RequestSpend } from "./metered"
import { readChatRequest } from "./read-json-body"
import { DONE, sse, SSE_HEADERS } from "./sse"
import type { Policy } from "../policy/policy"
import { checkAnswer, checkRequest, POLICY_HEADER, scanChunks } from "./policies"

const routingHeaders = (routed: Routed<unknown>) => ({
  "x-quorum-deployment": routed.deployment.id,
  "x-quorum-attempts": String(routed.attempts)
})

const streamed = (router: Router, request: ChatCompletionRequest, spend: RequestSpend, policies: ReadonlyArray<Policy>, headers: Record<string, string>) =>
  Effect.gen(function*() {
    // The upstream call must outlive this handler: it closes with the response stream,
    // or with the connection if the client leaves before the stream is written at all.
    const scope = yield* Scope.make()
    const response = NodeHttpServerRequest.toServerResponse(yield* HttpServerRequest.HttpServerRequest)
    response.once("close", () => {
      // A client gone before its stream was written never runs the stream's finaliser:
      // record the request here (the first record wins), so its reservation is released now.
      spend.finish(499, "the client closed the stream", true)
      Effect.runFork(Scope.close(scope, Exit.void))
    })
    const routed = yield* router.stream(request).pipe(
      Scope.extend(scope),
      Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
    )
    // Upstreams are always asked for usage (it is the cost); callers get it only if they asked.
    const wantsUsage = request.stream_options?.include_usage === true
    let failure: string | undefined
    let ended = false
    const body = routed.value.pipe(
      Stream.mapEffect(scanChunks(policies)),
      Stream.filterMap((chunk: ChatCompletionChunk) =>
        wantsUsage || chunk.choices.length > 0 ? Option.some(sse(chunk)) : Option.none()
      ),
      Stream.concat(Stream.succeed(DONE)),
      // A stream cut after its first byte ends with an error event, never a silent [DONE].
      Stream.catchAll((error) => {
        const answer = errorAnswer(error)
        failure = answer.body.error.message
        return Stream.succeed(sse(answer.body))
      }),
      Stream.onEnd(Effect.sync(() => (ended = true))),
      Stream.ensuring(Effect.suspend(() => {
        const cost = spend.finish(ended ? 200 : 499, ended ? failure : "the client closed the stream", !ended)
        // The cost is known only now: it follows the body as an HTTP trailer.
        if (ended && !response.writableEnded) response.addTrailers({ [COST_HEADER]: formatUsd(cost) })
        return Scope.close(scope, Exit.void)
      }))
    )
    return HttpServerResponse.stream(body, {
      contentType: "text/event-stream",
      headers: { ...SSE_HEADERS, ...routingHeaders(routed), ...headers, trailer: COST_HEADER }
    })
  })

export const makeChatCompletions = (config: ResolvedConfig, router: Router, consensus: Consensus, spend: Spend) =>
  metered(spend, "/v1/chat/completions", (metering) =>
    Effect.gen(function*() {
      const asked = yield* readChatRequest(config)
      metering.model = asked.model
      const { request: parsed, applied } = yield* checkRequest(config.policies, asked)
      const policyHeaders: Record<string, string> = applied.length > 0 ? { [POLICY_HEADER]: applied.join(", ") } : {}
      metering.stream = parsed.stream === true
      const authorization = (yield* HttpServerRequest.HttpServerRequest).headers["authorization"]
      if (isConsensusName(parsed.model)) return yield* consensusChat(config, consensus, parsed, spend, authorization, metering)

      let bound: ReturnType<typeof chatBound> | undefined
      metering.admission = yield* spend.admit(authorization, [parsed.model], () => [(bound = chatBound(config, parsed)).option])
      // The reservation assumed an output ceiling the request did not set: hold the call to it.
      const request = metering.admission?.reservation !== undefined && bound?.capOutputAt !== undefined
        ? { ...parsed, max_tokens: bound.capOutputAt }
        : parsed
      if (request.stream === true) return yield* streamed(router, request, metering, config.policies, policyHeaders)
      const routed = yield* router.complete(request)
      const answer = yield* checkAnswer(config.policies, routed.value)
      const cost = metering.finish(200)
      return HttpServerResponse.unsafeJson(answer, { headers: { ...routingHeaders(routed), ...policyHeaders, [COST_HEADER]: formatUsd(cost) } })
    }))
