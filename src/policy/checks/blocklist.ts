/** Words or phrases that must not pass, matched whole and case-insensitively. */
import { type Check, findAll } from "../check"

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

export const blocklistCheck = (name: string, words: ReadonlyArray<string>): Check => {
  const alternatives = [...words].sort((a, b) => b.length - a.length).map((w) => escape(w.trim()).replace(/\s+/g, "\\s+"))
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives.join("|")})(?![\\p{L}\\p{N}_])`, "giu")
  return { name, maxSpan: Math.max(...words.map((w) => w.length)) * 2, find: (text) => findAll(re, text, name, "blocklisted") }
}
