/**
 * Routes as the config writes them beyond their targets: a conditional route's rules with the checks made at load (each rule's `to` known,
 * no route handing requests back to itself or around a circle). The conditional strategy
 * (routing/strategies/conditional.ts) applies them; here, so that the config reads no
 * routing code.
 */
import { Either, Schema } from "effect"

const Range = Schema.Struct({
  gt: Schema.optional(Schema.Number),
  gte: Schema.optional(Schema.Number),
  lt: Schema.optional(Schema.Number),
  lte: Schema.optional(Schema.Number)
})

export const Conditions = Schema.Struct({
  /** The model name the client asked for (this route's name, or an alias routed here). */
  model: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
  prompt_tokens: Schema.optional(Range),
  tools: Schema.optional(Schema.Boolean),
  images: Schema.optional(Schema.Boolean),
  stream: Schema.optional(Schema.Boolean),
  response_format: Schema.optional(Schema.Literal("text", "json_object", "json_schema")),
  /** Every pair given must be in the request's `metadata`. */
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** The virtual key carries at least one of these tags. */
  key_tags: Schema.optional(Schema.Array(Schema.String).pipe(Schema.minItems(1)))
})
export type Conditions = typeof Conditions.Type

export const RuleSpec = Schema.Struct({
  when: Schema.optional(Conditions),
  to: Schema.String.pipe(Schema.minLength(1))
})
export type RuleSpec = typeof RuleSpec.Type

/**
 * The rules checked against what the config defines: each `to` a deployment or a route,
 * never this route itself, and a default for requests no rule matches unless the route
 * has targets of its own. Errors name the rule.
 */
export const checkRules = (
  routeId: string,
  rules: ReadonlyArray<RuleSpec>,
  hasTargets: boolean,
  known: (name: string) => boolean
): Either.Either<ReadonlyArray<RuleSpec>, readonly [string, string]> => {
  for (const [i, rule] of rules.entries()) {
    if (rule.to === routeId) return Either.left([`rules[${i}].to`, `a rule cannot hand the request back to its own route \`${routeId}\``])
    if (!known(rule.to)) return Either.left([`rules[${i}].to`, `\`${rule.to}\` is neither a model nor a route of this config`])
    const when = rule.when
    if (when?.prompt_tokens !== undefined && Object.keys(when.prompt_tokens).length === 0) {
      return Either.left([`rules[${i}].when.prompt_tokens`, "give at least one of gt, gte, lt, lte"])
    }
  }
  if (!hasTargets && !rules.some((r) => r.when === undefined)) return Either.left(["rules", "add a last rule without `when` (the default), or targets for requests no rule matches"])
  return Either.right(rules)
}

/**
 * Routes that hand requests to each other in a circle (a → b → a), which no request could
 * leave: the first such circle found, as the names along it.
 */
export const findCycle = (handsTo: ReadonlyMap<string, ReadonlyArray<string>>): ReadonlyArray<string> | undefined => {
  const state = new Map<string, "open" | "done">()
  const path: Array<string> = []
  const visit = (node: string): ReadonlyArray<string> | undefined => {
    if (state.get(node) === "done") return undefined
    if (state.get(node) === "open") return [...path.slice(path.indexOf(node)), node]
    state.set(node, "open")
    path.push(node)
    for (const next of handsTo.get(node) ?? []) {
      const cycle = visit(next)
      if (cycle !== undefined) return cycle
    }
    path.pop()
    state.set(node, "done")
    return undefined
  }
  for (const node of handsTo.keys()) {
    const cycle = visit(node)
    if (cycle !== undefined) return cycle
  }
  return undefined
}
