/**
 * Phone numbers, by libphonenumber's metadata: numbers written with a + and a country code
 * anywhere, and national formats of `defaultCountry` when one is set (without it, "(415)
 * 555-0132" could be any country's, or no phone number at all).
 */
import type { CountryCode } from "libphonenumber-js"
import type { Check, Finding } from "../check"
import { libphonenumber } from "./libphonenumber"

export const phoneCheck = (name = "phone", defaultCountry?: CountryCode): Check => ({
  name,
  // The longest formatted international number, with separators and an extension.
  maxSpan: 40,
  find: (text): ReadonlyArray<Finding> =>
    libphonenumber().findPhoneNumbersInText(text, defaultCountry === undefined ? {} : { defaultCountry }).map((m) => ({ check: name, label: "phone", start: m.startsAt, end: m.endsAt }))
})
