/**
 * Google's Gemini API over Quorum's own HTTP transport rather than @google/genai: the
 * SDK's 1.x line reshapes responses into classes and hides the SSE stream's end, which
 * is the only way to tell a cut stream (Gemini sends no terminal event, so the chunk
 * carrying finishReason is the proof of a finished one).
 */
import { Effect, Either, Redacted, Schema } from "effect"
import type { ChatCompletionChunk } from "../../protocol/chat-response"
import { base64Floats, inputTexts } from "../../protocol/embeddings"
import { countTokens } from "../../protocol/tokens"
import { jsonHeaders, makeUpstream, postJson, postSse, type PostOptions, type StreamEnd } from "../http/transport"
import type { CallDeadline, MakeClient } from "../provider"
import { UpstreamError } from "../upstream-error"
import { toGemini } from "./request"
import { fromGemini, makeStreamTranslator } from "./response"
import { ErrorEnvelope, GenerateContentResponse } from "./wire"

const decodeResponse = Schema.decodeUnknown(GenerateContentResponse)
const decodeChunk = Schema.decodeUnknownEither(Schema.parseJson(Schema.Union(ErrorEnvelope, GenerateContentResponse)))
const decodeError = Schema.decodeUnknownOption(ErrorEnvelope)
const decodeEmbeddings = Schema.decodeUnknown(Schema.Struct({ embeddings: Schema.Array(Schema.Struct({ values: Schema.Array(Schema.Number) })) }))

const malformed = (what: string) => () =>
  new UpstreamError({ kind: "malformed", message: `gemini sent a ${what} that is not in the Gemini API format` })

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

  return {
    complete: (request, deadline) =>
      Effect.gen(function*() {
        const body = yield* toGemini(request)
        const raw = yield* postJson(options(`${base}:generateContent`, body, deadline))
        const response = yield* Effect.mapError(decodeResponse(raw), malformed("response"))
        return fromGemini(response, deployment.upstreamModel)
      }),

    embed: (request, deadline) =>
      Effect.gen(function*() {
        const texts = inputTexts(request.input)
        if (texts === undefined) {
          return yield* new UpstreamError({ kind: "unsupported", param: "input", message: "Gemini embeds text, not token ids" })
        }
        const raw = yield* postJson(options(`${base}:batchEmbedContents`, {
          requests: texts.map((text) => ({
            model: `models/${deployment.upstreamModel}`,
            content: { parts: [{ text }] },
            ...(request.dimensions === undefined ? {} : { outputDimensionality: request.dimensions })
          }))
        }, deadline))
        const response = yield* Effect.mapError(decodeEmbeddings(raw), malformed("embeddings response"))
        // Gemini reports no token count: the input is counted here, as the ledger bills it.
        const tokens = texts.reduce((sum, text) => sum + countTokens(text), 0)
        return {
          object: "list" as const,
          data: response.embeddings.map((e, index) => ({
            object: "embedding" as const,
            index,
            embedding: request.encoding_format === "base64" ? base64Floats(e.values) : e.values
          })),
          model: deployment.upstreamModel,
          usage: { prompt_tokens: tokens, total_tokens: tokens }
        }
      }),

    stream: (request, deadline) =>
      Effect.flatMap(toGemini(request), (body) =>
        postSse(options(`${base}:streamGenerateContent?alt=sse`, body, deadline), () => {
          const translate = makeStreamTranslator(deployment.upstreamModel, Math.floor(Date.now() / 1000))
          return (message, out) => {
            const data = decodeChunk(message.data)
            if (Either.isLeft(data)) return malformed("stream chunk")()
            if ("error" in data.right) return new UpstreamError({ kind: "server", message: redact(data.right.error.message) })
            out.push(...translate(data.right))
            return undefined
          }
        }, STREAM_END))
  }
}

const STREAM_END: StreamEnd<ChatCompletionChunk> = {
  isTerminal: (chunk) => chunk.choices.some((choice) => choice.finish_reason !== null),
  expected: "it sent a finishReason"
}
