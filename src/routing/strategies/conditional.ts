/**
 * `conditional`: rules on the request, tried in order, each handing the request to a
 * deployment or another route; the first that matches decides. A rule without `when`
 * matches every request (the default); with no rule matching, the route's own targets are
 * tried in order.
 *
 *   strategy: conditional
 *   rules:
 *     - when: { prompt_tokens: { gt: 32000 } }     to: long-context
 *     - when: { images: true }                     to: vision
 *     - when: { metadata: { tier: premium } }      to: premium-route
 *     - when: { key_tags: [internal] }             to: local
 *     - to: cheap
 */
import type { Conditions, RuleSpec } from "../../config/route-rules"
import type { RequestFacts } from "../facts"
import type { Strategy } from "../strategy"

const inRange = (x: number, r: NonNullable<Conditions["prompt_tokens"]>): boolean =>
  (r.gt === undefined || x > r.gt) && (r.gte === undefined || x >= r.gte) && (r.lt === undefined || x < r.lt) && (r.lte === undefined || x <= r.lte)

export const matches = (when: Conditions | undefined, facts: RequestFacts): boolean => {
  if (when === undefined) return true
  const models = when.model === undefined ? undefined : typeof when.model === "string" ? [when.model] : when.model
  return (models === undefined || models.includes(facts.model)) &&
    (when.prompt_tokens === undefined || inRange(facts.promptTokens, when.prompt_tokens)) &&
    (when.tools === undefined || when.tools === facts.tools) &&
    (when.images === undefined || when.images === facts.images) &&
    (when.stream === undefined || when.stream === facts.stream) &&
    (when.response_format === undefined || when.response_format === facts.responseFormat) &&
    (when.metadata === undefined || Object.entries(when.metadata).every(([k, v]) => facts.metadata[k] === v)) &&
    (when.key_tags === undefined || when.key_tags.some((t) => facts.keyTags.includes(t)))
}

export const conditional = (rules: ReadonlyArray<RuleSpec>): Strategy => ({
  order: ({ targets, facts, resolve }) => {
    const rule = rules.find((r) => matches(r.when, facts))
    return rule === undefined ? targets.map((t) => t.deployment) : resolve(rule.to)
  }
})
