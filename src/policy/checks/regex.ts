/** A pattern of the operator's: a project's code name, an internal host name, an ID format. */
import { Either, Schema } from "effect"
import { type Check, type CheckType, findAll } from "../check"

export const regexCheck = (name: string, pattern: string, flags: string, label: string, maxSpan: number): Check => {
  // Always global (to find every match); other flags as configured.
  const re = new RegExp(pattern, flags.includes("g") ? flags : `${flags}g`)
  return { name, maxSpan, find: (text) => findAll(re, text, name, label) }
}

export const RegexSpec = Schema.Struct({
  type: Schema.Literal("regex"),
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  pattern: Schema.String.pipe(Schema.minLength(1)),
  flags: Schema.optional(Schema.String.pipe(Schema.pattern(/^[imsuy]*$/, { message: () => "expected regex flags among i, m, s, u, y" }))),
  /** What a finding is called in errors and redaction markers (default: the check's name). */
  label: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** The longest text one match can span, for streams (default 256 characters). */
  max_match: Schema.optional(Schema.Int.pipe(Schema.between(1, 65_536)))
})
export type RegexSpec = typeof RegexSpec.Type

export const regexType: CheckType<RegexSpec> = {
  type: "regex",
  spec: RegexSpec,
  build: (spec) => {
    try {
      return Either.right([regexCheck(spec.name ?? "regex", spec.pattern, spec.flags ?? "", spec.label ?? spec.name ?? "pattern", spec.max_match ?? 256)])
    } catch (error) {
      return Either.left(["pattern", `not a valid regular expression: ${error instanceof Error ? error.message : String(error)}`])
    }
  }
}
