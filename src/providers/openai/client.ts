/**
 * Any OpenAI-compatible API (OpenAI, DeepSeek, Qwen, Mistral, Groq, Together, OpenRouter,
 * vLLM, Ollama) over Quorum's own transport (undici). The request goes up as the caller
 * sent it, unknown fields included, with only the model name swapped for the upstream's.
 *
 * Not the `openai` SDK: on the request path it cost ~150-200 µs of CPU a call (its
 * Response, Headers and stream plumbing), most of what a gateway may add, and it ends a
 * cut stream as quietly as a finished one. The SDK stays the client of the tests.
 */
import { Either, Redacted } from "effect"
import { ChatCompletion, ChatCompletionChunk } from "../../protocol/chat-response"
import { EmbeddingResponse } from "../../protocol/embeddings"
import { validator } from "../../protocol/validate"
import { type EventDecoder, postSse, type StreamEnd } from "../http/sse"
import { jsonHeaders, makeUpstream, postJson, type PostOptions } from "../http/transport"
import type { CallDeadline, MakeClient } from "../provider"
import { UpstreamError } from "../upstream-error"

// Validated, not rebuilt: provider-specific fields (DeepSeek's reasoning_content, …) pass through.
const checkCompletion = validator(ChatCompletion)
const checkChunk = validator(ChatCompletionChunk)
const checkEmbeddings = validator(EmbeddingResponse)

/** OpenAI's schema requires `logprobs` on every choice; some compatible servers leave it out. */
const withLogprobs = (completion: ChatCompletion): ChatCompletion => {
  for (const choice of completion.choices) {
    if (choice.logprobs === undefined) (choice as { logprobs?: unknown }).logprobs = null
  }
  return completion
}

const decodeCompletion = (body: unknown): ChatCompletion | UpstreamError => {
  const checked = checkCompletion(body)
  return Either.isRight(checked) ? withLogprobs(checked.right) : malformed("completion")
}

const decodeEmbeddings = (body: unknown): EmbeddingResponse | UpstreamError => {
  const checked = checkEmbeddings(body)
  return Either.isRight(checked)
    ? checked.right
    : new UpstreamError({ kind: "malformed", message: "the upstream sent a response that is not an OpenAI embeddings list" })
}

const malformed = (what: string) =>
  new UpstreamError({ kind: "malformed", message: `the upstream sent a ${what} that is not an OpenAI chat ${what}` })

/** OpenAI's error envelope, `{"error": {"message": ...}}`; some compatible servers put the message at the top. */
export const openAIErrorMessage = (body: unknown): string | undefined => {
  if (typeof body !== "object" || body === null) return undefined
  const error = (body as { error?: unknown }).error
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string") {
    return (error as { message: string }).message
  }
  const message = (body as { message?: unknown }).message
  return typeof message === "string" ? message : undefined
}

const DONE = "[DONE]"

export const makeOpenAIClient: MakeClient = (deployment, { redact }) => {
  const upstream = makeUpstream(deployment.timeouts, deployment.maxConnections)
  const base = deployment.baseUrl ?? "https://api.openai.com/v1"
  const url = `${base}/chat/completions`
  const headers = jsonHeaders(deployment.apiKey === undefined ? {} : { authorization: `Bearer ${Redacted.value(deployment.apiKey)}` })
  const options = (body: unknown, deadline: CallDeadline, at = url): PostOptions =>
    ({ upstream, url: at, timeouts: deployment.timeouts, deadline, headers, body, redact, errorMessage: openAIErrorMessage })

  /**
   * One SSE event → the chunk it carries, nothing ([DONE], comments), or the error an
   * upstream sends inside a stream that had already started.
   */
  const decodeEvent: EventDecoder<ChatCompletionChunk> = ({ event, data }, out) => {
    if (data === DONE) return undefined
    let json: unknown
    try {
      json = JSON.parse(data)
    } catch {
      return malformed("chunk")
    }
    if (event === "error" || (typeof json === "object" && json !== null && "error" in json)) {
      return new UpstreamError({ kind: "server", message: redact(openAIErrorMessage(json) ?? "the upstream sent an error event") })
    }
    const chunk = checkChunk(json)
    if (Either.isLeft(chunk)) return malformed("chunk")
    out.push(chunk.right)
    return undefined
  }

  return {
    complete: (request, deadline) =>
      postJson(options({ ...request, model: deployment.upstreamModel, stream: false }, deadline), decodeCompletion),

    embed: (request, deadline) =>
      postJson(options({ ...request, model: deployment.upstreamModel }, deadline, `${base}/embeddings`), decodeEmbeddings),

    stream: (request, deadline) =>
      // Usage is always asked for: it is what the request cost.
      postSse(
        options({ ...request, model: deployment.upstreamModel, stream: true, stream_options: { include_usage: true } }, deadline),
        () => decodeEvent,
        STREAM_END
      )
  }
}

const STREAM_END: StreamEnd<ChatCompletionChunk> = {
  isTerminal: (chunk) => chunk.choices.some((choice) => choice.finish_reason !== null),
  expected: "it sent a finish_reason"
}
