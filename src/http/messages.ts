/**
 * POST /v1/messages, Anthropic's Messages API, a hot route: the request is translated to a
 * chat request and answered by the same policies, admission, routing and consensus as a
 * chat completion, then translated back (a message, or Messages stream events). Errors
 * are in Anthropic's envelope, which its SDK reads; what cannot be carried to every
 * provider is refused by name (see ingress/anthropic/to-chat.ts).
 */
import { Effect, Either, type Scope } from "effect"
import type { IncomingMessage } from "node:http"
import { eventFrames, type Frames } from "../protocol/frames"
import { anthropicError } from "../ingress/anthropic/errors"
import { fromChatCompletion } from "../ingress/anthropic/from-chat"
import { AnthropicStream, sseEvent } from "../ingress/anthropic/stream-events"
import { toChatRequest } from "../ingress/anthropic/to-chat"
import { MessagesRequest } from "../ingress/anthropic/wire"
import type { Ticket } from "../billing/ticket"
import { answerChat, type ChatServices, meteredSse } from "./chat-answer"
import { type ClientError, errorAnswer, InvalidRequest } from "./errors"
import { json, type Reply } from "./hot/reply"
import { metered } from "./metered"
import { jsonBodyParser } from "./read-json-body"
import type { ReceivedBody } from "./read-body"

const readMessages = jsonBodyParser(MessagesRequest)

/**
 * The caller's key. Anthropic's SDK sends it as `x-api-key`; an `Authorization` header
 * (its `authToken` option) wins, as at Anthropic.
 */
export const authorizationOf = (incoming: IncomingMessage): string | undefined => {
  const authorization = incoming.headers["authorization"]
  if (authorization !== undefined) return authorization
  const key = incoming.headers["x-api-key"]
  return typeof key === "string" ? `Bearer ${key}` : undefined
}

/** Messages stream events; a failure after the first byte is an `error` event, never message_stop. */
const messageEvents = (): Frames<ClientError> =>
  eventFrames(new AnthropicStream(), sseEvent, (error: ClientError) => {
    const answer = errorAnswer(error)
    return { status: answer.status, message: answer.body.error.message }
  })

const reply = Effect.fnUntraced(function*(services: ChatServices, incoming: IncomingMessage, body: ReceivedBody, ticket: Ticket) {
  const translated = toChatRequest(yield* readMessages(body, services.config))
  if (Either.isLeft(translated)) {
    // Anthropic's errors have no param field: its own name the field first, as here.
    const { message, param } = translated.left
    return yield* new InvalidRequest({ message: `${param}: ${message}`, param, code: "unsupported_value" })
  }
  const answer = yield* answerChat(services, ticket, incoming.headers, translated.right)
  if (answer._tag === "Completion") return json(fromChatCompletion(answer.completion), answer.headers)
  return meteredSse(answer, ticket, messageEvents())
})

export const makeMessages = (services: ChatServices) => (incoming: IncomingMessage, body: ReceivedBody): Effect.Effect<Reply, never, Scope.Scope> =>
  metered(
    services.spend,
    "/v1/messages",
    { authorization: authorizationOf(incoming), arrival: body.arrival },
    (ticket) => reply(services, incoming, body, ticket),
    (status, body) => anthropicError(status, body.error.message)
  )
