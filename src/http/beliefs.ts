/**
 * GET /v1/routes/{name}/beliefs: what a learned route (strategy: adaptive) believes of
 * each target now, as the database holds it for every replica, and the share of this
 * worker's recent calls that explored. For the admin key, or any key that may use the
 * route (no key where the gateway is open): a route's beliefs say no more than its answers.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Schema } from "effect"
import type { ResolvedConfig } from "../config/gateway-config"
import { believedScores } from "../routing/learned/bandit"
import { meanQuality, PRIOR } from "../routing/learned/belief"
import type { BeliefStore } from "../routing/learned/store"
import type { Spend } from "../billing/spend"
import { answeringDefects, errorResponse } from "./errors"
import { isAdmin } from "./feedback"

export const RouteBeliefsReport = Schema.Struct({
  object: Schema.Literal("route.beliefs"),
  route: Schema.String,
  weights: Schema.Struct({ quality: Schema.Number, cost: Schema.Number, latency: Schema.Number }),
  exploration: Schema.Struct({
    /** The route's bound: at most this share of calls goes to a target believed worse. */
    bound: Schema.Number,
    /** The share of this worker's recent calls (over `window`) that explored. */
    recent_share: Schema.Number,
    window: Schema.Int
  }),
  /** Ledger rows of requests that ended before this instant (epoch ms) are in the beliefs. */
  folded_through_ms: Schema.Number,
  data: Schema.Array(Schema.Struct({
    target: Schema.String,
    alpha: Schema.Number,
    beta: Schema.Number,
    mean_quality: Schema.Number,
    mean_cost_usd: Schema.NullOr(Schema.Number),
    mean_latency_ms: Schema.NullOr(Schema.Number),
    /** Completed calls folded from the ledger. */
    calls: Schema.Int,
    /** Labels from POST /v1/feedback. */
    feedback: Schema.Int,
    /** Quality less cost and latency (relative to the dearest and slowest target) under the weights: the best believed is highest. */
    score: Schema.Number
  }))
})

const PATH = /^\/v1\/routes\/(.+)\/beliefs\/?$/

const refuse = (status: number, code: string, message: string, param: string | null = null) =>
  HttpServerResponse.unsafeJson({ error: { message, type: "invalid_request_error", param, code } }, { status })

export const makeBeliefsHandler = (config: ResolvedConfig, beliefs: BeliefStore, spend: Spend) =>
  answeringDefects(
    "/v1/routes/{name}/beliefs",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const encoded = PATH.exec(new URL(request.url, "http://quorum").pathname)?.[1]
      if (encoded === undefined) return refuse(404, "not_found", `Unknown path ${request.url}: a route's beliefs are at /v1/routes/{name}/beliefs`)
      const name = decodeURIComponent(encoded)
      const authorization = request.headers["authorization"]
      // A key sees the routes it may call; refused as any request would be (missing, wrong or revoked key).
      const allowed = isAdmin(config, authorization) ? null : yield* spend.caller(authorization)
      const route = beliefs.learned.get(name)
      if (route?.adaptive === undefined || (allowed !== null && !allowed.includes(name))) {
        const known = allowed === null || allowed.includes(name) ? config.routes.get(name) : undefined
        return refuse(404, "route_not_found", known === undefined ? `No route \`${name}\`` : `Route \`${name}\` does not learn (its strategy is ${known.strategy}, not adaptive)`, "name")
      }
      const settings = route.adaptive
      // The mark first: folds only add, so beliefs read after it hold at least what it says is folded
      // (read the other way round, another replica's fold between the two made the mark say more).
      const mark = yield* beliefs.mark
      const stored = yield* beliefs.beliefs(name)
      const arms = route.targets.map((t) => ({ target: t.deployment, belief: stored.get(t.deployment) ?? { ...PRIOR, feedback: 0 } }))
      const scored = believedScores(arms, settings)
      const budget = beliefs.snapshot.budgetOf(name, settings)
      return HttpServerResponse.unsafeJson({
        object: "route.beliefs",
        route: name,
        weights: settings.weights,
        exploration: { bound: settings.exploration, recent_share: budget.exploredShare, window: settings.memory },
        folded_through_ms: mark.endedAt,
        data: scored.map(({ arm: { belief, target }, score }) => ({
          target,
          alpha: belief.alpha,
          beta: belief.beta,
          mean_quality: meanQuality(belief),
          mean_cost_usd: belief.costUsd ?? null,
          mean_latency_ms: belief.latencyMs ?? null,
          calls: belief.calls,
          feedback: belief.feedback,
          score
        }))
      } satisfies typeof RouteBeliefsReport.Encoded)
    }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
  )
