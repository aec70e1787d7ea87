/**
 * Start-up: load and check the config (a wrong one stops here, with its reason), then
 * serve. With more than one worker, node:cluster runs one server per core behind one
 * port; the primary only supervises.
 */
import { FileSystem } from "@effect/platform"
import { Config, Effect, Layer } from "effect"
import cluster from "node:cluster"
import { availableParallelism } from "node:os"
import type { ResolvedConfig } from "./config/gateway-config"
import { loadConfig } from "./config/load"
import { checkDeclaredNames } from "./consensus/evaluators"
import { BUILTIN_EVALUATORS, loadEvaluators } from "./consensus/registry"
import { type Listen, ServerLive } from "./server"
import { databaseLayer, describeDatabase } from "./spend/db/database"

const settings = Effect.all({
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("PORT").pipe(Config.withDefault(8787)),
  workers: Config.integer("QUORUM_WORKERS").pipe(Config.withDefault(availableParallelism()))
})

const describeSource = (config: ResolvedConfig): string => {
  switch (config.source.kind) {
    case "file":
      return `config ${config.source.path}`
    case "env":
      return "models of the provider keys found in the environment (no config file)"
    case "demo":
      return "DEMO FLEET of simulated models (provider sim): no config file and no provider key in the environment"
  }
}

const banner = (config: ResolvedConfig, listen: Listen, workers: number) =>
  Effect.log(
    `Quorum listening on http://${listen.host}:${listen.port} with ${workers} worker${workers === 1 ? "" : "s"}; ` +
      `${describeSource(config)}; models: ${[...config.deployments.keys()].join(", ")}` +
      (config.routes.size > 0 ? `; routes: ${[...config.routes.keys()].join(", ")}` : "") +
      `; ledger: ${describeDatabase(config.spend.database)}; ` +
      (config.auth.mode === "open" ? "open (virtual keys optional)" : "virtual keys required") +
      (config.auth.adminKey === undefined ? `; admin API off (set ${config.auth.adminKeyEnv})` : "")
  )

const isLoopback = (host: string): boolean => host === "localhost" || host === "::1" || host.startsWith("127.")

/** Serves in this process; `ready` runs once the port is open. */
const serve = (config: ResolvedConfig, listen: Listen, ready: Effect.Effect<void>) =>
  Effect.scoped(Layer.build(ServerLive(config, listen)).pipe(Effect.zipRight(ready), Effect.zipRight(Effect.never)))

/** Forks the workers and waits until all of them listen. */
const forkWorkers = (count: number) =>
  Effect.async<void>((resume) => {
    let listening = 0
    const onListening = () => {
      if (++listening < count) return
      cluster.off("listening", onListening)
      resume(Effect.void)
    }
    cluster.on("listening", onListening)
    for (let i = 0; i < count; i++) cluster.fork()
  })

/**
 * Re-forks a worker that died, but not in a tight loop if it dies at once. When the
 * primary is stopped (SIGINT, SIGTERM) it stops re-forking and stops the workers.
 */
const supervise = (count: number) =>
  Effect.async<never>(() => {
    let recent = 0
    const timers = new Set<NodeJS.Timeout>()
    const onExit = (worker: { process: { pid?: number } }, code: number, signal: string) => {
      console.error(`quorum: worker ${worker.process.pid} exited (${signal ?? code}); starting another`)
      recent++
      const forget = setTimeout(() => recent--, 10_000)
      const refork = setTimeout(() => {
        timers.delete(refork)
        cluster.fork()
      }, recent > count ? 5_000 : 100)
      timers.add(refork)
      forget.unref()
    }
    cluster.on("exit", onExit)
    return Effect.sync(() => {
      cluster.off("exit", onExit)
      for (const timer of timers) clearTimeout(timer)
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill("SIGTERM")
    })
  })

export const start = (configPath: string | undefined): Effect.Effect<void, unknown, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const loaded = yield* loadConfig(configPath)
    // Checked before any worker starts: a broken evaluator must stop start-up, not crash-loop workers.
    const modules = yield* loadEvaluators([BUILTIN_EVALUATORS, ...loaded.consensus.evaluatorDirs])
    yield* checkDeclaredNames(modules, loaded.consensus.declaredEvaluators)
    const { host, port, workers } = yield* settings
    const listen = { host, port }
    // Open unless configured otherwise only where nobody else can reach it.
    const config = { ...loaded, auth: { ...loaded.auth, mode: loaded.auth.mode ?? (isLoopback(host) ? "open" as const : "keys" as const) } }
    if (!cluster.isPrimary) return yield* serve(config, listen, Effect.void)
    // The primary opens and migrates the database once, so that a bad URL stops start-up
    // here and workers do not race to create the schema.
    yield* Effect.scoped(Layer.build(databaseLayer(config.spend.database)))
    if (workers <= 1) return yield* serve(config, listen, banner(config, listen, 1))
    yield* forkWorkers(workers)
    yield* banner(config, listen, workers)
    return yield* supervise(workers)
  }).pipe(
    Effect.catchTags({
      ConfigError: (error) => stop(`configuration error: ${error.message}`),
      EvaluatorLoadError: (error) => stop(`evaluator error: ${error.message}`),
      SpendStoreError: (error) => stop(error.message)
    })
  )

const stop = (message: string) =>
  Effect.sync(() => {
    console.error(`quorum: ${message}`)
    process.exit(1)
  })

/** `--config path` or `--config=path`. */
export const configArgument = (argv: ReadonlyArray<string>): string | undefined => {
  for (const [i, arg] of argv.entries()) {
    if (arg === "--config") return argv[i + 1]
    if (arg.startsWith("--config=")) return arg.slice("--config=".length)
  }
  return undefined
}
