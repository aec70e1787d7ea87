/**
 * `quorum check [--config file]`: the config and evaluators as the gateway would load them
 * at start-up, without starting it: what it would serve, or what is wrong and where.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import type { ResolvedConfig } from "../../config/gateway-config"
import { loadConfig } from "../load-config"
import { checkDeclaredNames, loadEvaluators, PACKAGE_EVALUATORS } from "../../consensus/registry"
import { describeDatabase } from "../../config/database"
import { CommandFailed } from "./admin-client"
import { table } from "./table"

const source = (config: ResolvedConfig): string => {
  switch (config.source.kind) {
    case "file":
      return config.source.path
    case "env":
      return `the provider keys in the environment (${config.source.keys.join(", ")})`
    case "demo":
      return "the demo fleet (no config file, no provider keys)"
  }
}

const summary = (config: ResolvedConfig, evaluators: number) =>
  [
    `Config from ${source(config)}: OK`,
    "",
    table(["model", "provider", "upstream model", "price in/out per 1M"], [...config.deployments.values()].map((d) => [
      d.id,
      d.provider,
      d.upstreamModel,
      d.price === undefined ? "unknown" : `$${d.price.tiers[0].input / 1e6} / $${d.price.tiers[0].output / 1e6}`
    ])),
    "",
    config.routes.size === 0 ? "No routes." : table(["route", "strategy", "targets"], [...config.routes.values()].map((r) => [r.id, r.strategy, r.targets.map((t) => t.deployment).join(", ")])),
    "",
    `Consensus presets: ${[...config.consensus.presets.keys()].join(", ") || "none"}; evaluators loaded: ${evaluators}`,
    `Ledger: ${describeDatabase(config.spend.database)}`
  ].join("\n")

export const checkCommand = Command.make(
  "check",
  {
    config: Options.file("config", { exists: "yes" }).pipe(Options.withDescription("The config file (default: QUORUM_CONFIG, else the environment's provider keys, else the demo fleet)"), Options.optional),
    evaluators: Options.directory("evaluators", { exists: "yes" }).pipe(Options.withDescription("Your evaluators' folder (default: QUORUM_EVALUATORS_DIR, else evaluators/)"), Options.optional)
  },
  (o) =>
    Effect.gen(function*() {
      yield* Console.error("Reading the config…")
      const config = yield* loadConfig(Option.getOrUndefined(o.config)).pipe(Effect.mapError((e) => new CommandFailed({ message: `configuration error: ${e.message}` })))
      yield* Console.error("Loading evaluators…")
      const dirs = [Option.getOrElse(o.evaluators, () => process.env["QUORUM_EVALUATORS_DIR"] ?? PACKAGE_EVALUATORS), ...config.consensus.evaluatorDirs]
      const modules = yield* loadEvaluators(dirs).pipe(Effect.mapError((e) => new CommandFailed({ message: `evaluator error: ${e.message}` })))
      yield* checkDeclaredNames(modules, config.consensus.declaredEvaluators).pipe(Effect.mapError((e) => new CommandFailed({ message: `evaluator error: ${e.message}` })))
      yield* Console.log(summary(config, modules.size))
    })
).pipe(Command.withDescription("Check a config file and the evaluators as start-up would, without starting the gateway"))
