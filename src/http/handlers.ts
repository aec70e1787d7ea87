import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { ServedApi } from "./api"

export const ModelsLive = HttpApiBuilder.group(ServedApi, "models", (handlers) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const created = Math.floor(Date.now() / 1000)
    // The list never changes while the process runs: build it once.
    const list = {
      object: "list" as const,
      data: [
        ...["consensus", ...[...config.consensus.presets.keys()].map((id) => `consensus/${id}`), ...config.routes.keys()]
          .map((id) => ({ id, object: "model" as const, created, owned_by: "quorum" })),
        ...[...config.deployments.values()].map((d) => ({ id: d.id, object: "model" as const, created, owned_by: d.provider }))
      ]
    }
    return handlers.handle("list", () => Effect.succeed(list))
  }))

export const HealthLive = HttpApiBuilder.group(ServedApi, "health", (handlers) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const health = { status: "ok" as const, models: config.deployments.size, routes: config.routes.size }
    return handlers.handle("health", () => Effect.succeed(health))
  }))

