import type { Effect, Stream } from "effect"
import type { Deployment } from "../config/gateway-config"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../protocol/chat-response"
import type { Redactor } from "./redact"
import type { UpstreamError } from "./upstream-error"

/**
 * One deployment, spoken to in OpenAI's terms. An adapter translates both ways and
 * reports failures as UpstreamErrors; retries, timeouts and fallback are the router's.
 *
 * A stream must fail with `stream_cut` when the upstream ends it without the
 * provider's terminal signal: a cut stream never looks like a finished one.
 */
export interface ProviderClient {
  readonly complete: (request: ChatCompletionRequest) => Effect.Effect<ChatCompletion, UpstreamError>
  readonly stream: (request: ChatCompletionRequest) => Stream.Stream<ChatCompletionChunk, UpstreamError>
}

export interface AdapterContext {
  readonly redact: Redactor
}

export type MakeClient = (deployment: Deployment, context: AdapterContext) => ProviderClient
