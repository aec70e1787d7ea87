/**
 * The response cache on the chat path: what a request says of it (`quorum: {cache}` in the
 * body, `Cache-Control`), which settings apply (the route's, else the gateway's), a hit
 * answered without any upstream call (JSON, or replayed as a stream) at no cost, and a
 * miss's complete answer kept for the next caller of the same tenant.
 */
import { Effect, Either, Schema } from "effect"
import { type Pull, tapChunks } from "../domain/pull"
import type { IncomingHttpHeaders } from "node:http"
import type { CachedAnswer } from "../cache/answer"
import { CacheDirectives, withCacheControl } from "../cache/directives"
import { type Lookup, lookup, remember, type Semantic } from "../cache/response-cache"
import type { CacheSettings } from "../config/cache"
import type { CacheStoreShape } from "../cache/store"
import { memoryStore } from "../cache/memory-store"
import { SemanticIndex } from "../cache/semantic-index"
import type { Router } from "../routing/router"
import { RequestLimits } from "../routing/constraints"
import type { ResolvedConfig } from "../config/gateway-config"
import { firstIssue } from "../config/paths"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import { completionChunks, StreamAssembler } from "../protocol/stream-assembly"
import { formatUsd } from "../domain/money"
import type { TelemetryShape } from "../telemetry/telemetry"
import { InvalidRequest } from "./errors"

export interface CacheServices {
  readonly store: CacheStoreShape
  readonly semantic: Semantic | undefined
}

export const CACHE_HEADER = "x-quorum-cache"
export const SAVED_HEADER = "x-quorum-saved-usd"

/** What a body may ask of the gateway itself, under `quorum`; never sent upstream. */
const QuorumOptions = Schema.Struct({ cache: Schema.optional(CacheDirectives), ...RequestLimits.fields })
type QuorumOptions = typeof QuorumOptions.Type
const decodeOptions = Schema.decodeUnknownEither(QuorumOptions, { onExcessProperty: "error" })

/** The request without its `quorum` field, and what that field asked. */
export const takeQuorumOptions = (asked: ChatCompletionRequest): Effect.Effect<{ request: ChatCompletionRequest; options: QuorumOptions }, InvalidRequest> => {
  if (!("quorum" in asked)) return Effect.succeed({ request: asked, options: {} })
  const { quorum, ...request } = asked as ChatCompletionRequest & { quorum: unknown }
  const options = decodeOptions(quorum)
  if (Either.isRight(options)) return Effect.succeed({ request, options: options.right })
  const issue = firstIssue(options.left)
  const param = issue.path === "" ? "quorum" : `quorum.${issue.path}`
  return Effect.fail(new InvalidRequest({ message: `Invalid value for '${param}': ${issue.message}`, param, code: "invalid_value" }))
}

const LIMIT_HEADERS = { max_latency_ms: "x-quorum-max-latency-ms", max_cost_usd: "x-quorum-max-cost-usd" } as const

/**
 * The request's own limits: the body's, else its headers'; a header that is not a number is
 * a 400 naming it. Plain: read on every request, it needs no step of its own.
 */
export const limitsOf = (options: QuorumOptions, headers: IncomingHttpHeaders): Either.Either<RequestLimits | undefined, InvalidRequest> => {
  const limits: { max_latency_ms?: number; max_cost_usd?: number } = {}
  for (const name of ["max_latency_ms", "max_cost_usd"] as const) {
    const given = options[name]
    if (given !== undefined) {
      limits[name] = given
      continue
    }
    const header = headers[LIMIT_HEADERS[name]]
    if (typeof header !== "string") continue
    const value = Number(header)
    if (header.trim() === "" || !Number.isFinite(value) || value < 0 || (name === "max_latency_ms" && value === 0)) {
      return Either.left(new InvalidRequest({ message: `Invalid value for header '${LIMIT_HEADERS[name]}': expected a positive number, got "${header.slice(0, 40)}"`, param: LIMIT_HEADERS[name], code: "invalid_value" }))
    }
    limits[name] = value
  }
  // None given: undefined, so that the router skips the check.
  return Either.right(limits.max_latency_ms === undefined && limits.max_cost_usd === undefined ? undefined : limits)
}

export const cacheSettingsFor = (config: ResolvedConfig, model: string): CacheSettings | undefined =>
  config.routes.get(model)?.cache ?? config.cache

/** Looks the request up; the tenant is the key's id, or one shared scope on an open gateway without one. */
export const lookUp = (
  cache: CacheServices,
  settings: CacheSettings,
  keyId: string | undefined,
  policies: ReadonlyArray<{ readonly name: string }>,
  request: ChatCompletionRequest,
  options: QuorumOptions,
  headers: IncomingHttpHeaders
): Effect.Effect<Lookup> => {
  const cacheControl = headers["cache-control"]
  return lookup(cache.store, cache.semantic, {
    // What is kept is an answer after the output policies the request was under: a key
    // whose policies change (an admin update) does not get answers kept under the old ones.
    scope: `${keyId ?? "open"}\0${policies.map((p) => p.name).join(",")}`,
    request,
    directives: withCacheControl(options.cache, typeof cacheControl === "string" ? cacheControl : undefined),
    settings
  })
}

/** A hit's headers and the chunks that replay it as a stream; it counts in the metrics with what it saved. */
export const hit = (answer: CachedAnswer, match: "exact" | "semantic", telemetry: TelemetryShape | undefined) => {
  telemetry?.metrics.cache.inc({ result: `hit_${match}` })
  if (answer.cost_micros > 0) telemetry?.metrics.cacheSavedUsd.inc(answer.cost_micros / 1e6)
  return {
    headers: {
      [CACHE_HEADER]: `hit (${match})`,
      [SAVED_HEADER]: formatUsd(answer.cost_micros),
      "x-quorum-deployment": answer.deployment,
      "x-quorum-attempts": "0"
    },
    chunks: () => completionChunks(answer.completion, true)
  }
}

export const missed = (telemetry: TelemetryShape | undefined) => {
  telemetry?.metrics.cache.inc({ result: "miss" })
  return { [CACHE_HEADER]: "miss" }
}

/** Keeps a complete answer where the lookup said, off the request's path. */
export const keep = (cache: CacheServices, looked: Lookup, completion: ChatCompletion, costMicros: number, deployment: string): void => {
  if (looked._tag !== "Miss" || looked.keep === undefined) return
  Effect.runFork(remember(cache.store, cache.semantic, looked, { completion, cost_micros: costMicros, deployment, stored_at: Date.now() }))
}

/** A stream's chunks, assembled as they pass; `kept(cost)` keeps the whole answer once it ended whole. */
export const assembling = <E>(cache: CacheServices, looked: Lookup, deployment: string, chunks: Pull<ChatCompletionChunk, E>) => {
  const assembler = new StreamAssembler()
  return {
    chunks: tapChunks(chunks, (batch) => {
      for (const chunk of batch) assembler.push(chunk)
    }),
    kept: (costMicros: number) => {
      const completion = assembler.completion()
      if (completion !== undefined) keep(cache, looked, completion, costMicros, deployment)
    }
  }
}

/**
 * The cache's store and semantic index for this worker, or undefined when no cache is
 * configured anywhere. One store for every route (Redis's, or in memory where the largest
 * `max_mb` bounds it); the
 * semantic index embeds through the router, so an embeddings call is routed, retried and
 * billed to the request that caused it like any other.
 */
export const makeCacheServices = (config: ResolvedConfig, router: Router, shared: CacheStoreShape | undefined): CacheServices | undefined => {
  const settings = [config.cache, ...[...config.routes.values()].map((r) => r.cache)].filter((s): s is CacheSettings => s !== undefined)
  if (settings.length === 0) return undefined
  // Shared by replicas (Redis) when there is such a store; else this worker's memory.
  const store = shared ?? memoryStore({ maxBytes: Math.max(...settings.map((s) => s.max_mb)) * 1024 * 1024 })
  const semantics = settings.flatMap((s) => (s.semantic === undefined ? [] : [s.semantic]))
  if (semantics.length === 0) return { store, semantic: undefined }
  const embed = (model: string, text: string) =>
    Effect.flatMap(router.embed({ model, input: text }, { model, messages: [{ role: "user", content: text }] }), ({ value }) => {
      const vector = value.data[0]?.embedding
      return Array.isArray(vector) ? Effect.succeed(vector) : Effect.fail(new Error("the embeddings model answered no vector"))
    })
  return { store, semantic: { index: new SemanticIndex(Math.max(...semantics.map((s) => s.max_entries))), embedder: { embed } } }
}
