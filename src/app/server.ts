/** Where the layers meet: config, upstream clients, router, spend and HTTP server. */
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Layer, Redacted } from "effect"
import type { SharedStateError } from "../state/errors"
import { createServer } from "node:http"
import { GatewayConfig, type ResolvedConfig } from "../config/gateway-config"
import { Routes } from "../http/routes"
import { openFrontDoor } from "../http/hot/front-door"
import { HotRoutes, HotRoutesLive } from "../http/hot-routes"
import { makeTelemetry, Telemetry, type TelemetryShape } from "../telemetry/telemetry"
import { Consensus } from "../consensus/engine"
import { Evaluators } from "../consensus/evaluators"
import { Router } from "../routing/router"
import { databaseLayer } from "../billing/db/database"
import { Ledger } from "../billing/ledger"
import { Spend } from "../billing/spend"
import { SqlSpendStore } from "../billing/store/sql"
import { LearnedPoliciesLive, Learning, OutcomeSinkLive } from "../consensus/learning/live"
import { OutcomeStore } from "../consensus/learning/outcome-store"
import { BeliefStore } from "../routing/learned/store"
import { LearnedBeliefsLive } from "../routing/learned/view"
import { tracesEndpoint } from "../config/telemetry"
import type { Tracing } from "../telemetry/tracing-tag"
import { PACKAGE_VERSION } from "../domain/package-root"
import { PoliciesBoundLive } from "../http/check-context"

/** Keys, budgets and the ledger, consensus outcomes and learning, and learned routes' beliefs, over the database the config names. */
const SpendLive = (config: ResolvedConfig, telemetry: TelemetryShape) =>
  Layer.mergeAll(
    Spend.Default.pipe(Layer.provideMerge(Ledger.Default)),
    Layer.mergeAll(LearnedPoliciesLive, OutcomeSinkLive).pipe(Layer.provideMerge(Learning.Default), Layer.provide(OutcomeStore.Default)),
    BeliefStore.Default
  ).pipe(
    Layer.provideMerge(SqlSpendStore),
    Layer.provide(databaseLayer(config.spend.database)),
    Layer.provideMerge(Layer.succeed(Telemetry, telemetry))
  )

export interface Listen {
  readonly host: string
  readonly port: number
}

/**
 * Spans on the request path when an OTLP endpoint is configured; the OpenTelemetry SDK is
 * imported only then (it is ~50 MB of a worker's memory).
 */
const TracingFor = (config: ResolvedConfig): Layer.Layer<never> | Layer.Layer<Tracing> => {
  const endpoint = tracesEndpoint(config.telemetry)
  if (endpoint === undefined) return Layer.empty
  return Layer.unwrapEffect(Effect.promise(() => import("../telemetry/tracing")).pipe(
    Effect.map(({ TracingLive }) => TracingLive(config.telemetry, PACKAGE_VERSION, endpoint))
  ))
}

/** Circuits and the response cache shared by replicas through Redis, when QUORUM_REDIS_URL is set. */
const SharedStateFor = (config: ResolvedConfig): Layer.Layer<never, SharedStateError> => {
  if (config.redisUrl === undefined) return Layer.empty
  const url = Redacted.value(config.redisUrl)
  return Layer.unwrapEffect(Effect.promise(() => import("../state/shared")).pipe(Effect.map(({ SharedStateLive }) => SharedStateLive(url))))
}

/** Everything the routes use: router, consensus, spend, over the config. */
const ServicesLive = (config: ResolvedConfig, telemetry: TelemetryShape) => {
  // One instance: the engine reads learned policies from it, and layers are built once per instance.
  const spend = SpendLive(config, telemetry)
  // The routes read the config with its policies' `llm` checks bound to the router (its GatewayConfig wins the merge).
  return PoliciesBoundLive.pipe(Layer.provideMerge(Layer.mergeAll(
    Consensus.Default.pipe(Layer.provideMerge(Evaluators.Default), Layer.provideMerge(Router.Default), Layer.provide(spend)),
    spend
  ).pipe(
    // One snapshot per worker: the belief store fills it, the router reads it.
    Layer.provideMerge(LearnedBeliefsLive),
    Layer.provideMerge(TracingFor(config)),
    Layer.provideMerge(SharedStateFor(config)),
    Layer.provideMerge(Layer.succeed(GatewayConfig, config))
  )))
}

const routesOver = <E, R>(services: Layer.Layer<Layer.Layer.Success<ReturnType<typeof ServicesLive>>, E, R>) =>
  HttpLayerRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
    // No span exporter is configured, and the platform's request span costs a URL parse
    // and an attribute per header on every request.
    HttpMiddleware.withTracerDisabledWhen(() => true),
    Layer.provide(services)
  )

export const ServerLive = (config: ResolvedConfig, listen: Listen) => {
  // One instance, so that it is built once. The server is made to depend on it: the port
  // opens only once the database is migrated and every service is ready, since a request
  // accepted before the routes are attached would never be answered.
  // Made here, not in a layer: the load shedder in front of the server counts into it too.
  const telemetry = makeTelemetry()
  const services = ServicesLive(config, telemetry)
  const server = Layer.unwrapEffect(Effect.map(HotRoutes, (hot) =>
    NodeHttpServer.layer(() => {
      const server = createServer()
      // Longer than common client pools' idle time, so that a reused socket is never closed under a request.
      server.keepAliveTimeout = 65_000
      telemetry.metrics.watchShedding(openFrontDoor(server, config.maxInFlight, hot))
      return server
    }, listen))).pipe(Layer.provide(HotRoutesLive), Layer.provide(services))
  return routesOver(services).pipe(Layer.provideMerge(server))
}
