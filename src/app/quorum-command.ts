/**
 * `npx quorum <command>`: operating a gateway from a terminal. `check` reads the config as
 * start-up would; `keys`, `spend` and `ledger` talk to the running gateway's admin API.
 * Failures print one line saying what to do and exit 1; bad usage prints help and exits 1.
 */
import { Command } from "@effect/cli"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { checkCommand } from "./commands/check"
import { keysCommand } from "./commands/keys"
import { ledgerCommand } from "./commands/ledger"
import { spendCommand } from "./commands/spend"

const quorum = Command.make("quorum").pipe(
  Command.withDescription("Operate a Quorum gateway: check its config, manage virtual keys, read spend and the ledger"),
  Command.withSubcommands([checkCommand, keysCommand, spendCommand, ledgerCommand])
)

const run = Command.run(quorum, { name: "quorum", version: "0.1.0" })

export const main = (argv: ReadonlyArray<string>): void =>
  run(argv).pipe(
    Effect.catchTag("CommandFailed", (error) => Console.error(`quorum: ${error.message}`).pipe(Effect.zipRight(Effect.sync(() => (process.exitCode = 1))))),
    Effect.provide(Layer.mergeAll(NodeContext.layer, NodeHttpClient.layerUndici)),
    NodeRuntime.runMain({ disableErrorReporting: false })
  )
