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
 */
import { Schema } from "effect"

const NonEmpty = Schema.String.pipe(Schema.minLength(1))

export const PiiKind = Schema.Literal("email", "phone", "card", "secret")
export type PiiKind = typeof PiiKind.Type

export const CheckSpec = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("pii"),
    name: Schema.optional(NonEmpty),
    kinds: Schema.optional(Schema.Array(PiiKind).pipe(Schema.minItems(1))),
    /** ISO 3166 alpha-2: national phone formats of this country are found too. */
    default_country: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Z]{2}$/, { message: () => "expected an ISO 3166 alpha-2 country code such as US" })))
  }),
  Schema.Struct({
    type: Schema.Literal("regex"),
    name: Schema.optional(NonEmpty),
    pattern: NonEmpty,
    flags: Schema.optional(Schema.String.pipe(Schema.pattern(/^[imsuy]*$/, { message: () => "expected regex flags among i, m, s, u, y" }))),
    /** What a finding is called in errors and redaction markers (default: the check's name). */
    label: Schema.optional(NonEmpty),
    /** The longest text one match can span, for streams (default 256 characters). */
    max_match: Schema.optional(Schema.Int.pipe(Schema.between(1, 65_536)))
  }),
  Schema.Struct({
    type: Schema.Literal("blocklist"),
    name: Schema.optional(NonEmpty),
    words: Schema.Array(NonEmpty).pipe(Schema.minItems(1))
  })
)
export type CheckSpec = typeof CheckSpec.Type

export const PolicySpec = Schema.Struct({
  name: Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "expected letters, digits, '.', '_' or '-'" })),
  on: Schema.optional(Schema.Literal("input", "output", "both")),
  checks: Schema.Array(CheckSpec).pipe(Schema.minItems(1)),
  action: Schema.Literal("block", "redact", "route"),
  route_to: Schema.optional(Schema.Array(NonEmpty).pipe(Schema.minItems(1))),
  /** Only requests for these models or routes (the name asked for); absent: every request of the gateway. */
  models: Schema.optional(Schema.Array(NonEmpty).pipe(Schema.minItems(1)))
})
export type PolicySpec = typeof PolicySpec.Type
