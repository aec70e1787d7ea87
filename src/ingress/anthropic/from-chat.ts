/**
 * A chat completion as the Anthropic Message a client of the Messages API expects:
 * text and tool uses as content blocks, the finish reason as a stop reason, usage with
 * cache reads apart (Anthropic's input_tokens exclude them; OpenAI's prompt_tokens do not).
 */
import type { ChatCompletion, FinishReason, Usage } from "../../protocol/chat-response"

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal"

export const stopReasonOf = (finish: FinishReason | null): StopReason | null => {
  switch (finish) {
    case null:
      return null
    case "length":
      return "max_tokens"
    case "tool_calls":
    case "function_call":
      return "tool_use"
    case "content_filter":
      return "refusal"
    case "stop":
      return "end_turn"
  }
}

export interface AnthropicUsage {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly cache_creation_input_tokens: number | null
  readonly cache_read_input_tokens: number | null
  readonly cache_creation: null
  readonly inference_geo: null
  readonly output_tokens_details: null
  readonly server_tool_use: null
  readonly service_tier: null
  readonly speed: null
}

export const usageOf = (usage: Usage | undefined): AnthropicUsage => {
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0
  return {
    input_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cached),
    output_tokens: usage?.completion_tokens ?? 0,
    cache_creation_input_tokens: null,
    cache_read_input_tokens: cached > 0 ? cached : null,
    cache_creation: null,
    inference_geo: null,
    output_tokens_details: null,
    server_tool_use: null,
    service_tier: null,
    speed: null
  }
}

/** Tool arguments as the object Anthropic's tool_use.input is; arguments that are not JSON stay as their text. */
export const toolInput = (args: string): unknown => {
  try {
    return args.trim() === "" ? {} : JSON.parse(args)
  } catch {
    return args
  }
}

export const messageId = (chatId: string): string => `msg_${chatId.replace(/^chatcmpl-/, "")}`

export type ContentBlock =
  | { readonly type: "text"; readonly text: string; readonly citations: null }
  | { readonly type: "tool_use"; readonly id: string; readonly name: string; readonly input: unknown; readonly caller: { readonly type: "direct" } }

export const fromChatCompletion = (completion: ChatCompletion) => {
  // The Messages API has one answer per request: the first choice is it (n is never sent).
  const choice = completion.choices[0]
  const content: Array<ContentBlock> = []
  const text = choice?.message.content ?? choice?.message.refusal ?? null
  if (text !== null && text !== "") content.push({ type: "text", text, citations: null })
  for (const call of choice?.message.tool_calls ?? []) {
    content.push({ type: "tool_use", id: call.id, name: call.function.name, input: toolInput(call.function.arguments), caller: { type: "direct" } })
  }
  return {
    id: messageId(completion.id),
    type: "message" as const,
    role: "assistant" as const,
    model: completion.model,
    content,
    stop_reason: stopReasonOf(choice?.finish_reason ?? null),
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: usageOf(completion.usage)
  }
}
