/** POST /v1/consensus (also /consensus) and GET /evaluators. */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, type Scope } from "effect"
import type { IncomingMessage } from "node:http"
import type { ResolvedConfig } from "../config/gateway-config"
import type { Consensus } from "../consensus/engine"
import { ConsensusRequest, samplingOf } from "../consensus/request"
import { formatUsd } from "../domain/money"
import type { Spend } from "../billing/spend"
import type { Ticket } from "../billing/ticket"
import { answeringDefects, errorResponse } from "./errors"
import { COST_HEADER, metered } from "./metered"
import { jsonBodyParser } from "./read-json-body"
import type { ReceivedBody } from "./read-body"
import { limitsOf } from "./chat-cache"
import { json, type Reply } from "./hot/reply"
import { checkConsensusRequest, checkReport, requestPolicies } from "./policies"

const readConsensusRequest = jsonBodyParser(ConsensusRequest)

const reply = Effect.fnUntraced(function*(config: ResolvedConfig, consensus: Consensus, incoming: IncomingMessage, body: ReceivedBody, ticket: Ticket) {
  ticket.model = "consensus"
  // The limit headers hold a fan-out as they hold a chat completion (the body has max_cost_usd and timeout_ms of its own).
  ticket.limits = yield* limitsOf({}, incoming.headers)
  const read = yield* readConsensusRequest(body, config)
  const policies = yield* requestPolicies(config.policies, "consensus", ticket)
  const request = yield* checkConsensusRequest(policies, read)
  const report = yield* Effect.flatMap(consensus.run(request, samplingOf(request)), (r) => checkReport(policies, r))
  // The ledger's figure, judges' calls and cancelled ones included, is the one the header and the body give.
  const cost = formatUsd(ticket.finish(200))
  return json({ ...report, cost_usd: cost }, { [COST_HEADER]: cost })
})

/** POST /v1/consensus, a hot route (see hot/front-door.ts). */
export const makeConsensusHandler = (config: ResolvedConfig, consensus: Consensus, spend: Spend) =>
  (incoming: IncomingMessage, body: ReceivedBody): Effect.Effect<Reply, never, Scope.Scope> =>
    metered(spend, "/v1/consensus", { authorization: incoming.headers["authorization"], arrival: body.arrival }, (ticket) =>
      reply(config, consensus, incoming, body, ticket))

/** The list, once the caller is known to be allowed to call the gateway. */
const evaluatorList = Effect.fnUntraced(function*(spend: Spend, list: unknown) {
  yield* spend.caller((yield* HttpServerRequest.HttpServerRequest).headers["authorization"])
  return HttpServerResponse.unsafeJson(list)
})

/** GET /evaluators, for anyone who may call the gateway (a key where keys are required). */
export const makeEvaluatorList = (consensus: Consensus, spend: Spend) => {
  const list = {
    object: "list" as const,
    data: [...consensus.evaluators.values()].map((e) => ({ name: e.name, description: e.description, gate: e.gate === true }))
  }
  return answeringDefects("/evaluators", evaluatorList(spend, list).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error)))))
}
