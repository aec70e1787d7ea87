import { HttpLayerRouter } from "@effect/platform"
import { Effect, Layer } from "effect"
import { QuorumApi } from "./api"
import { errorResponse, RouteNotFound } from "./errors"
import { ChatLive, HealthLive, ModelsLive } from "./handlers"

const ApiRoutes = HttpLayerRouter.addHttpApi(QuorumApi, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide([ChatLive, ModelsLive, HealthLive])
)

/** Anything else gets OpenAI's error shape too, not an empty 404. */
const NotFound = HttpLayerRouter.add("*", "*", (request) =>
  Effect.succeed(errorResponse(new RouteNotFound({ method: request.method, path: request.url }))))

export const Routes = Layer.mergeAll(ApiRoutes, NotFound)
