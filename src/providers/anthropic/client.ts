/**
 * Anthropic's Messages API over Quorum's own HTTP transport rather than
 * @anthropic-ai/sdk: the gateway needs the raw SSE events to tell a cut stream from a
 * finished one, and owns retries and timeouts; the wire types are Schemas in ./wire.
 */
import { Effect, Either, Redacted, Schema } from "effect"
import type { Deployment } from "../../config/gateway-config"
import type { ChatCompletionRequest } from "../../protocol/chat-request"
import type { ChatCompletionChunk } from "../../protocol/chat-response"
import { postSse, type StreamEnd } from "../http/sse"
import { jsonHeaders, makeUpstream, postJson, type PostOptions } from "../http/transport"
import type { CallDeadline, MakeClient } from "../provider"
import { amend, UpstreamError } from "../upstream-error"
import { toAnthropic } from "./request"
import { fromAnthropic, makeStreamTranslator } from "./response"
import { ErrorEnvelope, MessagesResponse, StreamEvent } from "./wire"

const decodeResponse = Schema.decodeUnknown(MessagesResponse)
const decodeEvent = Schema.decodeUnknownEither(Schema.parseJson(StreamEvent))
const decodeError = Schema.decodeUnknownOption(ErrorEnvelope)

const malformed = (what: string) => () =>
  new UpstreamError({ kind: "malformed", message: `anthropic sent a ${what} that is not in the Messages API format` })

export const ANTHROPIC_VERSION = "2023-06-01"

/** A completion: the request translated, posted, and the answer translated back. */
const completeWith = Effect.fnUntraced(function*(
  deployment: Deployment,
  options: (body: unknown, deadline: CallDeadline) => PostOptions,
  request: ChatCompletionRequest,
  deadline: CallDeadline
) {
  const { body, jsonTool } = yield* toAnthropic(request, deployment)
  const raw = yield* postJson(options(body, deadline))
  const response = yield* Effect.mapError(decodeResponse(raw), malformed("response"))
  return fromAnthropic(response, jsonTool)
})

export const makeAnthropicClient: MakeClient = (deployment, { redact }) => {
  const upstream = makeUpstream(deployment.timeouts, deployment.maxConnections)
  const headers = jsonHeaders({
    "anthropic-version": ANTHROPIC_VERSION,
    ...(deployment.apiKey === undefined ? {} : { "x-api-key": Redacted.value(deployment.apiKey) })
  })
  const options = (body: unknown, deadline: CallDeadline): PostOptions => ({
    upstream,
    timeouts: deployment.timeouts,
    deadline,
    url: `${deployment.baseUrl}/v1/messages`,
    headers,
    body,
    redact,
    errorMessage: (body) => decodeError(body).pipe((o) => (o._tag === "Some" ? o.value.error.message : undefined))
  })

  return {
    complete: (request, deadline) => completeWith(deployment, options, request, deadline),

    stream: (request, deadline) =>
      Effect.flatMap(toAnthropic(request, deployment), ({ body, jsonTool }) =>
        postSse(options({ ...body, stream: true }, deadline), () => {
          const translate = makeStreamTranslator(jsonTool, Math.floor(Date.now() / 1000))
          return (message, out) => {
            const event = decodeEvent(message.data)
            if (Either.isLeft(event)) return malformed("stream event")()
            const chunks = translate(event.right)
            if (chunks instanceof UpstreamError) return amend(chunks, { message: redact(chunks.message) })
            out.push(...chunks)
            return undefined
          }
        }, STREAM_END))
  }
}

// The usage chunk is made from message_delta / message_stop: without it the stream was cut.
const STREAM_END: StreamEnd<ChatCompletionChunk> = {
  isTerminal: (chunk) => chunk.choices.length === 0 && chunk.usage != null,
  expected: "message_stop"
}
