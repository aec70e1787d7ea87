/** POST /v1/consensus (also /consensus) and GET /evaluators. */
import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import type { Consensus } from "../consensus/engine"
import { ConsensusRequest } from "../consensus/request"
import { errorResponse } from "./errors"
import { jsonBodyReader } from "./read-json-body"

const readConsensusRequest = jsonBodyReader(ConsensusRequest)
const OWN_FIELDS = new Set(Object.keys(ConsensusRequest.fields))

/** Everything the request has besides consensus's own fields: sampling parameters for every model. */
const samplingOf = (request: ConsensusRequest): Record<string, unknown> =>
  Object.fromEntries(Object.entries(request).filter(([key]) => !OWN_FIELDS.has(key)))

export const makeConsensusHandler = (config: ResolvedConfig, consensus: Consensus) =>
  Effect.gen(function*() {
    const request = yield* readConsensusRequest(config.maxBodyBytes)
    const report = yield* consensus.run(request, samplingOf(request))
    return HttpServerResponse.unsafeJson(report)
  }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))

export const makeEvaluatorList = (consensus: Consensus) => {
  const list = {
    object: "list" as const,
    data: [...consensus.evaluators.values()].map((e) => ({ name: e.name, description: e.description, gate: e.gate === true }))
  }
  return Effect.succeed(HttpServerResponse.unsafeJson(list))
}
