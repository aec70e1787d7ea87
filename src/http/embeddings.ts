/**
 * POST /v1/embeddings, OpenAI's embeddings API, a hot route: routed like a chat model
 * (fallbacks, retries, circuits) to the deployments that serve embeddings (OpenAI-
 * compatible ones and Gemini), admitted against the caller's key at the input's cost,
 * recorded in the ledger, with the gateway's input policies applied to the texts.
 */
import { Effect, type Scope } from "effect"
import type { IncomingMessage } from "node:http"
import type { ChatCompletionRequest } from "../protocol/chat-request"
import { EmbeddingRequest, inputTexts } from "../protocol/embeddings"
import { formatUsd } from "../domain/money"
import { countPrompt } from "../protocol/tokens"
import { worstCaseOf } from "../billing/worst-case"
import type { Ticket } from "../billing/ticket"
import type { ChatServices } from "./chat-answer"
import { json, type Reply } from "./hot/reply"
import { COST_HEADER, metered } from "./metered"
import { admitsFirst, checkRequest, POLICY_HEADER, requestPolicies } from "./policies"
import { jsonBodyParser } from "./read-json-body"
import type { ReceivedBody } from "./read-body"

const readEmbeddings = jsonBodyParser(EmbeddingRequest)

/** The input as the meter and the policies see it: each text a user message (token ids are counted, not read). */
const asChat = (request: EmbeddingRequest): ChatCompletionRequest => ({
  model: request.model,
  messages: (inputTexts(request.input) ?? []).map((content) => ({ role: "user" as const, content }))
})

const tokenCount = (request: EmbeddingRequest, chat: ChatCompletionRequest): Effect.Effect<number> => {
  if (inputTexts(request.input) !== undefined) return countPrompt(chat)
  const ids = request.input as ReadonlyArray<number> | ReadonlyArray<ReadonlyArray<number>>
  return Effect.succeed(ids.reduce<number>((sum, item) => sum + (typeof item === "number" ? 1 : item.length), 0))
}

const reply = Effect.fnUntraced(function*(services: ChatServices, body: ReceivedBody, ticket: Ticket) {
  const { config, router } = services
  const asked = yield* readEmbeddings(body, config)
  ticket.model = asked.model
  // Input policies see the texts: a blocked one stops here, a redacted one is what is sent, a routed one goes where it may.
  const policies = yield* requestPolicies(config.policies, asked.model, ticket)
  const admit = (texts: EmbeddingRequest, chat: ChatCompletionRequest) =>
    ticket.admit([texts.model], Effect.map(tokenCount(texts, chat), (tokens) => [{ micros: worstCaseOf(config, texts.model, tokens, 0) ?? 0, tokens }]))
  // Before policies that wait for a judge, so that a key that cannot pay is refused before one is asked.
  const early = admitsFirst(policies)
  if (early) yield* admit(asked, asChat(asked))
  const { request: checked, applied } = yield* checkRequest(policies, asChat(asked))
  const texts = checked.messages.map((m) => (typeof m.content === "string" ? m.content : ""))
  const request: EmbeddingRequest = {
    ...asked,
    model: checked.model,
    ...(inputTexts(asked.input) === undefined ? {} : { input: typeof asked.input === "string" ? texts[0] ?? "" : texts })
  }
  const chat = { ...checked, model: request.model }
  if (!early) yield* admit(request, chat)
  const routed = yield* router.embed(request, chat)
  const cost = ticket.finish(200)
  return json(routed.value, {
    "x-quorum-deployment": routed.deployment.id,
    "x-quorum-attempts": String(routed.attempts),
    ...(applied.length > 0 ? { [POLICY_HEADER]: applied.join(", ") } : {}),
    [COST_HEADER]: formatUsd(cost)
  })
})

export const makeEmbeddings = (services: ChatServices) => (incoming: IncomingMessage, body: ReceivedBody): Effect.Effect<Reply, never, Scope.Scope> =>
  metered(services.spend, "/v1/embeddings", { authorization: incoming.headers["authorization"], arrival: body.arrival }, (ticket) =>
    reply(services, body, ticket))
