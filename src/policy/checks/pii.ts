/**
 * `pii`: personal data and secrets, by kind: e-mail addresses, phone numbers (national
 * formats too, with a default country), card numbers that pass the Luhn checksum, and
 * keys and tokens. Each kind is a check of its own file; this is how the config asks for them.
 */
import { Either, Schema } from "effect"
import type { CountryCode } from "libphonenumber-js"
import type { Check, CheckType } from "../check"
import { cardCheck } from "./card"
import { emailCheck } from "./email"
import { libphonenumber } from "./libphonenumber"
import { phoneCheck } from "./phone"
import { secretCheck } from "./secret"

export const PiiKind = Schema.Literal("email", "phone", "card", "secret")
export type PiiKind = typeof PiiKind.Type

export const PiiSpec = Schema.Struct({
  type: Schema.Literal("pii"),
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  kinds: Schema.optional(Schema.Array(PiiKind).pipe(Schema.minItems(1))),
  /** ISO 3166 alpha-2: national phone formats of this country are found too. */
  default_country: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Z]{2}$/, { message: () => "expected an ISO 3166 alpha-2 country code such as US" })))
})
export type PiiSpec = typeof PiiSpec.Type

const ALL_PII: ReadonlyArray<PiiKind> = ["email", "phone", "card", "secret"]

const piiChecks = (kinds: ReadonlyArray<PiiKind>, country: CountryCode | undefined): ReadonlyArray<Check> =>
  kinds.map((kind) => {
    switch (kind) {
      case "email":
        return emailCheck()
      case "phone":
        return phoneCheck("phone", country)
      case "card":
        return cardCheck()
      case "secret":
        return secretCheck()
    }
  })

export const piiType: CheckType<PiiSpec> = {
  type: "pii",
  spec: PiiSpec,
  build: (spec) => {
    const country = spec.default_country
    if (country !== undefined && !libphonenumber().isSupportedCountry(country)) return Either.left(["default_country", `${country} is not a country libphonenumber knows`])
    return Either.right(piiChecks(spec.kinds ?? ALL_PII, country as CountryCode | undefined))
  }
}
