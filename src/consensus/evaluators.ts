import { Effect } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import type { DeclaredEvaluatorFile } from "../config/schema"
import { Router } from "../routing/router"
import { declaredEvaluator } from "./declared"
import type { Evaluator } from "./evaluator"
import { BUILTIN_EVALUATORS, EvaluatorLoadError, loadEvaluators } from "./registry"

/** A declared evaluator may not take the name of a module's. */
export const checkDeclaredNames = (registry: ReadonlyMap<string, Evaluator>, declared: ReadonlyArray<DeclaredEvaluatorFile>) =>
  Effect.forEach(declared, (d, i) =>
    registry.has(d.name)
      ? Effect.fail(new EvaluatorLoadError({ message: `consensus.evaluators[${i}]: an evaluator named "${d.name}" is already registered from a module` }))
      : Effect.void)

/** The evaluators registered at start-up: modules (built-ins and configured folders), then those declared in config. */
export class Evaluators extends Effect.Service<Evaluators>()("quorum/Evaluators", {
  effect: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const router = yield* Router
    const modules = yield* loadEvaluators([BUILTIN_EVALUATORS, ...config.consensus.evaluatorDirs])
    yield* checkDeclaredNames(modules, config.consensus.declaredEvaluators)
    const registry = new Map(modules)
    for (const declared of config.consensus.declaredEvaluators) registry.set(declared.name, declaredEvaluator(declared, router))
    return { registry: registry as ReadonlyMap<string, Evaluator> }
  })
}) {}
