import { Effect } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { BUILTIN_EVALUATORS, loadEvaluators } from "./registry"

/** The evaluators registered at start-up: the built-ins and the configured folders. */
export class Evaluators extends Effect.Service<Evaluators>()("quorum/Evaluators", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const registry = yield* loadEvaluators([BUILTIN_EVALUATORS, ...config.consensus.evaluatorDirs])
    return { registry }
  })
}) {}
