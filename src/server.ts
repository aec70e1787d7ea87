/** Where the layers meet: config, upstream clients, router, spend and HTTP server. */
import { HttpLayerRouter, HttpMiddleware } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Layer } from "effect"
import { createServer } from "node:http"
import { GatewayConfig, type ResolvedConfig } from "./config/gateway-config"
import { Routes } from "./http/routes"
import { Consensus } from "./consensus/engine"
import { Evaluators } from "./consensus/evaluators"
import { Router } from "./routing/router"
import { databaseLayer } from "./spend/db/database"
import { Ledger } from "./spend/ledger"
import { Spend } from "./spend/spend"
import { SpendStore } from "./spend/store"

/** Keys, budgets and the ledger, over the database the config names. */
const SpendLive = (config: ResolvedConfig) =>
  Spend.Default.pipe(
    Layer.provideMerge(Ledger.Default),
    Layer.provideMerge(SpendStore.Default),
    Layer.provide(databaseLayer(config.spend.database))
  )

export interface Listen {
  readonly host: string
  readonly port: number
}

export const GatewayLive = (config: ResolvedConfig) =>
  HttpLayerRouter.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
    // No span exporter is configured, and the platform's request span costs a URL parse
    // and an attribute per header on every request.
    HttpMiddleware.withTracerDisabledWhen(() => true),
    Layer.provide(Consensus.Default.pipe(Layer.provideMerge(Evaluators.Default), Layer.provideMerge(Router.Default))),
    Layer.provide(SpendLive(config)),
    Layer.provide(Layer.succeed(GatewayConfig, config))
  )

export const ServerLive = (config: ResolvedConfig, listen: Listen) =>
  GatewayLive(config).pipe(
    Layer.provideMerge(
      NodeHttpServer.layer(() => {
        const server = createServer()
        // Longer than common client pools' idle time, so that a reused socket is never closed under a request.
        server.keepAliveTimeout = 65_000
        return server
      }, listen)
    )
  )
