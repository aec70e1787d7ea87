/** A pattern of the operator's: a project's code name, an internal host name, an ID format. */
import { type Check, findAll } from "../check"

export const regexCheck = (name: string, pattern: string, flags: string, label: string, maxSpan: number): Check => {
  // Always global (to find every match); other flags as configured.
  const re = new RegExp(pattern, flags.includes("g") ? flags : `${flags}g`)
  return { name, maxSpan, find: (text) => findAll(re, text, name, label) }
}
