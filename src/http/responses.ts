/**
 * POST /v1/responses, OpenAI's Responses API (stateless: nothing is stored, and what would
 * need a stored response is refused by name), a hot route: the request is translated to
 * a chat request and answered by the same policies, admission, routing and consensus as a
 * chat completion, then translated back (a Response, or its stream events). Errors are in
 * OpenAI's usual envelope, as the Responses API answers them.
 */
import { Effect, Either, type Scope } from "effect"
import type { IncomingMessage } from "node:http"
import { fromChatCompletion } from "../ingress/responses/from-chat"
import { responsesFrames } from "../ingress/responses/sse"
import { toChatRequest } from "../ingress/responses/to-chat"
import { ResponsesRequest } from "../ingress/responses/wire"
import type { Ticket } from "../billing/ticket"
import { answerChat, type ChatServices, meteredSse } from "./chat-answer"
import { type ClientError, errorAnswer, InvalidRequest } from "./errors"
import { json, type Reply } from "./hot/reply"
import { metered } from "./metered"
import { jsonBodyParser } from "./read-json-body"
import type { ReceivedBody } from "./read-body"

const readResponses = jsonBodyParser(ResponsesRequest)

const reply = Effect.fnUntraced(function*(services: ChatServices, incoming: IncomingMessage, body: ReceivedBody, ticket: Ticket) {
  const request = yield* readResponses(body, services.config)
  const translated = toChatRequest(request)
  if (Either.isLeft(translated)) {
    const { message, param, code } = translated.left
    return yield* new InvalidRequest({ message, param, code })
  }
  const answer = yield* answerChat(services, ticket, incoming.headers, translated.right)
  if (answer._tag === "Completion") return json(fromChatCompletion(answer.completion, request), answer.headers)
  return meteredSse(answer, ticket, responsesFrames(request, (error: ClientError) => {
    const { status, body } = errorAnswer(error)
    return { status, message: body.error.message }
  }))
})

export const makeResponses = (services: ChatServices) => (incoming: IncomingMessage, body: ReceivedBody): Effect.Effect<Reply, never, Scope.Scope> =>
  metered(services.spend, "/v1/responses", { authorization: incoming.headers["authorization"], arrival: body.arrival }, (ticket) =>
    reply(services, incoming, body, ticket))
