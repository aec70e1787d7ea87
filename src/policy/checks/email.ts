/** E-mail addresses: the common form (local part, @, a domain with a dot), not every RFC 5322 oddity. */
import { type Check, findAll } from "../check"

// Local part up to 64 characters, domain labels up to 63, total bounded by RFC 5321's 254.
const EMAIL = /(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])/g

export const emailCheck = (name = "email"): Check => ({
  name,
  maxSpan: 254,
  find: (text) => findAll(EMAIL, text, name, "email")
})
