/** Anthropic Messages responses and stream events → OpenAI completions and chunks. */
import type { ToolCall } from "../../protocol/chat-request"
import { type ChatCompletion, type ChatCompletionChunk, type FinishReason, usageOf } from "../../protocol/chat-response"
import { chunk, type ChunkHeader, completion, usageChunk } from "../build"
import { type FailureKind, UpstreamError } from "../upstream-error"
import type { AnthropicUsage, MessagesResponse, StreamEvent } from "./wire"

export const finishReason = (stop: string | null | undefined, jsonMode: boolean): FinishReason => {
  switch (stop) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "tool_use":
      return jsonMode ? "stop" : "tool_calls"
    case "refusal":
      return "content_filter"
    default:
      return "stop"
  }
}

const usage = (u: AnthropicUsage, output = u.output_tokens) => {
  const cached = u.cache_read_input_tokens ?? 0
  return usageOf(u.input_tokens + (u.cache_creation_input_tokens ?? 0) + cached, output, cached)
}

export const fromAnthropic = (response: MessagesResponse, jsonTool: string | undefined): ChatCompletion => {
  let text = ""
  const toolCalls: Array<ToolCall> = []
  for (const block of response.content) {
    if (block.type === "text" && "text" in block) text += block.text
    else if (block.type === "tool_use" && "input" in block) {
      if (jsonTool !== undefined && block.name === jsonTool) text += JSON.stringify(block.input)
      else toolCalls.push({ id: block.id, type: "function", function: { name: block.name, arguments: JSON.stringify(block.input) } })
    }
  }
  return completion({
    id: response.id,
    model: response.model,
    content: text === "" && toolCalls.length > 0 ? null : text,
    toolCalls,
    finishReason: finishReason(response.stop_reason, jsonTool !== undefined),
    usage: usage(response.usage)
  })
}

const ERROR_KINDS: Record<string, FailureKind> = {
  overloaded_error: "overloaded",
  rate_limit_error: "rate_limited",
  api_error: "server",
  timeout_error: "timeout"
}

/** What one stream's translation keeps between events. */
interface StreamState {
  readonly jsonTool: string | undefined
  header: ChunkHeader
  startUsage: AnthropicUsage
  outputTokens: number
  /** Anthropic's content block index → OpenAI's tool call index. */
  readonly toolIndexOfBlock: Map<number, number>
  /** Blocks of the JSON tool: their input is the answer's text. */
  readonly jsonBlocks: Set<number>
}

type BlockStart = Extract<StreamEvent, { type: "content_block_start" }>
type BlockDelta = Extract<StreamEvent, { type: "content_block_delta" }>

/** A content block opens: text to pass on, or a tool call that takes the next OpenAI index. */
const blockStart = (state: StreamState, event: BlockStart): ReadonlyArray<ChatCompletionChunk> => {
  const block = event.content_block
  if (block.type === "text" && "text" in block && block.text !== "") return [chunk(state.header, { content: block.text })]
  if (block.type !== "tool_use" || !("name" in block)) return []
  if (state.jsonTool !== undefined && block.name === state.jsonTool) {
    state.jsonBlocks.add(event.index)
    return []
  }
  const index = state.toolIndexOfBlock.size
  state.toolIndexOfBlock.set(event.index, index)
  return [chunk(state.header, {
    tool_calls: [{ index, id: block.id, type: "function", function: { name: block.name, arguments: "" } }]
  })]
}

/** More of a block: text, the JSON tool's input as text, or a tool call's arguments. */
const blockDelta = (state: StreamState, event: BlockDelta): ReadonlyArray<ChatCompletionChunk> => {
  const delta = event.delta
  if (delta.type === "text_delta" && "text" in delta) return [chunk(state.header, { content: delta.text })]
  if (delta.type === "input_json_delta" && "partial_json" in delta) {
    if (state.jsonBlocks.has(event.index)) return [chunk(state.header, { content: delta.partial_json })]
    const index = state.toolIndexOfBlock.get(event.index)
    return index === undefined ? [] : [chunk(state.header, { tool_calls: [{ index, function: { arguments: delta.partial_json } }] })]
  }
  return []
}

/**
 * A stateful translator for one stream: Anthropic numbers content blocks, OpenAI numbers
 * tool calls, and usage arrives in two halves (input at the start, output at the end).
 */
export const makeStreamTranslator = (jsonTool: string | undefined, created: number) => {
  const state: StreamState = {
    jsonTool,
    header: { id: "", model: "", created },
    startUsage: { input_tokens: 0, output_tokens: 0 },
    outputTokens: 0,
    toolIndexOfBlock: new Map(),
    jsonBlocks: new Set()
  }

  return (event: StreamEvent): ReadonlyArray<ChatCompletionChunk> | UpstreamError => {
    switch (event.type) {
      case "message_start":
        state.header = { id: event.message.id, model: event.message.model, created }
        state.startUsage = event.message.usage
        state.outputTokens = event.message.usage.output_tokens
        return [chunk(state.header, { role: "assistant", content: "" })]
      case "content_block_start":
        return blockStart(state, event)
      case "content_block_delta":
        return blockDelta(state, event)
      case "message_delta":
        if (event.usage?.output_tokens !== undefined) state.outputTokens = event.usage.output_tokens
        return event.delta.stop_reason == null
          ? []
          : [chunk(state.header, {}, finishReason(event.delta.stop_reason, jsonTool !== undefined))]
      case "message_stop":
        return [usageChunk(state.header, usage(state.startUsage, state.outputTokens))]
      case "error":
        return new UpstreamError({ kind: ERROR_KINDS[event.error.type] ?? "server", message: event.error.message })
      default:
        return []
    }
  }
}
