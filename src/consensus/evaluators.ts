import { Effect } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { Router } from "../routing/router"
import { declaredEvaluator } from "./declared"
import type { Evaluator } from "./evaluator"
import { checkDeclaredNames, loadEvaluators } from "./registry"

/**
 * The evaluators registered at start-up: the built-ins, the modules of the config's
 * folders (start-up puts the user's evaluators/ folder first among them), then those
 * declared in config.
 */
export class Evaluators extends Effect.Service<Evaluators>()("quorum/Evaluators", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* Router
    const modules = yield* loadEvaluators(config.consensus.evaluatorDirs)
    yield* checkDeclaredNames(modules, config.consensus.declaredEvaluators)
    const registry = new Map(modules)
    for (const declared of config.consensus.declaredEvaluators) registry.set(declared.name, declaredEvaluator(declared, router))
    return { registry: registry as ReadonlyMap<string, Evaluator> }
  })
}) {}
