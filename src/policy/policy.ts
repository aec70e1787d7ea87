/**
 * A content policy at work: its checks run on a text, and its action says what a finding
 * means: block the request (or the answer), redact the findings, or route the request to
 * models allowed to see such content (prompts with personal data only to self-hosted
 * models: "data never leaves"). Errors and logs name the policy and what was found
 * (`email`, `card`), never the text itself.
 */
import { Either } from "effect"
import { type Check, disjoint, type Finding } from "./check"
import { checksOf } from "./registry"
import type { PolicySpec } from "./spec"

export interface Policy {
  readonly name: string
  readonly on: "input" | "output" | "both"
  readonly action: "block" | "redact" | "route"
  readonly routeTo: ReadonlyArray<string> | undefined
  readonly checks: ReadonlyArray<Check>
  /** The longest span any of its checks can find: what a stream holds back. */
  readonly maxSpan: number
  /** The model or route names whose requests it applies to; undefined: every request. */
  readonly models: ReadonlySet<string> | undefined
}

/** The policies a request for `model` (the name it asked for) is under. */
export const policiesFor = (policies: ReadonlyArray<Policy>, model: string): ReadonlyArray<Policy> =>
  policies.every((p) => p.models === undefined) ? policies : policies.filter((p) => p.models === undefined || p.models.has(model))

/** The policy a spec describes, or the field that is wrong and why. */
export const compilePolicy = (spec: PolicySpec): Either.Either<Policy, readonly [string, string]> => {
  if (spec.action === "route" && spec.route_to === undefined) return Either.left(["route_to", "action route needs the models the request may go to"])
  if (spec.action !== "route" && spec.route_to !== undefined) return Either.left(["route_to", `only action route takes route_to (this policy's action is ${spec.action})`])
  if (spec.action === "route" && spec.on !== undefined && spec.on !== "input") return Either.left(["on", "action route applies to the request (on: input): an answer cannot be routed once given"])
  const checks: Array<Check> = []
  for (const [i, c] of spec.checks.entries()) {
    const compiled = checksOf(c)
    if (Either.isLeft(compiled)) return Either.left([`checks[${i}].${compiled.left[0]}`, compiled.left[1]])
    checks.push(...compiled.right)
  }
  return Either.right({
    name: spec.name,
    on: spec.on ?? "input",
    action: spec.action,
    routeTo: spec.route_to,
    checks,
    maxSpan: Math.max(...checks.map((c) => c.maxSpan)),
    models: spec.models === undefined ? undefined : new Set(spec.models)
  })
}

export const appliesTo = (policy: Policy, stage: "input" | "output"): boolean => policy.on === stage || policy.on === "both"

/** Every finding of the policy's checks in the text, as disjoint spans in order. */
export const inspect = (policy: Policy, text: string): ReadonlyArray<Finding> => disjoint(policy.checks.flatMap((c) => c.find(text)))

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

/** What was found, for an error message: labels, each once, never the text. */
export const describeFindings = (findings: ReadonlyArray<Finding>): string => [...new Set(findings.map((f) => f.label))].join(", ")
