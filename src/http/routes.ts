import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { Effect, Layer } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { QuorumApi, ServedApi } from "./api"
import { makeEvaluatorList } from "./consensus"
import { Consensus } from "../consensus/engine"
import { answeringDefects, errorResponse, RouteNotFound } from "./errors"
import { HealthLive, makeModelList, makeModelRetrieve } from "./handlers"
import { AdminKeyLive, AdminLive } from "./admin"
import { Spend } from "../billing/spend"
import { Learning } from "../consensus/learning/live"
import { makeFeedbackHandler } from "./feedback"
import { makeReliabilityHandler } from "./reliability"
import { makeBeliefsHandler } from "./beliefs"
import { BeliefStore } from "../routing/learned/store"
import { makeMetricsHandler } from "./metrics"
import { makeDashboard } from "./dashboard"
import { Telemetry } from "../telemetry/telemetry"

const ApiRoutes = HttpLayerRouter.addHttpApi(ServedApi).pipe(Layer.provide([HealthLive, AdminLive.pipe(Layer.provide(AdminKeyLive))]))

const ModelsRoute = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const spend = yield* Spend
    yield* router.add("GET", "/v1/models", answeringDefects("/v1/models", makeModelList(config, spend)))
    yield* router.add("GET", "/v1/models/*", answeringDefects("/v1/models/{id}", makeModelRetrieve(config, spend)))
  }))

// POST /v1/chat/completions, /v1/consensus and /consensus are served before this router: see hot-routes.ts.
const EvaluatorsRoute = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    yield* router.add("GET", "/evaluators", makeEvaluatorList(yield* Consensus, yield* Spend))
  }))

const LearningRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const config = yield* GatewayConfig
    const learning = yield* Learning
    const spend = yield* Spend
    const beliefs = yield* BeliefStore
    yield* router.add("POST", "/v1/feedback", makeFeedbackHandler(config, learning, spend, beliefs))
    yield* router.add("GET", "/v1/routes/*", makeBeliefsHandler(config, beliefs, spend))
    yield* router.add("GET", "/v1/reliability", makeReliabilityHandler(config, learning, spend))
  }))

const MetricsRoute = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    yield* router.add("GET", "/metrics", makeMetricsHandler(yield* GatewayConfig, yield* Telemetry))
  }))

const DashboardRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function*() {
    const dashboard = makeDashboard()
    yield* router.add("GET", "/dashboard", dashboard)
    yield* router.add("GET", "/dashboard/*", dashboard)
  }))

const openApiDocument = OpenApi.fromApi(QuorumApi)
const OpenApiRoute = HttpLayerRouter.add("GET", "/openapi.json", Effect.succeed(HttpServerResponse.unsafeJson(openApiDocument)))

/** Anything else gets OpenAI's error shape too, not an empty 404. */
const NotFound = HttpLayerRouter.add("*", "*", (request) =>
  Effect.succeed(errorResponse(new RouteNotFound({ method: request.method, path: request.url }))))

export const Routes = Layer.mergeAll(ApiRoutes, ModelsRoute, EvaluatorsRoute, LearningRoutes, MetricsRoute, DashboardRoutes, OpenApiRoute, NotFound)
