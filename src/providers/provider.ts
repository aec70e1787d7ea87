import type { Effect, Scope } from "effect"
import type { Deployment } from "../config/gateway-config"
import type { Pull } from "../domain/pull"
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
 * `total_ms`, the output the request may write and the retry budget), a stream's
 * first-token deadline (`CallDeadline.firstToken`, set by the router) and `idle_ms`
 * (silence inside a stream), failing with a `timeout`. They own these timers because they can set them on the call itself (one
 * native timer, or undici's timer wheel), where a timeout around an Effect forks fibers
 * (~50 µs a call) and one around a Stream does so on every chunk (~60 µs a chunk).
 */
export interface ProviderClient {
  readonly complete: (request: ChatCompletionRequest, deadline: CallDeadline) => Effect.Effect<ChatCompletion, UpstreamError>
  /** A stream as a pull (see domain/pull.ts), once the upstream accepted the call; the call lives in the scope. */
  readonly stream: (request: ChatCompletionRequest, deadline: CallDeadline) => Effect.Effect<Pull<ChatCompletionChunk, UpstreamError>, UpstreamError, Scope.Scope>
  /** Embeddings, for providers that serve them (the request's model already the upstream's). */
  readonly embed?: (request: EmbeddingRequest, deadline: CallDeadline) => Effect.Effect<EmbeddingResponse, UpstreamError>
}

/** How long one call may take, start to last byte, and the setting that says so (named in the timeout's message). */
export interface CallDeadline {
  readonly ms: number
  readonly setting: string
  /**
   * A stream's bound on its first element (headers and first event), shorter than `ms`:
   * kept by the adapter's transport with the call's own timer rather than by a timeout
   * combinator around the stream, which forks a fiber on every stream.
   */
  readonly firstToken?: { readonly ms: number; readonly setting: string } | undefined
}

export interface AdapterContext {
  readonly redact: Redactor
}

export type MakeClient = (deployment: Deployment, context: AdapterContext) => ProviderClient
