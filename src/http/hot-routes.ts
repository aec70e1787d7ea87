/**
 * The hot routes' table, built once with the services they use, and the runtime their
 * fibers run on (prebuilt: a request pays for a fiber, not for a Layer or a context).
 */
import { Context, Effect, Layer, Option, Runtime } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { Consensus } from "../consensus/engine"
import { Router } from "../routing/router"
import { Spend } from "../billing/spend"
import { CacheStore } from "../cache/store"
import { makeCacheServices } from "./chat-cache"
import { makeChatCompletions } from "./chat-completions"
import { makeConsensusHandler } from "./consensus"
import { makeEmbeddings } from "./embeddings"
import { makeMessages } from "./messages"
import { makeResponses } from "./responses"
import type { HotHandler, HotRoutes as HotRoutesShape } from "./hot/front-door"
import { CIRCUIT_LEVEL } from "../telemetry/metrics"
import { Telemetry } from "../telemetry/telemetry"
import { Tracing } from "../telemetry/tracing-tag"

export class HotRoutes extends Context.Tag("quorum/HotRoutes")<HotRoutes, HotRoutesShape>() {}

export const HotRoutesLive = Layer.effect(
  HotRoutes,
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const spend = yield* Spend
    const consensus = yield* Consensus
    const router = yield* Router
    const telemetry = yield* Telemetry
    const sharedCache = Option.getOrUndefined(yield* Effect.serviceOption(CacheStore))
    const services = { config, router, consensus, spend, cache: makeCacheServices(config, router, sharedCache), telemetry }
    const chat = makeChatCompletions(services)
    const fanOut = makeConsensusHandler(config, consensus, spend)
    // Circuit states are read from this worker's router when /metrics is scraped.
    const ids = [...config.deployments.keys()]
    telemetry.metrics.watchCircuits(() => ids.map((id) => [id, CIRCUIT_LEVEL[router.circuit(id)]] as const))
    const runtime = yield* Effect.runtime<never>()
    const tracing = Option.getOrUndefined(yield* Effect.serviceOption(Tracing))
    return {
      ...(tracing === undefined ? {} : {
        traced: (route: string, effect: Effect.Effect<void>) => tracing.request(`POST ${route}`, { "http.request.method": "POST", "http.route": route }, effect)
      }),
      routes: new Map<string, HotHandler>([
        ["/v1/chat/completions", chat],
        ["/v1/messages", makeMessages(services)],
        ["/v1/responses", makeResponses(services)],
        ["/v1/embeddings", makeEmbeddings(services)],
        ["/v1/consensus", fanOut],
        ["/consensus", fanOut]
      ]),
      maxBodyBytes: config.maxBodyBytes,
      run: Runtime.runFork(runtime)
    }
  })
)
