/**
 * POST /v1/chat/completions, a hot route: served from node:http (see hot/front-door.ts),
 * it streams SSE, keeps unknown request fields, and answers every failure in OpenAI's
 * error shape.
 */
import { Chunk, Effect, type Scope, Stream } from "effect"
import type { IncomingMessage } from "node:http"
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
import { errorAnswer, type InvalidRequest } from "./errors"
import { json, type Reply, sseReply } from "./hot/reply"
import { COST_HEADER, metered, type RequestSpend } from "./metered"
import { readChatRequest } from "./read-json-body"
import { DONE, sse } from "./sse"
import type { Policy } from "../policy/policy"
import { checkAnswer, checkRequest, POLICY_HEADER, scanChunks } from "./policies"

const routingHeaders = (routed: Routed<unknown>) => ({
  "x-quorum-deployment": routed.deployment.id,
  "x-quorum-attempts": String(routed.attempts)
})

/** The output policies' scan, only where there are any: a Stream step costs on every chunk. */
const scanned = (policies: ReadonlyArray<Policy>) =>
<E>(chunks: Stream.Stream<ChatCompletionChunk, E>): Stream.Stream<ChatCompletionChunk, E | InvalidRequest> =>
  policies.some((p) => p.on !== "input") ? Stream.mapEffect(chunks, scanChunks(policies)) : chunks

/** The upstream call lives in the request's scope: it ends with the stream, or when the client leaves. */
const streamed = (router: Router, request: ChatCompletionRequest, spend: RequestSpend, policies: ReadonlyArray<Policy>, headers: Record<string, string>) =>
  Effect.map(router.stream(request), (routed) => {
    // Upstreams are always asked for usage (it is the cost); callers get it only if they asked.
    const wantsUsage = request.stream_options?.include_usage === true
    let failure: string | undefined
    let ended = false
    const frames = (chunks: Chunk.Chunk<ChatCompletionChunk>): Chunk.Chunk<Uint8Array> => {
      const out: Array<Uint8Array> = []
      for (const chunk of chunks) if (wantsUsage || chunk.choices.length > 0) out.push(sse(chunk))
      return Chunk.unsafeFromArray(out)
    }
    const body = routed.value.pipe(
      scanned(policies),
      Stream.mapChunks(frames),
      Stream.concat(Stream.sync(() => {
        ended = true
        return DONE
      })),
      // A stream cut after its first byte ends with an error event, never a silent [DONE].
      Stream.catchAll((error) => {
        const answer = errorAnswer(error)
        failure = answer.body.error.message
        ended = true
        return Stream.succeed(sse(answer.body))
      }),
      Stream.ensuring(Effect.sync(() => spend.finish(ended ? 200 : 499, ended ? failure : "the client closed the stream", !ended)))
    )
    // The cost is known only once the body has ended: it follows it as an HTTP trailer.
    return sseReply(body, { ...routingHeaders(routed), ...headers }, {
      names: [COST_HEADER],
      values: () => ({ [COST_HEADER]: formatUsd(spend.finish(200)) })
    })
  })

export const makeChatCompletions = (config: ResolvedConfig, router: Router, consensus: Consensus, spend: Spend) =>
  (incoming: IncomingMessage): Effect.Effect<Reply, never, Scope.Scope> =>
    metered(spend, "/v1/chat/completions", (metering) =>
      Effect.gen(function*() {
        const asked = yield* readChatRequest(incoming, config)
        metering.model = asked.model
        const { request: parsed, applied } = yield* checkRequest(config.policies, asked)
        const policyHeaders: Record<string, string> = applied.length > 0 ? { [POLICY_HEADER]: applied.join(", ") } : {}
        metering.stream = parsed.stream === true
        const authorization = incoming.headers["authorization"]
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
        return json(answer, { ...routingHeaders(routed), ...policyHeaders, [COST_HEADER]: formatUsd(cost) })
      }))
