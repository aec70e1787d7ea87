import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { configArgument, start } from "./start"

start(configArgument(process.argv.slice(2))).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
