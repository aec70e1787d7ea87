/**
 * Google's Gemini API over Quorum's own HTTP transport rather than @google/genai: the
 * SDK's 1.x line reshapes responses into classes and hides the SSE stream's end, which
 * is the only way to tell a cut stream (Gemini sends no terminal event, so the chunk
 * carrying finishReason is the proof of a finished one).
 */
import { Effect, Either, Redacted, Schema } from "effect"
import type { ChatCompletionRequest } from "../../protocol/chat-request"
import type { ChatCompletionChunk } from "../../protocol/chat-response"
import { base64Floats, type EmbeddingRequest, type EmbeddingResponse, inputTexts } from "../../protocol/embeddings"
import { countTokens } from "../../protocol/tokens"
import { type EventDecoder, postSse, type StreamEnd } from "../http/sse"
import { jsonHeaders, makeUpstream, postJson, type PostOptions } from "../http/transport"
import type { CallDeadline, MakeClient } from "../provider"
import type { Redactor } from "../redact"
import { UpstreamError } from "../upstream-error"
import { toGemini } from "./request"
import { fromGemini, makeStreamTranslator } from "./response"
import { ErrorEnvelope, GenerateContentResponse } from "./wire"

const decodeResponse = Schema.decodeUnknown(GenerateContentResponse)
const decodeChunk = Schema.decodeUnknownEither(Schema.parseJson(Schema.Union(ErrorEnvelope, GenerateContentResponse)))
const decodeError = Schema.decodeUnknownOption(ErrorEnvelope)
const EmbeddingsResponse = Schema.Struct({ embeddings: Schema.Array(Schema.Struct({ values: Schema.Array(Schema.Number) })) })
const decodeEmbeddings = Schema.decodeUnknown(EmbeddingsResponse)

const malformed = (what: string) => () =>
  new UpstreamError({ kind: "malformed", message: `gemini sent a ${what} that is not in the Gemini API format` })

/** One embedding request per text, in one batch call. */
const batchEmbedBody = (texts: ReadonlyArray<string>, request: EmbeddingRequest, model: string) => ({
  requests: texts.map((text) => ({
    model: `models/${model}`,
    content: { parts: [{ text }] },
    ...(request.dimensions === undefined ? {} : { outputDimensionality: request.dimensions })
  }))
})

/** Gemini's vectors in OpenAI's list; Gemini reports no token count, so the input is counted here, as the ledger bills it. */
const embeddingsOf = (
  response: typeof EmbeddingsResponse.Type,
  texts: ReadonlyArray<string>,
  request: EmbeddingRequest,
  model: string
): EmbeddingResponse => {
  const tokens = texts.reduce((sum, text) => sum + countTokens(text), 0)
  return {
    object: "list",
    data: response.embeddings.map((e, index) => ({
      object: "embedding",
      index,
      embedding: request.encoding_format === "base64" ? base64Floats(e.values) : e.values
    })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens }
  }
}

/** Reads one stream's events: each chunk translated, an error event the upstream's failure (redacted). */
const streamDecoder = (model: string, redact: Redactor) => (): EventDecoder<ChatCompletionChunk> => {
  const translate = makeStreamTranslator(model, Math.floor(Date.now() / 1000))
  return (message, out) => {
    const data = decodeChunk(message.data)
    if (Either.isLeft(data)) return malformed("stream chunk")()
    if ("error" in data.right) return new UpstreamError({ kind: "server", message: redact(data.right.error.message) })
    out.push(...translate(data.right))
    return undefined
  }
}

/** What a deployment's calls share: its model's URL, its upstream model, and the POST options. */
interface GeminiCall {
  readonly base: string
  readonly model: string
  readonly options: (url: string, body: unknown, deadline: CallDeadline) => PostOptions
}

/** A completion: the request translated, posted, and the answer translated back. */
const completeWith = Effect.fnUntraced(function*(call: GeminiCall, request: ChatCompletionRequest, deadline: CallDeadline) {
  const body = yield* toGemini(request)
  const raw = yield* postJson(call.options(`${call.base}:generateContent`, body, deadline))
  const response = yield* Effect.mapError(decodeResponse(raw), malformed("response"))
  return fromGemini(response, call.model)
})

/** Embeddings of the request's texts, in one batch call. */
const embedWith = Effect.fnUntraced(function*(call: GeminiCall, request: EmbeddingRequest, deadline: CallDeadline) {
  const texts = inputTexts(request.input)
  if (texts === undefined) {
    return yield* new UpstreamError({ kind: "unsupported", param: "input", message: "Gemini embeds text, not token ids" })
  }
  const raw = yield* postJson(call.options(`${call.base}:batchEmbedContents`, batchEmbedBody(texts, request, call.model), deadline))
  const response = yield* Effect.mapError(decodeEmbeddings(raw), malformed("embeddings response"))
  return embeddingsOf(response, texts, request, call.model)
})

export const makeGeminiClient: MakeClient = (deployment, { redact }) => {
  const upstream = makeUpstream(deployment.timeouts, deployment.maxConnections)
  const base = `${deployment.baseUrl}/v1beta/models/${encodeURIComponent(deployment.upstreamModel)}`
  const headers = jsonHeaders(deployment.apiKey === undefined ? {} : { "x-goog-api-key": Redacted.value(deployment.apiKey) })
  const options = (url: string, body: unknown, deadline: CallDeadline): PostOptions => ({
    upstream,
    timeouts: deployment.timeouts,
    deadline,
    url,
    headers,
    body,
    redact,
    errorMessage: (body) => decodeError(body).pipe((o) => (o._tag === "Some" ? o.value.error.message : undefined))
  })

  const call: GeminiCall = { base, model: deployment.upstreamModel, options }

  return {
    complete: (request, deadline) => completeWith(call, request, deadline),
    embed: (request, deadline) => embedWith(call, request, deadline),

    stream: (request, deadline) =>
      Effect.flatMap(toGemini(request), (body) =>
        postSse(options(`${base}:streamGenerateContent?alt=sse`, body, deadline), streamDecoder(deployment.upstreamModel, redact), STREAM_END))
  }
}

const STREAM_END: StreamEnd<ChatCompletionChunk> = {
  isTerminal: (chunk) => chunk.choices.some((choice) => choice.finish_reason !== null),
  expected: "it sent a finishReason"
}
