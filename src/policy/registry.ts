/** The types of check a policy may use, by the `type:` the config gives: one line each. */
import { Either } from "effect"
import type { BuildEnv, Built } from "./check"
import { blocklistType } from "./checks/blocklist"
import { ibanType } from "./checks/iban"
import { llmType } from "./checks/llm"
import { moduleType } from "./checks/module"
import { piiType } from "./checks/pii"
import { regexType } from "./checks/regex"

export const CHECK_TYPES = [
  piiType,
  regexType,
  blocklistType,
  ibanType,
  llmType,
  moduleType
] as const

/** A check as the config writes it: one of the types' own shapes (spec.ts's CheckSpec). */
type Spec = Parameters<(typeof CHECK_TYPES)[number]["build"]>[0]
type Building = ReturnType<(typeof CHECK_TYPES)[number]["build"]>

/** The checks a spec describes, or why it cannot run (a field path and the problem). */
export const checksOf = (spec: Spec, env: BuildEnv): Either.Either<Built, readonly [string, string]> => {
  const type = CHECK_TYPES.find((t) => t.type === spec.type)
  if (type === undefined) return Either.left(["type", `no check of type ${spec.type}`])
  // The type tag matched, so the spec is this type's own shape.
  const built = (type.build as (spec: Spec, env: BuildEnv) => Building)(spec, env)
  // Most types build synchronous checks only, as a plain list.
  return Either.map(built, (checks) => (Array.isArray(checks) ? { checks, waiting: [] } : checks as Built))
}
