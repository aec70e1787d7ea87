/**
 * Anthropic's Messages API over Quorum's own HTTP transport rather than
 * @anthropic-ai/sdk: the gateway needs the raw SSE events to tell a cut stream from a
 * finished one, and owns retries and timeouts; the wire types are Schemas in ./wire.
 */
import { Effect, Either, Redacted, Schema, Stream } from "effect"
import { postJson, postSse, makeAgent, makeFetch, type PostOptions } from "../http/transport"
import type { CallDeadline, MakeClient } from "../provider"
import { failIfUnfinished } from "../stream-guard"
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

export const makeAnthropicClient: MakeClient = (deployment, { redact }) => {
  const fetch = makeFetch(makeAgent(deployment.timeouts, deployment.maxConnections))
  const options = (body: unknown, deadline: CallDeadline): PostOptions => ({
    fetch,
    timeouts: deployment.timeouts,
    deadline,
    url: `${deployment.baseUrl}/v1/messages`,
    headers: {
      "anthropic-version": ANTHROPIC_VERSION,
      ...(deployment.apiKey === undefined ? {} : { "x-api-key": Redacted.value(deployment.apiKey) })
    },
    body,
    redact,
    errorMessage: (body) => decodeError(body).pipe((o) => (o._tag === "Some" ? o.value.error.message : undefined))
  })

  return {
    complete: (request, deadline) =>
      Effect.gen(function*() {
        const { body, jsonTool } = yield* toAnthropic(request, deployment)
        const raw = yield* postJson(options(body, deadline))
        const response = yield* Effect.mapError(decodeResponse(raw), malformed("response"))
        return fromAnthropic(response, jsonTool)
      }),

    stream: (request, deadline) =>
      Stream.unwrap(
        Effect.map(toAnthropic(request, deployment), ({ body, jsonTool }) => {
          const translate = makeStreamTranslator(jsonTool, Math.floor(Date.now() / 1000))
          return failIfUnfinished(
            postSse(options({ ...body, stream: true }, deadline)).pipe(
              Stream.mapConcatEffect((message) => {
                const event = decodeEvent(message.data)
                if (Either.isLeft(event)) return Effect.fail(malformed("stream event")())
                const out = translate(event.right)
                return out instanceof UpstreamError ? Effect.fail(amend(out, { message: redact(out.message) })) : Effect.succeed(out)
              })
            ),
            (chunk) => chunk.choices.length === 0 && chunk.usage != null,
            "message_stop"
          )
        })
      )
  }
}
