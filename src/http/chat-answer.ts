/**
 * A chat request, parsed, to its answer: the content policies, admission against the
 * caller's key, then consensus or the router. Shared by every hot route that speaks chat
 * underneath (chat completions, Anthropic's Messages, OpenAI's Responses): each parses
 * its own wire format into a chat request and renders the answer back into it.
 */
import { Effect, type Scope } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import { isConsensusName } from "../config/gateway-config"
import type { Consensus } from "../consensus/engine"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import type { Router, Routed } from "../routing/router"
import { formatUsd } from "../domain/money"
import { mapEachEffect, type Pull, pullOf } from "../domain/pull"
import { type Frames, framesPull } from "../protocol/frames"
import type { Spend } from "../billing/spend"
import { chatBound } from "../billing/worst-case"
import { countPrompt } from "../protocol/tokens"
import type { Policy } from "../policy/policy"
import type { AdmissionError } from "../billing/errors"
import { consensusChat } from "./chat-consensus"
import { type ClientError, errorAnswer, InvalidRequest } from "./errors"
import { type Headers, sseReply, type SseReply } from "./hot/reply"
import { COST_HEADER } from "./metered"
import type { Ticket } from "../billing/ticket"
import { assembling, type CacheServices, cacheSettingsFor, hit, keep, limitsOf, lookUp, missed, takeQuorumOptions } from "./chat-cache"
import type { TelemetryShape } from "../telemetry/telemetry"
import type { IncomingHttpHeaders } from "node:http"
import { admitsFirst, checkAnswer, checkRequest, POLICY_HEADER, requestPolicies, scanChunks } from "./policies"

export interface ChatServices {
  readonly config: ResolvedConfig
  readonly router: Router
  readonly consensus: Consensus
  readonly spend: Spend
  /** The response cache's store and semantic index; undefined where no cache is configured. */
  readonly cache?: CacheServices | undefined
  readonly telemetry?: TelemetryShape | undefined
}

export type ChatAnswer =
  | { readonly _tag: "Completion"; readonly completion: ChatCompletion; readonly headers: Headers }
  | {
    readonly _tag: "Stream"
    /** A pull (domain/pull.ts): the hot path's form, with no Stream operator per chunk. */
    readonly chunks: Pull<ChatCompletionChunk, ClientError>
    readonly headers: Headers
    /** Called with the request's cost once the stream ended whole (the cache keeps it then). */
    readonly completed?: (costMicros: number) => void
  }

const routingHeaders = (routed: Routed<unknown>) => ({
  "x-quorum-deployment": routed.deployment.id,
  "x-quorum-attempts": String(routed.attempts)
})

/** The output policies' scan, only where there are any: a step costs on every chunk. */
const scanned = (policies: ReadonlyArray<Policy>) =>
<E>(chunks: Pull<ChatCompletionChunk, E>): Pull<ChatCompletionChunk, E | InvalidRequest> =>
  policies.some((p) => p.on !== "input") ? mapEachEffect(chunks, scanChunks(policies)) : chunks

/** What the request asked beyond chat: its limits (now the ticket's), cache directives, and the policies it is under. */
const readRequest = Effect.fnUntraced(function*(services: ChatServices, ticket: Ticket, headers: IncomingHttpHeaders, body: ChatCompletionRequest) {
  ticket.model = body.model
  const { request: asked, options } = yield* takeQuorumOptions(body)
  ticket.limits = yield* limitsOf(options, headers)
  // Who is calling is known from here, for the policies (the key's own) and routing (its tags).
  const policies = yield* requestPolicies(services.config.policies, asked.model, ticket)
  const early = admitsFirst(policies) && !isConsensusName(asked.model) ? { cap: yield* admit(services.config, ticket, asked) } : undefined
  const { request, applied } = yield* checkRequest(policies, asked)
  ticket.stream = request.stream === true
  const policyHeaders: Headers = applied.length > 0 ? { [POLICY_HEADER]: applied.join(", ") } : {}
  return { request, options, policies, policyHeaders, early }
})

/**
 * Admission for one model or route: the output ceiling its reservation assumed where the
 * request set none (the call is then held to it), or undefined.
 */
const admit = (config: ResolvedConfig, ticket: Ticket, request: ChatCompletionRequest): Effect.Effect<number | undefined, AdmissionError> => {
  let bound: ReturnType<typeof chatBound> | undefined
  const estimate = Effect.map(countPrompt(request), () => [(bound = chatBound(config, request)).option])
  return Effect.map(ticket.admit([request.model], estimate), (admission) =>
    admission?.reservation !== undefined ? bound?.capOutputAt : undefined)
}

const capped = (request: ChatCompletionRequest, cap: number | undefined): ChatCompletionRequest => (cap === undefined ? request : { ...request, max_tokens: cap })

/**
 * The answer to a chat request. A stream's upstream call lives in the request's scope: it
 * ends with the stream, or when the client leaves. The stream's recording is the
 * renderer's (see `meteredSse`); a completion is recorded here, its cost in the headers.
 */
export const answerChat: (
  services: ChatServices,
  ticket: Ticket,
  headers: IncomingHttpHeaders,
  body: ChatCompletionRequest
) => Effect.Effect<ChatAnswer, ClientError, Scope.Scope> = Effect.fnUntraced(function*(
  services: ChatServices,
  ticket: Ticket,
  headers: IncomingHttpHeaders,
  body: ChatCompletionRequest
) {
  const { config, router, consensus, cache, telemetry } = services
  const { request: parsed, options, policies, policyHeaders, early } = yield* readRequest(services, ticket, headers, body)
  // A fan-out keeps to the request's limits too: the consensus engine reads them from the ticket.
  if (isConsensusName(parsed.model)) return yield* consensusChat(config, consensus, parsed, ticket, policies)
  const request = capped(parsed, early !== undefined ? early.cap : yield* admit(config, ticket, parsed))

  // The cache is looked up after admission: a hit is still the key's to ask for (models, limits), and costs nothing.
  const settings = cache === undefined ? undefined : cacheSettingsFor(config, parsed.model)
  const looked = cache === undefined || settings === undefined ? undefined : yield* lookUp(cache, settings, ticket.admission?.keyId, policies, parsed, options, headers)
  if (looked?._tag === "Hit") {
    const answer = hit(looked.answer, looked.match, telemetry)
    if (request.stream === true) return { _tag: "Stream", chunks: pullOf(answer.chunks()), headers: { ...answer.headers, ...policyHeaders } } as const
    return { _tag: "Completion", completion: looked.answer.completion, headers: { ...answer.headers, ...policyHeaders, [COST_HEADER]: formatUsd(ticket.finish(200)) } } as const
  }
  const cacheHeaders = looked === undefined ? {} : missed(telemetry)

  if (request.stream === true) {
    const routed = yield* router.open(request)
    const outHeaders = { ...routingHeaders(routed), ...policyHeaders, ...cacheHeaders }
    if (cache === undefined || looked === undefined) return { _tag: "Stream", chunks: scanned(policies)(routed.value), headers: outHeaders } as const
    // What is kept is what the client was sent: after the output policies.
    const kept = assembling(cache, looked, routed.deployment.id, scanned(policies)(routed.value))
    return { _tag: "Stream", chunks: kept.chunks, headers: outHeaders, completed: kept.kept } as const
  }
  const routed = yield* router.complete(request)
  const completion = yield* checkAnswer(policies, routed.value)
  const cost = ticket.finish(200)
  if (cache !== undefined && looked !== undefined) keep(cache, looked, completion, cost, routed.deployment.id)
  return { _tag: "Completion", completion, headers: { ...routingHeaders(routed), ...policyHeaders, ...cacheHeaders, [COST_HEADER]: formatUsd(cost) } } as const
})

/**
 * A streamed answer as the route's event stream, recorded once: when it ends, whole or
 * with the error event the route's frames wrote for its failure (named in the ledger), or
 * when the client leaves (499, cancelled). The cost follows the body as an HTTP trailer.
 */
export const meteredSse = (
  answer: Extract<ChatAnswer, { _tag: "Stream" }>,
  ticket: Ticket,
  frames: Frames<ClientError>
): SseReply => {
  let failure: string | undefined
  let ended = false
  const body = framesPull(answer.chunks, frames, (error) => {
    ended = true
    if (error !== undefined) failure = errorAnswer(error).body.error.message
  })
  // Once, by whichever asks first: the trailer (the body has ended) or the writer's close.
  let cost: number | undefined
  const recorded = (): number => {
    if (cost !== undefined) return cost
    cost = ticket.finish(ended ? 200 : 499, ended ? failure : "the client closed the stream", !ended)
    if (ended && failure === undefined) answer.completed?.(cost)
    return cost
  }
  return sseReply(body, Effect.sync(recorded), answer.headers, { names: [COST_HEADER], values: () => ({ [COST_HEADER]: formatUsd(recorded()) }) })
}
