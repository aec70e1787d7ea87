/** What the translating adapters (Anthropic, Gemini) share when reading an OpenAI request. */
import { Either } from "effect"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import { UpstreamError } from "./upstream-error"

export const unsupported = (param: string, message: string): UpstreamError =>
  new UpstreamError({ kind: "unsupported", param, message })

export const invalid = (param: string, message: string): UpstreamError =>
  new UpstreamError({ kind: "bad_request", param, message })

/**
 * Fields an adapter cannot express are refused, never dropped: a caller who set `seed`
 * or `logprobs` must learn that this provider ignores them. Null and OpenAI's default
 * values mean "not set".
 */
export const refuseUntranslatable = (
  request: ChatCompletionRequest,
  provider: string,
  translated: ReadonlySet<string>
): Either.Either<void, UpstreamError> => {
  for (const [key, value] of Object.entries(request)) {
    if (translated.has(key) || value === null || value === undefined) continue
    if ((key === "n" && value === 1) || (key === "logprobs" && value === false)) continue
    return Either.left(unsupported(key, `\`${key}\` is not supported by ${provider} models`))
  }
  return Either.void
}

/** The fields both translating adapters understand. */
export const COMMON_FIELDS: ReadonlySet<string> = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "stop",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "response_format",
  "user"
])

export const stopList = (stop: ChatCompletionRequest["stop"]): ReadonlyArray<string> | undefined =>
  stop === undefined || stop === null ? undefined : typeof stop === "string" ? [stop] : stop

/** `data:image/png;base64,AAAA` → its media type and payload. */
export const parseDataUrl = (url: string): { mediaType: string; data: string } | undefined => {
  const [, mediaType, data] = /^data:([^;,]+);base64,(.*)$/s.exec(url) ?? []
  return mediaType === undefined || data === undefined ? undefined : { mediaType, data }
}

export const parseArguments = (text: string, param: string): Either.Either<unknown, UpstreamError> => {
  try {
    return Either.right(text.trim() === "" ? {} : JSON.parse(text))
  } catch {
    return Either.left(invalid(param, `${param} is not valid JSON`))
  }
}
