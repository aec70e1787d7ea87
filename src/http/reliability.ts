/** GET /v1/reliability?task=...: what consensus learned of each model on a task, and the rule and weights in force. */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import type { Learning } from "../consensus/learning/live"
import type { Spend } from "../billing/spend"
import { answeringDefects, errorResponse, InvalidRequest } from "./errors"
import { isAdmin } from "./feedback"

export const ReliabilityReport = Schema.Struct({
  object: Schema.Literal("reliability"),
  task: Schema.String,
  rule: Schema.Literal("config", "learned"),
  labels: Schema.Int,
  learned_from: Schema.Int,
  min_labels: Schema.Int,
  answer_kinds: Schema.NullOr(Schema.Array(Schema.String)),
  data: Schema.Array(Schema.Struct({
    model: Schema.String,
    labelled: Schema.Int,
    answered: Schema.Int,
    correct: Schema.Int,
    accuracy: Schema.NullOr(Schema.Number),
    abstention_rate: Schema.NullOr(Schema.Number),
    mean_latency_ms: Schema.NullOr(Schema.Number),
    mean_cost_usd: Schema.NullOr(Schema.String),
    config_weight: Schema.Number,
    learned_weight: Schema.NullOr(Schema.Number),
    weight: Schema.Number
  }))
})

/** GET /v1/reliability?task=...: what was learned per model, and the rule in force. Admin key, or open where the gateway is open. */
export const makeReliabilityHandler = (config: ResolvedConfig, learning: Learning, spend: Spend) =>
  answeringDefects(
    "/v1/reliability",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const authorization = request.headers["authorization"]
      if (!isAdmin(config, authorization)) {
        const open = yield* spend.caller(undefined).pipe(Effect.as(true), Effect.catchAll(() => Effect.succeed(false)))
        if (!open) {
          return HttpServerResponse.unsafeJson(
            { error: { message: "Reliability is for the admin key on a gateway that requires keys: send it as Authorization: Bearer <key>.", type: "invalid_request_error", param: null, code: "invalid_api_key" } },
            { status: 401 }
          )
        }
      }
      const task = new URL(request.url, "http://quorum").searchParams.get("task") ?? "default"
      if (task === "" || task.length > 200) return yield* new InvalidRequest({ message: "`task` must be 1 to 200 characters", param: "task", code: "invalid_value" })
      return HttpServerResponse.unsafeJson(yield* learning.reliability(task))
    }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
  )
