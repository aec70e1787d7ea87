/**
 * A content check: finds spans of text that a policy cares about (an e-mail address, a card
 * number, a key, a word on a blocklist). Checks only find; what happens to a finding
 * (block, redact, route) is the policy's action (policy.ts). A type of check is one file
 * under checks/ (its config shape and how it is built) and one line in registry.ts.
 *
 * Most checks are synchronous and run as chunks of a stream arrive. A check that has to
 * wait (a model's verdict, a user module's promise) is a `WaitingCheck`: it runs on whole
 * texts only, through `CheckContext`, which the layers above implement (the router), since
 * policy/ sits below them.
 */
import { Effect, type Either, Schema } from "effect"
import type { Message } from "../protocol/chat-request"

/** One span a check found: [start, end) in the text it was given. */
export interface Finding {
  /** The check that found it (its configured name or its type). */
  readonly check: string
  /** What was found, for messages and redaction markers: `email`, `card`, `secret`, … */
  readonly label: string
  readonly start: number
  readonly end: number
  /** Set when the check could not run and counts as having found (`on_error: flag`): why. */
  readonly unchecked?: string
}

export interface Check {
  readonly name: string
  /**
   * The longest text one finding can span: a stream is scanned with this much held back
   * from the previous chunks, so a finding split across chunks is still found whole.
   */
  readonly maxSpan: number
  find(text: string): ReadonlyArray<Finding>
}

/** A check could not give its answer (its model failed, its reply was malformed, its module threw). */
export class CheckFailed extends Schema.TaggedError<CheckFailed>()("CheckFailed", {
  /** Why, naming the check and never the text: it may reach the client. */
  reason: Schema.String,
  /** More, for the log only (never the text either). */
  detail: Schema.optional(Schema.String)
}) {}

/** What a waiting check may use from the layers above. */
export interface CheckContext {
  /**
   * One answer from a model or route of the config, through the gateway's router (retries,
   * fallbacks, health), metered into the request the check runs for.
   */
  readonly ask: (model: string, messages: ReadonlyArray<Message>) => Effect.Effect<string, CheckFailed>
}

/** A check that waits for its answer: run on whole texts, never per chunk of a stream. */
export interface WaitingCheck {
  readonly name: string
  /** Never fails: a failure is already what `on_error` makes of it. */
  readonly find: (text: string, context: CheckContext) => Effect.Effect<ReadonlyArray<Finding>>
}

/**
 * What a check that could not run counts as: `flag` (the default, fail closed) as a finding
 * over the whole text, so its policy acts (blocks, routes, redacts it all); `pass` as
 * nothing found (fail open, logged).
 */
export const OnError = Schema.Literal("flag", "pass")
export type OnError = typeof OnError.Type

export const failureFindings = (onError: OnError, check: string, label: string, text: string, reason: string): ReadonlyArray<Finding> =>
  onError === "pass" ? [] : [{ check, label, start: 0, end: text.length, unchecked: reason }]

/** A check whose failures become findings (or none) as `onError` says. */
export const settled = (
  name: string,
  label: string,
  onError: OnError,
  find: (text: string, context: CheckContext) => Effect.Effect<ReadonlyArray<Finding>, CheckFailed>
): WaitingCheck => ({
  name,
  find: (text, context) =>
    Effect.catchTag(find(text, context), "CheckFailed", (failed) =>
      Effect.as(
        Effect.logWarning(`content check ${name} could not run (${failed.reason}${failed.detail === undefined ? "" : `: ${failed.detail}`}); on_error: ${onError}`),
        failureFindings(onError, name, label, text, failed.reason)
      ))
})

/** What the config has, for building checks that refer to it. */
export interface BuildEnv {
  /** A model or route id of the config. */
  readonly defined: (name: string) => boolean
  /** Check modules loaded from the checks folders, by name. */
  readonly modules: ReadonlyMap<string, CheckModule>
}

/**
 * A check a user writes as a module (see README, Content policies): `find` returns the
 * spans it found, synchronously or as a promise; `options` are the policy's for it.
 */
export interface CheckModule {
  readonly name: string
  /** The longest span one finding can have (streams hold this much back; default 256). */
  readonly maxSpan?: number
  readonly find: (text: string, options: Readonly<Record<string, unknown>>) => ModuleFindings | Promise<ModuleFindings>
}

export type ModuleFindings = ReadonlyArray<{ readonly label: string; readonly start: number; readonly end: number }>

/** The checks a configured one runs: synchronous ones, and ones that wait. */
export interface Built {
  readonly checks: ReadonlyArray<Check>
  readonly waiting: ReadonlyArray<WaitingCheck>
}

/** A type of check as the config names it (`type:`): its settings' shape, and the checks it builds. */
export interface CheckType<S extends { readonly type: string }> {
  readonly type: S["type"]
  readonly spec: Schema.Schema<S>
  /** The checks a configured one runs, or the field that is wrong and why. */
  readonly build: (spec: S, env: BuildEnv) => Either.Either<ReadonlyArray<Check> | Built, readonly [string, string]>
}

/** Every match of a global regex as a finding (zero-length matches skipped). */
export const findAll = (re: RegExp, text: string, check: string, label: string, accept: (match: RegExpExecArray) => boolean = () => true): ReadonlyArray<Finding> => {
  const found: Array<Finding> = []
  re.lastIndex = 0
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++
      continue
    }
    if (accept(m)) found.push({ check, label, start: m.index, end: m.index + m[0].length })
  }
  return found
}

/**
 * The findings as disjoint spans, in order: where two overlap, the one that starts first
 * (then the longer) stands for both, so a redaction never cuts inside another.
 */
export const disjoint = (findings: ReadonlyArray<Finding>): ReadonlyArray<Finding> => {
  const sorted = [...findings].sort((a, b) => a.start - b.start || b.end - a.end)
  const kept: Array<Finding> = []
  for (const f of sorted) {
    const last = kept.at(-1)
    if (last !== undefined && f.start < last.end) continue
    kept.push(f)
  }
  return kept
}
