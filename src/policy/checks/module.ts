/**
 * `module`: a check the user wrote, loaded at start-up from a checks folder (`check_dirs`,
 * QUORUM_CHECKS_DIR) and named by a policy:
 *
 *   checks: [{ type: module, name: ticket-ids, options: { prefix: TCK } }]
 *
 * Its `find(text, options)` returns spans `{label, start, end}`. A plain function runs like
 * the built-ins (on streams as chunks arrive, holding back `maxSpan`); an `async` one waits,
 * so it runs on whole texts only (within `timeout_ms`). A module is untrusted code: what it
 * returns is checked, and a throw, a timeout or a malformed result is what `on_error` says
 * (`flag`, the default: as if found; or `pass`).
 */
import { Effect, Either, Schema } from "effect"
import { type Check, CheckFailed, type CheckModule, type CheckType, failureFindings, type Finding, OnError, settled, type WaitingCheck } from "../check"

/** What a module in a checks folder must export (as `default` or as `check`). */
export const CheckModuleShape = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "expected a name of letters, digits, '.', '_' or '-'" })),
  maxSpan: Schema.optional(Schema.Int.pipe(Schema.between(1, 1_048_576))),
  find: Schema.declare((u): u is CheckModule["find"] => typeof u === "function", { identifier: "function" })
})

export const ModuleSpec = Schema.Struct({
  type: Schema.Literal("module"),
  /** The module's `name`. */
  name: Schema.String.pipe(Schema.minLength(1)),
  /** Given to the module's `find` as its second argument. */
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  on_error: Schema.optional(OnError),
  /** How long an async module may take on one text (default 5 s). */
  timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(1, 600_000)))
})
export type ModuleSpec = typeof ModuleSpec.Type

const isAsync = (f: CheckModule["find"]): boolean => f.constructor.name === "AsyncFunction"

const isSpan = (f: unknown, length: number): f is { label: string; start: number; end: number } => {
  if (typeof f !== "object" || f === null) return false
  const { label, start, end } = f as Record<string, unknown>
  return typeof label === "string" && label !== "" && Number.isInteger(start) && Number.isInteger(end) &&
    (start as number) >= 0 && (start as number) < (end as number) && (end as number) <= length
}

/** The module's result as findings, or why it is not spans of this text. */
const findingsOf = (name: string, found: unknown, text: string): Either.Either<ReadonlyArray<Finding>, string> => {
  if (typeof (found as { then?: unknown } | null)?.then === "function") {
    // Its outcome is not waited for: a rejection left unhandled would end the worker.
    ;(found as PromiseLike<unknown>).then(undefined, () => {})
    return Either.left("find returned a promise: declare it `async find` so that policies wait for it")
  }
  if (!Array.isArray(found)) return Either.left(`find returned ${found === null ? "null" : typeof found} instead of an array of spans`)
  const bad = found.findIndex((f) => !isSpan(f, text.length))
  if (bad !== -1) return Either.left(`find's span [${bad}] is not {label, start, end} within the text`)
  return Either.right(found.map((f: { label: string; start: number; end: number }) => ({ check: name, label: f.label, start: f.start, end: f.end })))
}

/**
 * What a module threw, as far as logs may say: its kind, not its message, which may quote
 * the text (and what a policy looks for is what must not be written down).
 */
const why = (error: unknown): string => (error instanceof Error ? `threw ${error.name}` : `threw a ${typeof error}`)

/** A synchronous check has no Effect to log through: its failure is logged here, on the spot. */
const logFailure = (name: string, reason: string, detail: string | undefined, onError: OnError): void =>
  Effect.runSync(Effect.logWarning(`content check ${name} could not run (${reason}${detail === undefined ? "" : `: ${detail}`}); on_error: ${onError}`))

const syncCheck = (module: CheckModule, options: Readonly<Record<string, unknown>>, onError: OnError): Check => ({
  name: module.name,
  maxSpan: module.maxSpan ?? 256,
  find: (text) => {
    let found: Either.Either<ReadonlyArray<Finding>, string>
    let detail: string | undefined
    try {
      found = findingsOf(module.name, module.find(text, options), text)
    } catch (error) {
      found = Either.left("find failed")
      detail = why(error)
    }
    return Either.getOrElse(found, (problem) => {
      const reason = `check module ${module.name}: ${problem}`
      logFailure(module.name, reason, detail, onError)
      return failureFindings(onError, module.name, module.name, text, reason)
    })
  }
})

const waitingCheck = (module: CheckModule, options: Readonly<Record<string, unknown>>, onError: OnError, timeoutMs: number): WaitingCheck =>
  settled(module.name, module.name, onError, (text) =>
    Effect.tryPromise({
      try: async () => await module.find(text, options),
      catch: (error) => new CheckFailed({ reason: `check module ${module.name}: find failed`, detail: why(error) })
    }).pipe(
      Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new CheckFailed({ reason: `check module ${module.name}: no answer within ${timeoutMs} ms` }) }),
      Effect.flatMap((found) => Either.mapLeft(findingsOf(module.name, found, text), (reason) => new CheckFailed({ reason: `check module ${module.name}: ${reason}` })))
    ))

export const moduleType: CheckType<ModuleSpec> = {
  type: "module",
  spec: ModuleSpec,
  build: (spec, env) => {
    const module = env.modules.get(spec.name)
    if (module === undefined) {
      const known = [...env.modules.keys()]
      return Either.left(["name", `no check module is named "${spec.name}" (${known.length === 0 ? "no module was loaded: set check_dirs or QUORUM_CHECKS_DIR" : `loaded: ${known.join(", ")}`})`])
    }
    const options = spec.options ?? {}
    const onError = spec.on_error ?? "flag"
    return Either.right(isAsync(module.find)
      ? { checks: [], waiting: [waitingCheck(module, options, onError, spec.timeout_ms ?? 5_000)] }
      : [syncCheck(module, options, onError)])
  }
}
