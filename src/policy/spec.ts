/**
 * Content policies as the config writes them (`policies:`), attached to the whole gateway,
 * a route or a virtual key:
 *
 *   - name: no-pii-out
 *     on: input            # input (the request), output (the answer) or both
 *     checks:
 *       - { type: pii, kinds: [email, phone, card, secret], default_country: US }
 *       - { type: regex, pattern: "PRJ-[0-9]{4}", label: project id }
 *       - { type: blocklist, words: [bluebird] }
 *     action: block        # block (400 content_policy_violation), redact, or route
 *     route_to: [local]    # route: the request may only go to these models
 *     models: [support]    # only requests for these routes or models (default: all)
 *     default_on: false    # only for the virtual keys it is attached to (default: true)
 */
import { Schema } from "effect"
import { CHECK_TYPES } from "./registry"

const NonEmpty = Schema.String.pipe(Schema.minLength(1))

/** A check as the config writes it: one of the registry's types, told apart by `type`. */
export const CheckSpec = Schema.Union(...CHECK_TYPES.map((type) => type.spec))
export type CheckSpec = typeof CheckSpec.Type

export const PolicySpec = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "expected letters, digits, '.', '_' or '-'" })),
  on: Schema.optional(Schema.Literal("input", "output", "both")),
  checks: Schema.Array(CheckSpec).pipe(Schema.minItems(1)),
  action: Schema.Literal("block", "redact", "route"),
  route_to: Schema.optional(Schema.Array(NonEmpty).pipe(Schema.minItems(1))),
  /** Only requests for these models or routes (the name asked for); absent: every request of the gateway. */
  models: Schema.optional(Schema.Array(NonEmpty).pipe(Schema.minItems(1))),
  /** false: the policy applies only to the virtual keys that name it (`policies` of a key), never by itself. */
  default_on: Schema.optional(Schema.Boolean)
})
export type PolicySpec = typeof PolicySpec.Type
