/**
 * Start-up: load and check the config (a wrong one stops here, with its reason), then
 * serve. With more than one worker, node:cluster runs one server per core behind one
 * port; the primary checks the config and evaluators, migrates the database and
 * supervises, and never loads the HTTP server (workers import it on their own), so that
 * it stays small.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
// Deep imports: the package index would load its HTTP server too, which the primary never uses.
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Schema } from "effect"
import cluster, { type Worker } from "node:cluster"
import { availableParallelism } from "node:os"
import type { ResolvedConfig } from "../config/gateway-config"
import { loadConfig } from "./load-config"
import { checkDeclaredNames, loadEvaluators, PACKAGE_EVALUATORS } from "../consensus/registry"
import type { Listen } from "./server"
import { describeDatabase } from "../config/database"
import { databaseLayer } from "../billing/db/database"
import { answerWorkers } from "../telemetry/cluster"
import { workerExecArgv } from "./worker-flags"

/** Start-up cannot go on: printed as `quorum: <message>`, exit 1. */
class StartError extends Schema.TaggedError<StartError>()("StartError", { message: Schema.String }) {}

const settings = Effect.all({
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("PORT").pipe(Config.withDefault(8787)),
  workers: Config.integer("QUORUM_WORKERS").pipe(Config.withDefault(availableParallelism())),
  evaluatorsDir: Config.string("QUORUM_EVALUATORS_DIR").pipe(Config.withDefault(PACKAGE_EVALUATORS))
})

const describeSource = (config: ResolvedConfig): string => {
  switch (config.source.kind) {
    case "file":
      return `config ${config.source.path}`
    case "env": {
      const order = config.routes.get("default")?.targets.map((t) => t.deployment).join(" → ") ?? "none"
      return `models of the provider keys found in the environment (${config.source.keys.join(", ")}; no config file); ` +
        `route default falls back over them: ${order}`
    }
    case "demo": {
      const unused = config.source.keysWithoutModels ?? []
      return "DEMO FLEET of simulated models (provider sim): no config file and no provider key in the environment" +
        (unused.length === 0 ? "" : ` with usual models (${unused.join(", ")} set: name that provider's models in a config file)`)
    }
  }
}

const banner = (config: ResolvedConfig, listen: Listen, pids: ReadonlyArray<number>) =>
  Effect.log(
    `Quorum listening on http://${listen.host}:${listen.port} with ${pids.length} worker${pids.length === 1 ? "" : "s"} ` +
      `(pid${pids.length === 1 ? "" : "s"} ${pids.join(", ")}); ` +
      `${describeSource(config)}; models: ${[...config.deployments.keys()].join(", ")}` +
      (config.routes.size > 0 ? `; routes: ${[...config.routes.keys()].join(", ")}` : "") +
      `; ledger: ${describeDatabase(config.spend.database)}; ` +
      (config.auth.mode === "open" ? "open (virtual keys optional)" : "virtual keys required") +
      (config.auth.adminKey === undefined ? `; admin API off (set ${config.auth.adminKeyEnv})` : "")
  )

const isLoopback = (host: string): boolean => host === "localhost" || host === "::1" || host.startsWith("127.")

/** Why the port could not be opened, naming host:port. */
const listenError = (listen: Listen, cause: unknown): StartError => {
  const where = `${listen.host}:${listen.port}`
  const code = typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
  const detail = cause instanceof Error ? cause.message : String(cause)
  switch (code) {
    case "EADDRINUSE":
      return new StartError({ message: `port ${listen.port} is in use (${where}: another process listens there; stop it or set PORT)` })
    case "EACCES":
      return new StartError({ message: `cannot listen on ${where}: permission denied (${detail}); set PORT` })
    case "EADDRNOTAVAIL":
      return new StartError({ message: `cannot listen on ${where}: no such address on this machine (${detail}); set HOST` })
    default:
      return new StartError({ message: `cannot listen on ${where} (${detail})` })
  }
}

/**
 * Serves in this process; `ready` runs once the port is open. The server's modules are
 * imported here, so that a primary that only supervises never loads them.
 */
const serve = (config: ResolvedConfig, listen: Listen, ready: Effect.Effect<void>) =>
  Effect.promise(() => import("./server")).pipe(
    Effect.flatMap(({ ServerLive }) => Layer.build(ServerLive(config, listen))),
    Effect.catchTag("ServeError", (error) => Effect.fail(listenError(listen, error.cause))),
    Effect.zipRight(ready),
    Effect.zipRight(Effect.never),
    Effect.scoped
  )

/** What a worker that cannot start tells the primary (over node:cluster's IPC), which says it once and stops. */
const StartFailure = Schema.Struct({ quorumStartFailed: Schema.String })
const isStartFailure = Schema.is(StartFailure)

const liveWorkers = (): Array<Worker> => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)

/**
 * Forks the workers and waits until all of them listen; fails with the first worker's
 * reason if one cannot start (a port in use, say), rather than re-forking it forever.
 */
const forkWorkers = (count: number) =>
  Effect.async<ReadonlyArray<number>, StartError>((resume) => {
    let listening = 0
    const off = () => {
      cluster.off("listening", onListening)
      cluster.off("message", onMessage)
      cluster.off("exit", onExit)
    }
    const fail = (message: string) => {
      off()
      resume(Effect.fail(new StartError({ message })))
    }
    const onListening = () => {
      if (++listening < count) return
      off()
      // A worker that listens was spawned, so it has a pid.
      resume(Effect.succeed(liveWorkers().flatMap((w) => (w.process.pid === undefined ? [] : [w.process.pid]))))
    }
    const onMessage = (_: Worker, message: unknown) => {
      if (isStartFailure(message)) fail(message.quorumStartFailed)
    }
    const onExit = (worker: Worker, code: number, signal: string | null) =>
      fail(`worker ${worker.process.pid} exited during start-up (${signal ?? `exit code ${code}`})`)
    cluster.on("listening", onListening)
    cluster.on("message", onMessage)
    cluster.on("exit", onExit)
    for (let i = 0; i < count; i++) cluster.fork()
    return Effect.sync(off)
  })

/**
 * Stops every worker: SIGTERM, so that each closes its server and writes its pending
 * ledger rows, and waits for them to exit (SIGKILL after `graceMs`). The primary must not
 * exit first: a worker whose primary is gone exits at once (node:cluster does that on
 * the IPC channel's disconnect), without finishing its work.
 */
const stopWorkers = (graceMs: number) =>
  Effect.async<void>((resume) => {
    const workers = liveWorkers().filter((w) => !w.isDead())
    if (workers.length === 0) return resume(Effect.void)
    let left = workers.length
    const force = setTimeout(() => {
      for (const w of workers) if (!w.isDead()) w.process.kill("SIGKILL")
    }, graceMs)
    for (const w of workers) {
      w.once("exit", () => {
        if (--left > 0) return
        clearTimeout(force)
        resume(Effect.void)
      })
      w.process.kill("SIGTERM")
    }
  })

/**
 * Re-forks a worker that died, but not in a tight loop if it dies at once. The workers
 * are stopped when this is interrupted (the primary got SIGINT or SIGTERM).
 */
const supervise = (count: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let recent = 0
      const timers = new Set<NodeJS.Timeout>()
      const onExit = (worker: Worker, code: number, signal: string | null) => {
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
      const onMessage = (worker: Worker, message: unknown) => {
        if (isStartFailure(message)) console.error(`quorum: worker ${worker.process.pid}: ${message.quorumStartFailed}`)
      }
      cluster.on("exit", onExit)
      cluster.on("message", onMessage)
      return () => {
        cluster.off("exit", onExit)
        cluster.off("message", onMessage)
        for (const timer of timers) clearTimeout(timer)
      }
    }),
    (stopSupervising) => Effect.sync(stopSupervising).pipe(Effect.zipRight(stopWorkers(10_000)))
  ).pipe(Effect.zipRight(Effect.never), Effect.scoped)

/** The primary: checks, migration, then serving itself (one worker) or forking. */
const primary = (config: ResolvedConfig, listen: Listen, workers: number) =>
  Effect.gen(function*() {
    // Checked before any worker starts: a broken evaluator must stop start-up, not crash-loop workers.
    const modules = yield* loadEvaluators(config.consensus.evaluatorDirs)
    yield* checkDeclaredNames(modules, config.consensus.declaredEvaluators)
    // The primary opens and migrates the database once, so that a bad URL stops start-up
    // here and workers do not race to create the schema.
    yield* Effect.scoped(Layer.build(databaseLayer(config.spend.database)))
    if (workers <= 1) return yield* serve(config, listen, banner(config, listen, [process.pid]))
    // A scrape reaching any worker is answered with every worker's metrics, gathered here.
    answerWorkers()
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) })
    const pids = yield* forkWorkers(workers).pipe(Effect.onError(() => stopWorkers(5_000)))
    yield* banner(config, listen, pids)
    return yield* supervise(workers)
  })

export const start = (configPath: string | undefined): Effect.Effect<void, unknown, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const loaded = yield* loadConfig(configPath)
    const { evaluatorsDir, host, port, workers } = yield* settings
    const listen = { host, port }
    const config: ResolvedConfig = {
      ...loaded,
      // Open unless configured otherwise only where nobody else can reach it.
      auth: { ...loaded.auth, mode: loaded.auth.mode ?? (isLoopback(host) ? "open" as const : "keys" as const) },
      // The user's folder first, then the config's.
      consensus: { ...loaded.consensus, evaluatorDirs: [evaluatorsDir, ...loaded.consensus.evaluatorDirs] }
    }
    return yield* cluster.isPrimary ? primary(config, listen, workers) : serve(config, listen, Effect.void)
  }).pipe(
    Effect.catchTags({
      ConfigError: (error) => stop(`configuration error: ${error.message}`),
      EvaluatorLoadError: (error) => stop(`evaluator error: ${error.message}`),
      SpendStoreError: (error) => stop(error.message),
      StartError: (error) => stop(error.message),
      SharedStateError: (error) => stop(error.message)
    })
  )

/**
 * Start-up failed: the primary says why and exits 1; a worker tells the primary, which
 * says it once for all workers (or says it itself if the primary is gone).
 */
const stop = (message: string) =>
  Effect.async<never>(() => {
    const exit = () => process.exit(1)
    // `send` exists while the worker has its channel to the primary.
    if (cluster.isWorker && process.connected && process.send !== undefined) {
      process.send(StartFailure.make({ quorumStartFailed: message }), undefined, undefined, exit)
      return
    }
    console.error(`quorum: ${message}`)
    exit()
  })

/**
 * Effect's default runtime counts every fiber in its own metrics (started, active, a
 * lifetime histogram, successes and failures, each under the fiber's labels): work on
 * every request's fiber and every fiber it forks, for figures this gateway never reads
 * (its metrics are telemetry/metrics.ts's). The request fibers run on the runtime the
 * hot routes capture inside this program, and so do their forks; the few fibers started
 * with Effect.runFork elsewhere (background writes and learning) still count, off the
 * request path.
 */
const withoutFiberMetrics = Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.disable(RuntimeFlags.RuntimeMetrics))

/** Runs the gateway until SIGINT or SIGTERM. */
export const main = (configPath: string | undefined): void =>
  start(configPath).pipe(Effect.provide(NodeFileSystem.layer), withoutFiberMetrics, NodeRuntime.runMain)
