/**
 * Evaluators, loaded at start-up from the top-level evaluators/ folder (the built-ins
 * live there too) and from any folder named in config: every module that exports an
 * Evaluator, as `default` or as `evaluator`, is registered under its name. A module
 * that does not, or a name used twice, stops start-up with the file's name.
 */
import { Effect, Schema } from "effect"
import { readdir } from "node:fs/promises"
import { join, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { firstIssue } from "../config/paths"
import { type Evaluator, EvaluatorShape } from "./evaluator"

export class EvaluatorLoadError extends Schema.TaggedError<EvaluatorLoadError>()("EvaluatorLoadError", {
  message: Schema.String
}) {}

/** The top-level evaluators/ folder of this package, wherever the process was started. */
export const BUILTIN_EVALUATORS = fileURLToPath(new URL("../../evaluators", import.meta.url))

const MODULE = /\.(ts|mts|js|mjs)$/
const NOT_A_MODULE = /\.(d|test|spec)\.[mc]?[jt]s$/

const decode = Schema.decodeUnknownEither(EvaluatorShape)

/** The evaluator modules of a folder, in name order. */
const modulesIn = (dir: string) =>
  Effect.tryPromise({
    try: () => readdir(dir),
    catch: (error) => new EvaluatorLoadError({ message: `${dir}: cannot read the evaluators folder (${String(error)})` })
  }).pipe(Effect.map((names) => names.filter((n) => MODULE.test(n) && !NOT_A_MODULE.test(n)).sort().map((n) => join(dir, n))))

const loadModule = (file: string) =>
  Effect.gen(function*() {
    const module = yield* Effect.tryPromise({
      try: () => import(pathToFileURL(resolve(file)).href) as Promise<Record<string, unknown>>,
      catch: (error) => new EvaluatorLoadError({ message: `${file}: cannot load the module (${error instanceof Error ? error.message : String(error)})` })
    })
    const exported = module.default ?? module.evaluator
    const decoded = decode(exported)
    if (decoded._tag === "Left") {
      const issue = firstIssue(decoded.left)
      return yield* new EvaluatorLoadError({
        message: `${file}: the module must export an evaluator ({ name, description, evaluate }) as default or as \`evaluator\`; ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`
      })
    }
    return exported as Evaluator
  })

export const loadEvaluators = (dirs: ReadonlyArray<string>): Effect.Effect<ReadonlyMap<string, Evaluator>, EvaluatorLoadError> =>
  Effect.gen(function*() {
    const registry = new Map<string, Evaluator>()
    const origin = new Map<string, string>()
    for (const dir of dirs) {
      for (const file of yield* modulesIn(dir)) {
        const evaluator = yield* loadModule(file)
        const earlier = origin.get(evaluator.name)
        if (earlier !== undefined) {
          return yield* new EvaluatorLoadError({ message: `${file}: an evaluator named "${evaluator.name}" is already registered from ${earlier}` })
        }
        registry.set(evaluator.name, evaluator)
        origin.set(evaluator.name, file)
      }
    }
    return registry
  })
