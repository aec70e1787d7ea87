/**
 * Evaluators: the built-ins, a fixed set compiled into the gateway, then every module of
 * the folders it is given (the user's evaluators/ folder, folders named in config). A
 * module that exports an Evaluator, as `default` or as `evaluator`, is registered under
 * its name; one that does not, or a name used twice, stops start-up with the file's name.
 *
 * The built-ins are named here rather than found by scanning, so that what a user drops
 * into evaluators/ never changes which built-ins load, and tests can load them alone.
 * Their source stays in the package's evaluators/ folder, as the example to copy; a scan
 * of that folder skips their files.
 *
 * Finding and importing the modules (TypeScript through tsx) is config/modules.ts's,
 * shared with content checks' modules.
 */
import { Effect, Schema } from "effect"
import { join, resolve } from "node:path"
import answerMatch from "../../evaluators/answer-match"
import consistency from "../../evaluators/consistency"
import jsonSchema from "../../evaluators/json-schema"
import type { DeclaredEvaluatorFile } from "../config/schema"
import { PACKAGE_ROOT } from "../domain/package-root"
import { importExport, type ModuleLoadError, modulesIn } from "../config/modules"
import { firstIssue } from "../config/paths"
import { type Evaluator, EvaluatorShape } from "./evaluator"

export class EvaluatorLoadError extends Schema.TaggedError<EvaluatorLoadError>()("EvaluatorLoadError", {
  message: Schema.String
}) {}

const ROOT = PACKAGE_ROOT

/** The package's evaluators/ folder: where users put theirs (the default of QUORUM_EVALUATORS_DIR). */
export const PACKAGE_EVALUATORS = join(ROOT, "evaluators")

/** The built-ins, with the files they come from (relative to the package). */
const BUILTINS: ReadonlyArray<readonly [Evaluator, string]> = [
  [answerMatch, "evaluators/answer-match.ts"],
  [consistency, "evaluators/consistency.ts"],
  [jsonSchema, "evaluators/json-schema.ts"]
]

/** The built-ins' names: always registered, whatever the folders hold. */
export const BUILTIN_NAMES: ReadonlyArray<string> = BUILTINS.map(([evaluator]) => evaluator.name)

const builtinFiles = new Set(BUILTINS.map(([, file]) => join(ROOT, file)))

const decode = Schema.decodeUnknownEither(EvaluatorShape)

const asEvaluatorError = (error: ModuleLoadError) => new EvaluatorLoadError({ message: error.message })

/** The evaluator modules of a folder, in name order, the built-ins' own files left out. */
const evaluatorModulesIn = (dir: string) =>
  modulesIn(dir, "evaluators").pipe(Effect.map((files) => files.filter((file) => !builtinFiles.has(resolve(file)))), Effect.mapError(asEvaluatorError))

const loadModule = (file: string) =>
  Effect.gen(function*() {
    const exported = yield* Effect.mapError(importExport(file, "evaluator"), asEvaluatorError)
    const decoded = decode(exported)
    if (decoded._tag === "Left") {
      const issue = firstIssue(decoded.left)
      return yield* new EvaluatorLoadError({
        message: `${file}: the module must export an evaluator ({ name, description, evaluate }) as default or as \`evaluator\`; ${issue.path === "" ? "" : `${issue.path}: `}${issue.message}`
      })
    }
    return exported as Evaluator
  })

/** The built-ins, then the modules of `dirs` in order. */
export const loadEvaluators = (dirs: ReadonlyArray<string>): Effect.Effect<ReadonlyMap<string, Evaluator>, EvaluatorLoadError> =>
  Effect.gen(function*() {
    const registry = new Map<string, Evaluator>()
    const origin = new Map<string, string>()
    for (const [evaluator, file] of BUILTINS) {
      registry.set(evaluator.name, evaluator)
      origin.set(evaluator.name, `the built-in ${file}`)
    }
    for (const dir of dirs) {
      for (const file of yield* evaluatorModulesIn(dir)) {
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

/** A declared evaluator may not take the name of a module's. */
export const checkDeclaredNames = (registry: ReadonlyMap<string, Evaluator>, declared: ReadonlyArray<DeclaredEvaluatorFile>) =>
  Effect.forEach(declared, (d, i) =>
    registry.has(d.name)
      ? Effect.fail(new EvaluatorLoadError({ message: `consensus.evaluators[${i}]: an evaluator named "${d.name}" is already registered from a module` }))
      : Effect.void)
