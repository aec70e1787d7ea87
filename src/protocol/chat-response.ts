/**
 * OpenAI's chat-completion response and stream chunk: what every adapter produces and
 * what the gateway sends. Shapes follow OpenAI's published component schemas
 * (CreateChatCompletionResponse, CreateChatCompletionStreamResponse, CompletionUsage).
 */
import { Schema } from "effect"
import { ToolCall } from "./chat-request"

export const FinishReason = Schema.Literal("stop", "length", "tool_calls", "content_filter", "function_call")
export type FinishReason = typeof FinishReason.Type

export const Usage = Schema.Struct({
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.Number,
  prompt_tokens_details: Schema.optional(
    Schema.Struct({ cached_tokens: Schema.optional(Schema.Number) })
  ),
  completion_tokens_details: Schema.optional(
    Schema.Struct({ reasoning_tokens: Schema.optional(Schema.Number) })
  )
})
export type Usage = typeof Usage.Type

export const ResponseMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.NullOr(Schema.String),
  refusal: Schema.NullOr(Schema.String),
  tool_calls: Schema.optional(Schema.Array(ToolCall))
})
export type ResponseMessage = typeof ResponseMessage.Type

export const Choice = Schema.Struct({
  index: Schema.Number,
  message: ResponseMessage,
  finish_reason: Schema.NullOr(FinishReason),
  logprobs: Schema.optional(Schema.NullOr(Schema.Unknown))
})
export type Choice = typeof Choice.Type

export const ChatCompletion = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("chat.completion"),
  created: Schema.Number,
  model: Schema.String,
  choices: Schema.Array(Choice),
  usage: Schema.optional(Usage),
  system_fingerprint: Schema.optional(Schema.NullOr(Schema.String))
})
export type ChatCompletion = typeof ChatCompletion.Type

export const ToolCallDelta = Schema.Struct({
  index: Schema.Number,
  id: Schema.optional(Schema.String),
  type: Schema.optional(Schema.Literal("function")),
  function: Schema.optional(
    Schema.Struct({ name: Schema.optional(Schema.String), arguments: Schema.optional(Schema.String) })
  )
})
export type ToolCallDelta = typeof ToolCallDelta.Type

export const Delta = Schema.Struct({
  role: Schema.optional(Schema.Literal("assistant")),
  content: Schema.optional(Schema.NullOr(Schema.String)),
  refusal: Schema.optional(Schema.NullOr(Schema.String)),
  tool_calls: Schema.optional(Schema.Array(ToolCallDelta))
})
export type Delta = typeof Delta.Type

export const ChunkChoice = Schema.Struct({
  index: Schema.Number,
  delta: Delta,
  finish_reason: Schema.NullOr(FinishReason),
  logprobs: Schema.optional(Schema.NullOr(Schema.Unknown))
})
export type ChunkChoice = typeof ChunkChoice.Type

export const ChatCompletionChunk = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("chat.completion.chunk"),
  created: Schema.Number,
  model: Schema.String,
  choices: Schema.Array(ChunkChoice),
  usage: Schema.optional(Schema.NullOr(Usage)),
  system_fingerprint: Schema.optional(Schema.NullOr(Schema.String))
})
export type ChatCompletionChunk = typeof ChatCompletionChunk.Type

export const usageOf = (prompt: number, completion: number, cached?: number): Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  ...(cached !== undefined && cached > 0 ? { prompt_tokens_details: { cached_tokens: cached } } : {})
})

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)
