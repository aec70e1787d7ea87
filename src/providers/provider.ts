import type { Effect, Stream } from "effect"
import type { Deployment } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import type { EmbeddingRequest, EmbeddingResponse } from "../protocol/embeddings"
import type { Redactor } from "./redact"
import type { UpstreamError } from "./upstream-error"

/**
 * One deployment, spoken to in OpenAI's terms. An adapter translates both ways and
 * reports failures as UpstreamErrors; retries, timeouts and fallback are the router's.
 *
 * A stream must fail with `stream_cut` when the upstream ends it without the
 * provider's terminal signal: a cut stream never looks like a finished one.
 *
 * Adapters enforce the call's deadline (both methods; the router derives it from
 * `total_ms`, the output the request may write and the retry budget) and `idle_ms`
 * (silence inside a stream), failing with a `timeout`; the router sets only the
 * first-token deadline. They own these timers because they can set them on the call itself (one
 * native timer, or undici's timer wheel), where a timeout around an Effect forks fibers
 * (~50 µs a call) and one around a Stream does so on every chunk (~60 µs a chunk).
 */
export interface ProviderClient {
  readonly complete: (request: ChatCompletionRequest, deadline: CallDeadline) => Effect.Effect<ChatCompletion, UpstreamError>
  readonly stream: (request: ChatCompletionRequest, deadline: CallDeadline) => Stream.Stream<ChatCompletionChunk, UpstreamError>
  /** Embeddings, for providers that serve them (the request's model already the upstream's). */
  readonly embed?: (request: EmbeddingRequest, deadline: CallDeadline) => Effect.Effect<EmbeddingResponse, UpstreamError>
}

/** How long one call may take, start to last byte, and the setting that says so (named in the timeout's message). */
export interface CallDeadline {
  readonly ms: number
  readonly setting: string
}

export interface AdapterContext {
  readonly redact: Redactor
}

export type MakeClient = (deployment: Deployment, context: AdapterContext) => ProviderClient
