/**
 * What routing may know of a request, computed once per request: what conditional rules
 * match on and what per-request limits weigh. Never the prompt's text.
 */
import type { ChatCompletionRequest } from "../protocol/chat-request"
import { promptTokensOf } from "../protocol/tokens"

export interface RequestFacts {
  /** The model name the client asked for. */
  readonly model: string
  readonly promptTokens: number
  readonly stream: boolean
  readonly tools: boolean
  readonly images: boolean
  readonly responseFormat: "text" | "json_object" | "json_schema"
  readonly metadata: Readonly<Record<string, string>>
  /** Tags of the virtual key that made the request (none without a key). */
  readonly keyTags: ReadonlyArray<string>
}

const hasImages = (request: ChatCompletionRequest): boolean =>
  request.messages.some((m) => Array.isArray(m.content) && m.content.some((part) => part.type === "image_url"))

export const factsOf = (request: ChatCompletionRequest, keyTags: ReadonlyArray<string> = []): RequestFacts => ({
  model: request.model,
  promptTokens: promptTokensOf(request),
  stream: request.stream === true,
  tools: (request.tools?.length ?? 0) > 0,
  images: hasImages(request),
  responseFormat: request.response_format?.type ?? "text",
  metadata: request.metadata ?? {},
  keyTags
})
