/**
 * Any OpenAI-compatible API (OpenAI, DeepSeek, Qwen, Mistral, Groq, Together, OpenRouter,
 * vLLM, Ollama) through the official `openai` SDK. The request goes up as the caller sent
 * it, unknown fields included, with only the model name swapped for the upstream's.
 */
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from "openai"
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions"
import { Effect, Either, Redacted, Stream } from "effect"
import type { Timeouts } from "../../config/gateway-config"
import { ChatCompletion, ChatCompletionChunk } from "../../protocol/chat-response"
import { validator } from "../../protocol/validate"
import { deadlineController, makeAgent, makeFetch, readIterable, totalTimeout, transportError } from "../http/transport"
import type { MakeClient } from "../provider"
import type { Redactor } from "../redact"
import { failIfUnfinished } from "../stream-guard"
import { kindOfStatus, parseRetryAfter, UpstreamError } from "../upstream-error"

// Validated, not rebuilt: provider-specific fields (DeepSeek's reasoning_content, …) pass through.
const checkCompletion = validator(ChatCompletion)
const decodeChunk = validator(ChatCompletionChunk)

/** OpenAI's schema requires `logprobs` on every choice; some compatible servers leave it out. */
const withLogprobs = (completion: ChatCompletion): ChatCompletion => {
  for (const choice of completion.choices) {
    if (choice.logprobs === undefined) (choice as { logprobs?: unknown }).logprobs = null
  }
  return completion
}

const malformed = (what: string) => () =>
  new UpstreamError({ kind: "malformed", message: `the upstream sent a ${what} that is not an OpenAI chat ${what}` })

export const toUpstreamError = (error: unknown, redact: Redactor, timeouts: Timeouts): UpstreamError => {
  if (error instanceof APIConnectionTimeoutError) return totalTimeout(timeouts.totalMs)
  if (error instanceof APIConnectionError) return transportError(error.cause ?? error, redact, timeouts)
  if (error instanceof APIError) {
    const body = error.error as { message?: unknown } | undefined
    const reason = typeof body?.message === "string" ? body.message : error.message
    if (error.status === undefined) {
      // An error event inside a stream that had already started.
      return new UpstreamError({ kind: "server", message: redact(reason) })
    }
    const retryAfterMs = parseRetryAfter((name) => error.headers?.get(name))
    return new UpstreamError({
      kind: kindOfStatus(error.status),
      status: error.status,
      message: redact(reason),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs })
    })
  }
  if (error instanceof SyntaxError) {
    return new UpstreamError({ kind: "malformed", message: "the upstream answered with malformed JSON" })
  }
  return transportError(error, redact, timeouts)
}

export const makeOpenAIClient: MakeClient = (deployment, { redact }) => {
  const client = new OpenAI({
    apiKey: deployment.apiKey === undefined ? "unused" : Redacted.value(deployment.apiKey),
    baseURL: deployment.baseUrl ?? null,
    // Quorum's router is the only retry loop.
    maxRetries: 0,
    // The SDK's timer is total_ms for a non-stream call (it covers the body: the fetch
    // below buffers it). Streams get their own deadline below; idle_ms is the Agent's.
    timeout: deployment.timeouts.totalMs,
    fetch: makeFetch(makeAgent(deployment.timeouts, deployment.maxConnections))
  })
  const upstream = <A extends { model: string }>(request: A): A => ({ ...request, model: deployment.upstreamModel })

  return {
    complete: (request) =>
      Effect.tryPromise({
        try: (signal) =>
          client.chat.completions.create(
            upstream({ ...request, stream: false }) as unknown as ChatCompletionCreateParamsNonStreaming,
            { signal }
          ),
        catch: (error) => toUpstreamError(error, redact, deployment.timeouts)
      }).pipe(
        Effect.flatMap((body) => {
          const checked = checkCompletion(body)
          return Either.isRight(checked) ? Effect.succeed(withLogprobs(checked.right)) : Effect.fail(malformed("completion")())
        })
      ),

    stream: (request) =>
      Stream.unwrapScoped(
        Effect.gen(function*() {
          const deadline = yield* Effect.acquireRelease(
            Effect.sync(() => deadlineController(deployment.timeouts.totalMs)),
            (d) => Effect.sync(d.close)
          )
          const fail = (error: unknown) => deadline.explain(toUpstreamError(error, redact, deployment.timeouts))
          const sdkStream = yield* Effect.tryPromise({
            try: () =>
              client.chat.completions.create(
                // Usage is always asked for: it is what the request cost.
                upstream({ ...request, stream: true, stream_options: { include_usage: true } }) as unknown as ChatCompletionCreateParamsStreaming,
                { signal: deadline.signal }
              ),
            catch: fail
          })
          // The SDK ends its iterator quietly when the request is aborted: an unfinished
          // stream may be our own deadline, which explain() tells apart from a cut.
          return failIfUnfinished(
            readIterable(sdkStream, fail, (chunk) => Either.mapLeft(decodeChunk(chunk), malformed("chunk"))),
            (chunk) => chunk.choices.some((choice) => choice.finish_reason !== null),
            "it sent a finish_reason"
          ).pipe(Stream.mapError(deadline.explain))
        })
      )
  }
}
