/** From a check as configured to the check that runs: one line per type of check. */
import type { CountryCode } from "libphonenumber-js"
import { libphonenumber } from "./checks/libphonenumber"
import { Either } from "effect"
import type { Check } from "./check"
import { blocklistCheck } from "./checks/blocklist"
import { cardCheck } from "./checks/card"
import { emailCheck } from "./checks/email"
import { phoneCheck } from "./checks/phone"
import { regexCheck } from "./checks/regex"
import { secretCheck } from "./checks/secret"
import type { CheckSpec, PiiKind } from "./spec"

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

/** The checks a spec describes, or why it cannot run (a field path and the problem). */
export const checksOf = (spec: CheckSpec): Either.Either<ReadonlyArray<Check>, readonly [string, string]> => {
  switch (spec.type) {
    case "pii": {
      const country = spec.default_country
      if (country !== undefined && !libphonenumber().isSupportedCountry(country)) return Either.left(["default_country", `${country} is not a country libphonenumber knows`])
      return Either.right(piiChecks(spec.kinds ?? ALL_PII, country as CountryCode | undefined))
    }
    case "regex": {
      try {
        return Either.right([regexCheck(spec.name ?? "regex", spec.pattern, spec.flags ?? "", spec.label ?? spec.name ?? "pattern", spec.max_match ?? 256)])
      } catch (error) {
        return Either.left(["pattern", `not a valid regular expression: ${error instanceof Error ? error.message : String(error)}`])
      }
    }
    case "blocklist":
      return Either.right([blocklistCheck(spec.name ?? "blocklist", spec.words)])
  }
}
