/**
 * A chat request, parsed, to its answer: the content policies, admission against the
 * caller's key, then consensus or the router. Shared by every hot route that speaks chat
 * underneath (chat completions, Anthropic's Messages, OpenAI's Responses): each parses
 * its own wire format into a chat request and renders the answer back into it.
 */
import { Effect, type Scope, Stream } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import { isConsensusName } from "../config/load"
import type { Consensus } from "../consensus/engine"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import type { Router, Routed } from "../routing/router"
import { formatUsd } from "../spend/price"
import type { Spend } from "../spend/spend"
import { chatBound } from "../spend/worst-case"
import type { Policy } from "../policy/policy"
import { consensusChat } from "./chat-consensus"
import { type ClientError, errorAnswer, type InvalidRequest } from "./errors"
import { type Headers, sseReply, type SseReply } from "./hot/reply"
import { COST_HEADER, type RequestSpend } from "./metered"
import { checkAnswer, checkRequest, POLICY_HEADER, scanChunks } from "./policies"

export interface ChatServices {
  readonly config: ResolvedConfig
  readonly router: Router
  readonly consensus: Consensus
  readonly spend: Spend
}

export type ChatAnswer =
  | { readonly _tag: "Completion"; readonly completion: ChatCompletion; readonly headers: Headers }
  | { readonly _tag: "Stream"; readonly chunks: Stream.Stream<ChatCompletionChunk, ClientError>; readonly headers: Headers }

const routingHeaders = (routed: Routed<unknown>) => ({
  "x-quorum-deployment": routed.deployment.id,
  "x-quorum-attempts": String(routed.attempts)
})

/** The output policies' scan, only where there are any: a Stream step costs on every chunk. */
const scanned = (policies: ReadonlyArray<Policy>) =>
<E>(chunks: Stream.Stream<ChatCompletionChunk, E>): Stream.Stream<ChatCompletionChunk, E | InvalidRequest> =>
  policies.some((p) => p.on !== "input") ? Stream.mapEffect(chunks, scanChunks(policies)) : chunks

/**
 * The answer to a chat request. A stream's upstream call lives in the request's scope: it
 * ends with the stream, or when the client leaves. The stream's recording is the
 * renderer's (see `meteredSse`); a completion is recorded here, its cost in the headers.
 */
export const answerChat = (
  services: ChatServices,
  metering: RequestSpend,
  authorization: string | undefined,
  asked: ChatCompletionRequest
): Effect.Effect<ChatAnswer, ClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, router, consensus, spend } = services
    metering.model = asked.model
    const { request: parsed, applied } = yield* checkRequest(config.policies, asked)
    const policyHeaders: Record<string, string> = applied.length > 0 ? { [POLICY_HEADER]: applied.join(", ") } : {}
    metering.stream = parsed.stream === true
    if (isConsensusName(parsed.model)) return yield* consensusChat(config, consensus, parsed, spend, authorization, metering)

    let bound: ReturnType<typeof chatBound> | undefined
    metering.admission = yield* spend.admit(authorization, [parsed.model], () => [(bound = chatBound(config, parsed)).option])
    // The reservation assumed an output ceiling the request did not set: hold the call to it.
    const request = metering.admission?.reservation !== undefined && bound?.capOutputAt !== undefined
      ? { ...parsed, max_tokens: bound.capOutputAt }
      : parsed
    if (request.stream === true) {
      const routed = yield* router.stream(request)
      return { _tag: "Stream", chunks: scanned(config.policies)(routed.value), headers: { ...routingHeaders(routed), ...policyHeaders } } as const
    }
    const routed = yield* router.complete(request)
    const completion = yield* checkAnswer(config.policies, routed.value)
    const cost = metering.finish(200)
    return { _tag: "Completion", completion, headers: { ...routingHeaders(routed), ...policyHeaders, [COST_HEADER]: formatUsd(cost) } } as const
  })

/**
 * A streamed answer as the route's event stream, recorded once: when it ends, whole or
 * with the error event the renderer wrote for its failure (named in the ledger), or when
 * the client leaves (499, cancelled). The cost follows the body as an HTTP trailer.
 * `render` turns chunks into frames and a failure into the route's error event, calling
 * `failed` with it.
 */
export const meteredSse = (
  chunks: Stream.Stream<ChatCompletionChunk, ClientError>,
  headers: Headers,
  metering: RequestSpend,
  render: (chunks: Stream.Stream<ChatCompletionChunk, ClientError>, failed: (error: ClientError) => void) => Stream.Stream<Uint8Array>
): SseReply => {
  let failure: string | undefined
  let ended = false
  const body = render(chunks, (error) => (failure = errorAnswer(error).body.error.message)).pipe(
    Stream.onEnd(Effect.sync(() => (ended = true))),
    Stream.ensuring(Effect.sync(() => metering.finish(ended ? 200 : 499, ended ? failure : "the client closed the stream", !ended)))
  )
  return sseReply(body, headers, { names: [COST_HEADER], values: () => ({ [COST_HEADER]: formatUsd(metering.finish(200)) }) })
}
