import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { GatewayConfig, type ResolvedConfig } from "../config/gateway-config"
import type { Spend } from "../spend/spend"
import { ServedApi } from "./api"
import { errorResponse } from "./errors"

/**
 * GET /v1/models: everything without a key (on an open gateway), a key's own models with
 * one, and 401 without a valid key where keys are required, as OpenAI answers.
 */
export const makeModelList = (config: ResolvedConfig, spend: Spend) => {
  const created = Math.floor(Date.now() / 1000)
  // The list never changes while the process runs: build it once.
  const all = [
    ...["consensus", ...[...config.consensus.presets.keys()].map((id) => `consensus/${id}`), ...config.routes.keys()]
      .map((id) => ({ id, object: "model" as const, created, owned_by: "quorum" })),
    ...[...config.deployments.values()].map((d) => ({ id: d.id, object: "model" as const, created, owned_by: d.provider }))
  ]
  const everything = { object: "list" as const, data: all }
  return Effect.gen(function*() {
    const authorization = (yield* HttpServerRequest.HttpServerRequest).headers["authorization"]
    const allowed = yield* spend.caller(authorization)
    return HttpServerResponse.unsafeJson(allowed === null ? everything : { object: "list", data: all.filter((m) => allowed.includes(m.id)) })
  }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
}

export const HealthLive = HttpApiBuilder.group(ServedApi, "health", (handlers) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const health = { status: "ok" as const, models: config.deployments.size, routes: config.routes.size }
    return handlers.handle("health", () => Effect.succeed(health))
  }))

