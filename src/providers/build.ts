/** Builders for the OpenAI shapes that translating adapters produce. */
import type { ToolCall } from "../protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk, Delta, FinishReason, Usage } from "../protocol/chat-response"

export interface CompletionParts {
  readonly id: string
  readonly model: string
  readonly content: string | null
  readonly toolCalls: ReadonlyArray<ToolCall>
  readonly finishReason: FinishReason
  readonly usage: Usage
}

export const completion = (parts: CompletionParts): ChatCompletion => ({
  id: parts.id,
  object: "chat.completion",
  created: Math.floor(Date.now() / 1000),
  model: parts.model,
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: parts.content,
      refusal: null,
      ...(parts.toolCalls.length > 0 ? { tool_calls: parts.toolCalls } : {})
    },
    finish_reason: parts.finishReason,
    logprobs: null
  }],
  usage: parts.usage
})

export interface ChunkHeader {
  readonly id: string
  readonly model: string
  readonly created: number
}

export const chunk = (
  header: ChunkHeader,
  delta: Delta,
  finishReason: FinishReason | null = null
): ChatCompletionChunk => ({
  id: header.id,
  object: "chat.completion.chunk",
  created: header.created,
  model: header.model,
  choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }]
})

/** The final chunk of `stream_options.include_usage`: no choices, only usage. */
export const usageChunk = (header: ChunkHeader, usage: Usage): ChatCompletionChunk => ({
  id: header.id,
  object: "chat.completion.chunk",
  created: header.created,
  model: header.model,
  choices: [],
  usage
})

