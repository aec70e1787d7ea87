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
import { consensusChat } from "./chat-consensus"
import { errorAnswer, errorResponse } from "./errors"
import { readChatRequest } from "./read-json-body"
import { DONE, sse, SSE_HEADERS } from "./sse"


const routingHeaders = (routed: Routed<unknown>) => ({
  "x-quorum-deployment": routed.deployment.id,
  "x-quorum-attempts": String(routed.attempts)
})

const streamed = (router: Router, request: ChatCompletionRequest) =>
  Effect.gen(function*() {
    // The upstream call must outlive this handler: it closes with the response stream,
    // or with the connection if the client leaves before the stream is written at all.
    const scope = yield* Scope.make()
    const serverRequest = yield* HttpServerRequest.HttpServerRequest
    NodeHttpServerRequest.toServerResponse(serverRequest).once("close", () => {
      Effect.runFork(Scope.close(scope, Exit.void))
    })
    const routed = yield* router.stream(request).pipe(
      Scope.extend(scope),
      Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
    )
    // Upstreams are always asked for usage (it is the cost); callers get it only if they asked.
    const wantsUsage = request.stream_options?.include_usage === true
    const body = routed.value.pipe(
      Stream.filterMap((chunk: ChatCompletionChunk) =>
        wantsUsage || chunk.choices.length > 0 ? Option.some(sse(chunk)) : Option.none()
      ),
      Stream.concat(Stream.succeed(DONE)),
      // A stream cut after its first byte ends with an error event, never a silent [DONE].
      Stream.catchAll((error) => Stream.succeed(sse(errorAnswer(error).body))),
      Stream.ensuring(Scope.close(scope, Exit.void))
    )
    return HttpServerResponse.stream(body, {
      contentType: "text/event-stream",
      headers: { ...SSE_HEADERS, ...routingHeaders(routed) }
    })
  })

export const makeChatCompletions = (config: ResolvedConfig, router: Router, consensus: Consensus) =>
  Effect.gen(function*() {
    const request = yield* readChatRequest(config.maxBodyBytes)
    if (isConsensusName(request.model)) return yield* consensusChat(config, consensus, request)
    if (request.stream === true) return yield* streamed(router, request)
    const routed = yield* router.complete(request)
    return HttpServerResponse.unsafeJson(routed.value, { headers: routingHeaders(routed) })
  }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
