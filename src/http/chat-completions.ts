/**
 * POST /v1/chat/completions, a hot route: served from node:http (see hot/front-door.ts),
 * it streams SSE, keeps unknown request fields, and answers every failure in OpenAI's
 * error shape.
 */
import { Effect, type Scope } from "effect"
import type { IncomingMessage } from "node:http"
import type { Frames } from "../protocol/frames"
import { answerChat, type ChatServices, meteredSse } from "./chat-answer"
import { type ClientError, errorAnswer } from "./errors"
import { json, type Reply } from "./hot/reply"
import { metered } from "./metered"
import { readChatRequest } from "./read-json-body"
import type { ReceivedBody } from "./read-body"
import { DONE, sse } from "./sse"
import type { Ticket } from "../billing/ticket"

/** OpenAI's frames; a stream cut after its first byte ends with an error event, never a silent [DONE]. */
const chatFrames = (wantsUsage: boolean): Frames<ClientError> => ({
  // Upstreams are always asked for usage (it is the cost); callers get it only if they asked.
  chunk: (chunk, out) => {
    if (wantsUsage || chunk.choices.length > 0) out.push(sse(chunk))
  },
  end: (out) => out.push(DONE),
  fail: (error, out) => out.push(sse(errorAnswer(error).body))
})

const reply = Effect.fnUntraced(function*(services: ChatServices, incoming: IncomingMessage, body: ReceivedBody, ticket: Ticket) {
  const request = yield* readChatRequest(body, services.config)
  const answer = yield* answerChat(services, ticket, incoming.headers, request)
  if (answer._tag === "Completion") return json(answer.completion, answer.headers)
  return meteredSse(answer, ticket, chatFrames(request.stream_options?.include_usage === true))
})

export const makeChatCompletions = (services: ChatServices) => (incoming: IncomingMessage, body: ReceivedBody): Effect.Effect<Reply, never, Scope.Scope> =>
  metered(services.spend, "/v1/chat/completions", { authorization: incoming.headers["authorization"], arrival: body.arrival }, (ticket) =>
    reply(services, incoming, body, ticket))
