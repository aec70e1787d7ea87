/** Token counts before a call, for worst-case costs and token rate limits. */
import { createRequire } from "node:module"
import { contentText, type FunctionTool, type Message } from "./chat-request"

/** OpenAI's chat format adds a few tokens a message; other providers are close to it. */
const PER_MESSAGE = 4

type EncodeOptions = { readonly disallowedSpecial: ReadonlySet<string> }
type Tokenizer = { readonly countTokens: (text: string, options: EncodeOptions) => number }

/**
 * The tokenizer is loaded on first use: its tables are ~70 MB of a worker's memory and
 * ~200 ms of its start-up, and an open gateway whose upstreams report usage never needs
 * it (it counts for budgets, token rate limits and streams cut before their usage).
 * Synchronous, since every caller is. Its pre-tokenizer (the regex that splits text into
 * the pieces it encodes one by one) comes from the same package.
 */
let tokenizer: { readonly count: (text: string) => number; readonly pieces: RegExp } | undefined
const load = () => {
  if (tokenizer !== undefined) return tokenizer
  const require = createRequire(import.meta.url)
  const { countTokens } = require("gpt-tokenizer") as Tokenizer
  const { O200K_TOKEN_SPLIT_REGEX } = require("gpt-tokenizer/encodingParams/constants") as { O200K_TOKEN_SPLIT_REGEX: RegExp }
  // A prompt's "<|endoftext|>" is text, as providers read it: the tokenizer would throw on it.
  const asText: EncodeOptions = { disallowedSpecial: new Set() }
  return (tokenizer = { count: (text) => countTokens(text, asText), pieces: new RegExp(O200K_TOKEN_SPLIT_REGEX.source, "gu") })
}

/**
 * The most text the tokenizer is given at once. Byte-pair encoding is quadratic in a
 * piece's length, and a run of one kind of character (spaces, punctuation, emoji, CJK or
 * Latin letters without a space) is one piece: 20,000 spaces took 270 ms and 50,000 CJK
 * characters 7 s of a worker's only thread, every other request waiting, from one request
 * body well under the size limit. Counted a slice at a time, the work is linear.
 */
export const SLICE = 256

const endsInSpace = (piece: string): boolean => /\s$/u.test(piece)

/** A piece longer than SLICE, a SLICE at a time (never inside a surrogate pair): a token or two more than exact at each cut. */
const countLong = (count: (text: string) => number, piece: string): number => {
  let total = 0
  for (let start = 0; start < piece.length;) {
    const high = piece.charCodeAt(start + SLICE - 1)
    const end = Math.min(piece.length, high >= 0xd800 && high <= 0xdbff ? start + SLICE - 1 : start + SLICE)
    total += count(piece.slice(start, end))
    start = end
  }
  return total
}

/**
 * Slices end between two of the pre-tokenizer's pieces, after one that does not end in
 * whitespace: the slices are then split into the very pieces the whole text is, and their
 * counts add up to its count exactly. (A whitespace run's split looks at what follows it.)
 * Only a piece longer than SLICE is cut inside.
 */
export const countTokens = (text: string): number => {
  const { count, pieces } = load()
  if (text.length <= SLICE) return count(text)
  let total = 0
  let from = 0
  let cut = 0
  for (const match of text.matchAll(pieces)) {
    const start = match.index
    const end = start + match[0].length
    if (match[0].length > SLICE) {
      if (start > from) total += count(text.slice(from, start))
      total += countLong(count, match[0])
      from = cut = end
      continue
    }
    if (end - from > SLICE && cut > from) {
      total += count(text.slice(from, cut))
      from = cut
    }
    if (!endsInSpace(match[0])) cut = end
  }
  return from < text.length ? total + count(text.slice(from)) : total
}

/** What an assistant message's tool calls sent: each function's name and arguments. */
const toolCallsText = (m: Message): string =>
  m.role === "assistant" && m.tool_calls !== undefined ? m.tool_calls.map((c) => c.function.name + c.function.arguments).join("") : ""

/**
 * A chat prompt's tokens: its messages' text and tool calls, and the tools it defines,
 * which providers bill as prompt too (counted as their JSON, longer than the rendering
 * OpenAI gives them). An estimate for any tokenizer but o200k's, and images are not
 * counted (README, Spend).
 */
export const promptTokens = (messages: ReadonlyArray<Message>, tools?: ReadonlyArray<FunctionTool>): number =>
  messages.reduce((sum, m) => sum + countTokens(contentText(m.content) + toolCallsText(m)) + PER_MESSAGE, 3) +
  (tools === undefined || tools.length === 0 ? 0 : countTokens(JSON.stringify(tools)))
