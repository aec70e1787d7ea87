/**
 * Payment card numbers: 13 to 19 digits, in groups or not, that pass the Luhn checksum (so a
 * random order number rarely counts as a card, while every real card number does).
 */
import { type Check, findAll } from "../check"

const CANDIDATE = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g

/** The Luhn checksum every issuer's card number passes. */
export const luhn = (digits: string): boolean => {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48
    if (i % 2 === 1) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
  }
  return sum % 10 === 0
}

export const cardCheck = (name = "card"): Check => ({
  name,
  maxSpan: 19 + 18,
  find: (text) =>
    findAll(CANDIDATE, text, name, "card", (m) => {
      const digits = m[0].replace(/[ -]/g, "")
      return digits.length >= 13 && digits.length <= 19 && luhn(digits)
    })
})
