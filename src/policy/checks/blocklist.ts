/** Words or phrases that must not pass, matched whole and case-insensitively. */
import { Either, Schema } from "effect"
import { type Check, type CheckType, findAll } from "../check"

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

export const blocklistCheck = (name: string, words: ReadonlyArray<string>): Check => {
  const alternatives = [...words].sort((a, b) => b.length - a.length).map((w) => escape(w.trim()).replace(/\s+/g, "\\s+"))
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives.join("|")})(?![\\p{L}\\p{N}_])`, "giu")
  return { name, maxSpan: Math.max(...words.map((w) => w.length)) * 2, find: (text) => findAll(re, text, name, "blocklisted") }
}

export const BlocklistSpec = Schema.Struct({
  type: Schema.Literal("blocklist"),
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  words: Schema.Array(Schema.String.pipe(Schema.minLength(1))).pipe(Schema.minItems(1))
})
export type BlocklistSpec = typeof BlocklistSpec.Type

export const blocklistType: CheckType<BlocklistSpec> = {
  type: "blocklist",
  spec: BlocklistSpec,
  build: (spec) => Either.right([blocklistCheck(spec.name ?? "blocklist", spec.words)])
}
