import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { GatewayConfig, type ResolvedConfig } from "../config/gateway-config"
import type { ModelObject } from "../protocol/models"
import { UnknownModel } from "../routing/errors"
import type { Spend } from "../billing/spend"
import { ServedApi } from "./api"
import { errorResponse } from "./errors"

/** Every name a client may call, as OpenAI's model objects; built once, since it never changes while the process runs. */
const modelObjects = (config: ResolvedConfig): ReadonlyArray<ModelObject> => {
  const created = Math.floor(Date.now() / 1000)
  return [
    ...["consensus", ...[...config.consensus.presets.keys()].map((id) => `consensus/${id}`), ...config.routes.keys()]
      .map((id) => ({ id, object: "model" as const, created, owned_by: "quorum" })),
    ...[...config.deployments.values()].map((d) => ({ id: d.id, object: "model" as const, created, owned_by: d.provider }))
  ]
}

const authorizationHeader = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.headers["authorization"])

/**
 * GET /v1/models: everything without a key (on an open gateway), a key's own models with
 * one, and 401 without a valid key where keys are required, as OpenAI answers.
 */
export const makeModelList = (config: ResolvedConfig, spend: Spend) => {
  const all = modelObjects(config)
  const everything = { object: "list" as const, data: all }
  return Effect.gen(function*() {
    const allowed = yield* spend.caller(yield* authorizationHeader)
    return HttpServerResponse.unsafeJson(allowed === null ? everything : { object: "list", data: all.filter((m) => allowed.includes(m.id)) })
  }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
}

/**
 * GET /v1/models/{id} (the SDKs' `models.retrieve`), under the same rules as the list. A
 * model the caller's key may not use is a 404 like an unknown one, as OpenAI answers, and
 * the message lists only what the key may use. Ids may hold a slash (`consensus/code-review`):
 * the route takes the rest of the path, and SDKs that encode it as %2F are decoded.
 */
export const makeModelRetrieve = (config: ResolvedConfig, spend: Spend) => {
  const all = new Map(modelObjects(config).map((m) => [m.id, m]))
  return Effect.gen(function*() {
    const id = modelIdOf((yield* HttpRouter.params)["*"] ?? "")
    const allowed = yield* spend.caller(yield* authorizationHeader)
    const model = all.get(id)
    if (model === undefined || (allowed !== null && !allowed.includes(id))) {
      return yield* new UnknownModel({ model: id, known: allowed === null ? [...all.keys()] : [...all.keys()].filter((m) => allowed.includes(m)) })
    }
    return HttpServerResponse.unsafeJson(model)
  }).pipe(Effect.catchAll((error) => Effect.succeed(errorResponse(error))))
}

const modelIdOf = (raw: string): string => {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}

export const HealthLive = HttpApiBuilder.group(ServedApi, "health", (handlers) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const health = { status: "ok" as const, models: config.deployments.size, routes: config.routes.size }
    return handlers.handle("health", () => Effect.succeed(health))
  }))

