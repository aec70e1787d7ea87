/** Gemini responses and stream chunks → OpenAI completions and chunks. */
import type { ToolCall } from "../../protocol/chat-request"
import { type ChatCompletion, type ChatCompletionChunk, type FinishReason, usageOf } from "../../protocol/chat-response"
import { chunk, type ChunkHeader, completion, usageChunk } from "../build"
import { newId } from "../../domain/ids"
import type { Candidate, GenerateContentResponse, UsageMetadata } from "./wire"

const FILTERED = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"])

export const finishReason = (reason: string | undefined, calledTools: boolean): FinishReason => {
  if (reason === "MAX_TOKENS") return "length"
  if (reason !== undefined && FILTERED.has(reason)) return "content_filter"
  return calledTools ? "tool_calls" : "stop"
}

/** Thinking tokens are billed as output. */
const usage = (u: UsageMetadata | undefined) =>
  usageOf(u?.promptTokenCount ?? 0, (u?.candidatesTokenCount ?? 0) + (u?.thoughtsTokenCount ?? 0), u?.cachedContentTokenCount)

/** Gemini's function calls have no ids; OpenAI clients need one to answer them. */
const callId = () => newId("call")

const readCandidate = (candidate: Candidate | undefined) => {
  let text = ""
  const toolCalls: Array<ToolCall> = []
  for (const part of candidate?.content?.parts ?? []) {
    if (part.thought === true) continue
    if (part.text !== undefined) text += part.text
    if (part.functionCall !== undefined) {
      toolCalls.push({
        id: part.functionCall.id ?? callId(),
        type: "function",
        function: { name: part.functionCall.name, arguments: JSON.stringify(part.functionCall.args ?? {}) }
      })
    }
  }
  return { text, toolCalls }
}

export const fromGemini = (response: GenerateContentResponse, model: string): ChatCompletion => {
  const candidate = response.candidates[0]
  const { text, toolCalls } = readCandidate(candidate)
  const blocked = candidate === undefined && response.promptFeedback?.blockReason !== undefined
  return completion({
    id: response.responseId ?? newId("chatcmpl-gemini"),
    model: response.modelVersion ?? model,
    content: text === "" && toolCalls.length > 0 ? null : text,
    toolCalls,
    finishReason: blocked ? "content_filter" : finishReason(candidate?.finishReason, toolCalls.length > 0),
    usage: usage(response.usageMetadata)
  })
}

/** Each Gemini stream chunk is a whole GenerateContentResponse holding the next piece. */
export const makeStreamTranslator = (model: string, created: number) => {
  let header: ChunkHeader | undefined
  let toolCount = 0
  let lastUsage: UsageMetadata | undefined

  return (response: GenerateContentResponse): ReadonlyArray<ChatCompletionChunk> => {
    const out: Array<ChatCompletionChunk> = []
    if (header === undefined) {
      header = { id: response.responseId ?? newId("chatcmpl-gemini"), model: response.modelVersion ?? model, created }
      out.push(chunk(header, { role: "assistant", content: "" }))
    }
    if (response.usageMetadata !== undefined) lastUsage = response.usageMetadata
    const candidate = response.candidates[0]
    const { text, toolCalls } = readCandidate(candidate)
    if (text !== "") out.push(chunk(header, { content: text }))
    if (toolCalls.length > 0) {
      out.push(chunk(header, {
        tool_calls: toolCalls.map((call) => ({ index: toolCount++, ...call }))
      }))
    }
    const blocked = candidate === undefined && response.promptFeedback?.blockReason !== undefined
    if (candidate?.finishReason !== undefined || blocked) {
      out.push(chunk(header, {}, blocked ? "content_filter" : finishReason(candidate?.finishReason, toolCount > 0)))
      out.push(usageChunk(header, usage(lastUsage)))
    }
    return out
  }
}
