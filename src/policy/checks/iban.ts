/**
 * `iban`: international bank account numbers, written whole or in groups of four, that pass
 * the ISO 13616 check (mod 97), so a product code that merely looks like one rarely counts.
 * A type of check of its own (one file, one line in registry.ts):
 *
 *   checks: [{ type: iban }]
 */
import { Either, Schema } from "effect"
import { type Check, type CheckType, findAll } from "../check"

// Country code, check digits, then 11 to 30 letters or digits, spaces allowed between them.
const CANDIDATE = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g

/** ISO 13616's check: the first four characters moved to the end, letters as 10–35, the number mod 97 is 1. */
export const ibanChecksum = (iban: string): boolean => {
  const moved = iban.slice(4) + iban.slice(0, 4)
  let remainder = 0
  for (const c of moved) {
    const code = c.charCodeAt(0)
    const value = code >= 65 ? code - 55 : code - 48
    // Two-digit values (letters) shift the remainder by two places.
    remainder = (remainder * (value > 9 ? 100 : 10) + value) % 97
  }
  return remainder === 1
}

export const ibanCheck = (name = "iban"): Check => ({
  name,
  maxSpan: 34 + 8,
  find: (text) =>
    findAll(CANDIDATE, text, name, "iban", (m) => {
      const compact = m[0].replace(/ /g, "")
      return compact.length >= 15 && compact.length <= 34 && ibanChecksum(compact)
    })
})

export const IbanSpec = Schema.Struct({
  type: Schema.Literal("iban"),
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1)))
})
export type IbanSpec = typeof IbanSpec.Type

export const ibanType: CheckType<IbanSpec> = {
  type: "iban",
  spec: IbanSpec,
  build: (spec) => Either.right([ibanCheck(spec.name ?? "iban")])
}
