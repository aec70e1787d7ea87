/**
 * A content policy at work: its checks run on a text, and its action says what a finding
 * means: block the request (or the answer), redact the findings, or route the request to
 * models allowed to see such content (prompts with personal data only to self-hosted
 * models: "data never leaves"). Errors and logs name the policy and what was found
 * (`email`, `card`), never the text itself.
 */
import { Effect, Either } from "effect"
import { type BuildEnv, type Check, type CheckContext, CheckFailed, disjoint, type Finding, type WaitingCheck } from "./check"
import { checksOf } from "./registry"
import type { PolicySpec } from "./spec"

export interface Policy {
  readonly name: string
  readonly on: "input" | "output" | "both"
  readonly action: "block" | "redact" | "route"
  readonly routeTo: ReadonlyArray<string> | undefined
  readonly checks: ReadonlyArray<Check>
  /** Checks that wait for their answer (an `llm` check, an async module): run on whole texts only. */
  readonly waiting: ReadonlyArray<WaitingCheck>
  /** What its waiting checks ask models through: the gateway's router, once bound (`withContext`). */
  readonly context: CheckContext
  /** The longest span any of its synchronous checks can find: what a stream holds back. */
  readonly maxSpan: number
  /** The model or route names whose requests it applies to; undefined: every request. */
  readonly models: ReadonlySet<string> | undefined
  /** false: only for the keys it is attached to. */
  readonly defaultOn: boolean
}

/** The policies a request for `model` (the name it asked for) is under by itself, whoever calls. */
export const policiesFor = (policies: ReadonlyArray<Policy>, model: string): ReadonlyArray<Policy> =>
  policies.every((p) => p.models === undefined && p.defaultOn)
    ? policies
    : policies.filter((p) => p.defaultOn && (p.models === undefined || p.models.has(model)))

/**
 * The policies a request is under, each once and in the config's order: the gateway's,
 * those attached to the model or route asked for, and those a caller's key names
 * (whatever their `models:` and `default_on`, since the key is what they were attached to).
 * A name the config does not define is returned as `missing`.
 */
export const policiesOf = (
  policies: ReadonlyArray<Policy>,
  model: string,
  keyPolicies: ReadonlyArray<string>
): { readonly policies: ReadonlyArray<Policy>; readonly missing?: string } => {
  const general = policiesFor(policies, model)
  if (keyPolicies.length === 0) return { policies: general }
  const missing = keyPolicies.find((name) => !policies.some((p) => p.name === name))
  if (missing !== undefined) return { policies: general, missing }
  const named = new Set([...general.map((p) => p.name), ...keyPolicies])
  return { policies: policies.filter((p) => named.has(p.name)) }
}

/** Until a policy is bound to the gateway's router, a check that asks a model cannot run. */
const UNBOUND: CheckContext = {
  ask: (model) => Effect.fail(new CheckFailed({ reason: `no model can be asked here (${model}): the policy is not bound to a router` }))
}

const NOTHING_DEFINED: BuildEnv = { defined: () => false, modules: new Map() }

/** The policies with their waiting checks asking models through `context` (the others unchanged). */
export const withContext = (policies: ReadonlyArray<Policy>, context: CheckContext): ReadonlyArray<Policy> =>
  policies.map((p) => (p.waiting.length === 0 ? p : { ...p, context }))

/** Whether any of the policies has a check that waits (so the policies must run as an Effect). */
export const waits = (policies: ReadonlyArray<Policy>): boolean => policies.some((p) => p.waiting.length > 0)

/** The policy a spec describes, or the field that is wrong and why; `env` is what the config has (models, check modules). */
export const compilePolicy = (spec: PolicySpec, env: BuildEnv = NOTHING_DEFINED): Either.Either<Policy, readonly [string, string]> => {
  if (spec.action === "route" && spec.route_to === undefined) return Either.left(["route_to", "action route needs the models the request may go to"])
  if (spec.action !== "route" && spec.route_to !== undefined) return Either.left(["route_to", `only action route takes route_to (this policy's action is ${spec.action})`])
  if (spec.default_on === false && spec.models !== undefined) return Either.left(["models", "a policy with default_on: false applies only to the keys it is attached to, whatever the model: leave out models"])
  if (spec.action === "route" && spec.on !== undefined && spec.on !== "input") return Either.left(["on", "action route applies to the request (on: input): an answer cannot be routed once given"])
  const checks: Array<Check> = []
  const waiting: Array<WaitingCheck> = []
  for (const [i, c] of spec.checks.entries()) {
    const compiled = checksOf(c, env)
    if (Either.isLeft(compiled)) return Either.left([`checks[${i}].${compiled.left[0]}`, compiled.left[1]])
    checks.push(...compiled.right.checks)
    waiting.push(...compiled.right.waiting)
  }
  return Either.right({
    name: spec.name,
    on: spec.on ?? "input",
    action: spec.action,
    routeTo: spec.route_to,
    checks,
    waiting,
    context: UNBOUND,
    maxSpan: Math.max(0, ...checks.map((c) => c.maxSpan)),
    models: spec.models === undefined ? undefined : new Set(spec.models),
    defaultOn: spec.default_on ?? true
  })
}

export const appliesTo = (policy: Policy, stage: "input" | "output"): boolean => policy.on === stage || policy.on === "both"

/** Every finding of the policy's synchronous checks in the text, as disjoint spans in order. */
export const inspect = (policy: Policy, text: string): ReadonlyArray<Finding> => disjoint(policy.checks.flatMap((c) => c.find(text)))

/** Every finding of all the policy's checks, the waiting ones asked together, as disjoint spans in order. */
export const inspectAll = (policy: Policy, text: string): Effect.Effect<ReadonlyArray<Finding>> => {
  const found = policy.checks.flatMap((c) => c.find(text))
  if (policy.waiting.length === 0) return Effect.succeed(disjoint(found))
  return Effect.map(
    Effect.forEach(policy.waiting, (c) => c.find(text, policy.context), { concurrency: "unbounded" }),
    (waited) => disjoint([...found, ...waited.flat()])
  )
}

/** The text with each finding replaced by a marker that says what it was. */
export const redact = (text: string, findings: ReadonlyArray<Finding>): string => {
  let out = ""
  let at = 0
  for (const f of disjoint(findings)) {
    out += `${text.slice(at, f.start)}[REDACTED:${f.label}]`
    at = f.end
  }
  return out + text.slice(at)
}

/** What was found, for an error message: labels, each once, never the text (and why a check that could not run counts). */
export const describeFindings = (findings: ReadonlyArray<Finding>): string =>
  [...new Set(findings.map((f) => (f.unchecked === undefined ? f.label : `${f.label} (unverified: ${f.unchecked})`)))].join(", ")
