/**
 * What makes two requests the same for the cache: every field that can change the answer
 * (model, messages, tools, response format, sampling parameters), written the same way
 * whatever the key order or spacing of the JSON they came in, and scoped by tenant, so
 * one virtual key never reads another's answers.
 */
import { createHash } from "node:crypto"
import { configure } from "safe-stable-stringify"
import { type ChatCompletionRequest, contentText } from "../protocol/chat-request"

// Sorted keys at every depth; a value JSON cannot hold is an error rather than dropped silently.
const stableJson = configure({ deterministic: true, bigint: false, circularValue: Error, strict: true })

/** Fields that change how an answer is delivered or billed, never what it says. */
const DELIVERY_ONLY = new Set(["stream", "stream_options", "user", "metadata", "store", "safety_identifier", "prompt_cache_key", "quorum", "cache"])

/** The request as the cache compares it: delivery-only fields out, nulls as absent, one name for the token ceiling. */
export const normalizedRequest = (request: ChatCompletionRequest): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [field, value] of Object.entries(request)) {
    if (value === null || value === undefined || DELIVERY_ONLY.has(field)) continue
    out[field === "max_tokens" ? "max_completion_tokens" : field] = value
  }
  return out
}

/** The entry's key: a digest, so a key never holds prompt text (it may be logged, or sent to Redis). */
export const cacheKey = (scope: string, request: ChatCompletionRequest): string =>
  createHash("sha256").update(scope).update("\0").update(stableJson(normalizedRequest(request)) ?? "").digest("base64url")

/** OpenAI's default temperature is 1: a request that names none samples. */
export const samples = (request: ChatCompletionRequest): boolean => (request.temperature ?? 1) > 0

/**
 * For the semantic cache: the requests whose answers may stand for each other if their
 * messages mean the same (same tenant and everything but the messages).
 */
export const semanticBucket = (scope: string, request: ChatCompletionRequest): string => {
  const { messages: _, ...rest } = normalizedRequest(request)
  return createHash("sha256").update(scope).update("\0").update(stableJson(rest) ?? "").digest("base64url")
}

/**
 * Whether a request can be matched by meaning at all: only when all it says is text (two
 * prompts alike in words but with different images must never share an answer).
 */
export const textOnly = (request: ChatCompletionRequest): boolean =>
  request.messages.every((m) => typeof m.content === "string" || m.content === null || m.content === undefined || m.content.every((part) => part.type === "text"))

/** The conversation as one text to embed: each message's role, text and tool calls, in order. */
export const conversationText = (request: ChatCompletionRequest): string =>
  request.messages
    .map((m) => {
      const calls = m.role === "assistant" ? (m.tool_calls ?? []).map((c) => ` ${c.function.name}(${c.function.arguments})`).join("") : ""
      return `${m.role}: ${contentText(m.content)}${calls}`
    })
    .join("\n")
