/** Token counts before a call, for worst-case costs and token rate limits. */
import { Effect } from "effect"
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
 * Its pre-tokenizer (the regex that splits text into the pieces it encodes one by one)
 * comes from the same package.
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

/** Where the next slice of a piece longer than SLICE ends: SLICE on, or one less not to split a surrogate pair. */
const chunkEnd = (text: string, at: number, pieceEnd: number): number => {
  const high = text.charCodeAt(at + SLICE - 1)
  return Math.min(pieceEnd, high >= 0xd800 && high <= 0xdbff ? at + SLICE - 1 : at + SLICE)
}

/**
 * A text's count, a slice at a time, that can stop and go on (see countPrompt). Slices
 * end between two of the pre-tokenizer's pieces, after one that does not end in
 * whitespace: the slices are then split into the very pieces the whole text is, and their
 * counts add up to its count exactly. (A whitespace run's split looks at what follows it.)
 * Only a piece longer than SLICE is cut inside, a SLICE at a time: a token or two more than
 * exact at each such cut.
 */
class SliceCount {
  total = 0
  /** Where the next piece is looked for: what is before it is counted, or gathered in the slice from `from`. */
  at = 0
  private from = 0
  private cut = 0
  private longEnd = 0

  constructor(private readonly text: string) {}

  /** Counts about `chars` more characters; true once the whole text is counted. */
  step(chars: number): boolean {
    const { count, pieces } = load()
    const text = this.text
    const stop = this.at + chars
    while (this.at < stop) {
      if (this.longEnd > this.at) {
        const end = chunkEnd(text, this.at, this.longEnd)
        this.total += count(text.slice(this.at, end))
        this.at = end
        if (end === this.longEnd) this.from = this.cut = end
        continue
      }
      pieces.lastIndex = this.at
      const match = pieces.exec(text)
      if (match === null) break
      const start = match.index
      const end = start + match[0].length
      if (match[0].length > SLICE) {
        if (start > this.from) this.total += count(text.slice(this.from, start))
        this.from = this.at = start
        this.longEnd = end
        continue
      }
      if (end - this.from > SLICE && this.cut > this.from) {
        this.total += count(text.slice(this.from, this.cut))
        this.from = this.cut
      }
      if (!endsInSpace(match[0])) this.cut = end
      this.at = end
    }
    if (this.at < stop) {
      if (this.from < text.length) this.total += count(text.slice(this.from))
      this.from = this.at = text.length
      return true
    }
    return false
  }
}

export const countTokens = (text: string): number => {
  if (text.length <= SLICE) return load().count(text)
  const counting = new SliceCount(text)
  counting.step(Infinity)
  return counting.total
}

/** What an assistant message's tool calls sent: each function's name and arguments. */
const toolCallsText = (m: Message): string =>
  m.role === "assistant" && m.tool_calls !== undefined ? m.tool_calls.map((c) => c.function.name + c.function.arguments).join("") : ""

/** The texts of a prompt the count reads, and the tokens its format adds around them. */
const promptTexts = (messages: ReadonlyArray<Message>, tools: ReadonlyArray<FunctionTool> | undefined) => ({
  texts: [...messages.map((m) => contentText(m.content) + toolCallsText(m)), ...(tools === undefined || tools.length === 0 ? [] : [JSON.stringify(tools)])],
  framing: 3 + PER_MESSAGE * messages.length
})

/**
 * A chat prompt's tokens: its messages' text and tool calls, and the tools it defines,
 * which providers bill as prompt too (counted as their JSON, longer than the rendering
 * OpenAI gives them). An estimate for any tokenizer but o200k's, and images are not
 * counted (README, Spend).
 */
export const promptTokens = (messages: ReadonlyArray<Message>, tools?: ReadonlyArray<FunctionTool>): number => counts(promptTexts(messages, tools))

const counts = ({ texts, framing }: { readonly texts: ReadonlyArray<string>; readonly framing: number }): number =>
  texts.reduce((sum, text) => sum + countTokens(text), framing)

/** What carries a prompt: a chat request, whose count is kept with its messages (see countPrompt). */
export interface Prompted {
  readonly messages: ReadonlyArray<Message>
  readonly tools?: ReadonlyArray<FunctionTool> | undefined
}

/**
 * Counts made, by the messages they counted (and the tools with them): the copies a request
 * goes through (its output capped, an attempt's) share its messages, so they share its count.
 */
const counted = new WeakMap<ReadonlyArray<Message>, { readonly tools: ReadonlyArray<FunctionTool> | undefined; readonly tokens: number }>()
const countedFor = (request: Prompted): number | undefined => {
  const kept = counted.get(request.messages)
  return kept !== undefined && kept.tools === request.tools ? kept.tokens : undefined
}
const keep = (request: Prompted, tokens: number): number => {
  counted.set(request.messages, { tools: request.tools, tokens })
  return tokens
}

/** A request's prompt tokens, counted once: the admission's count (countPrompt) serves whatever reads them after it. */
export const promptTokensOf = (request: Prompted): number => countedFor(request) ?? keep(request, promptTokens(request.messages, request.tools))

/**
 * Characters counted before the event loop is let in. Counting is linear but not free (up
 * to 2.3 µs a character, CJK without punctuation: 3 s for a 4 MiB body, bench:tokens), and
 * it runs on the worker's only thread: a long prompt is counted a part at a time, other
 * requests served in between. Prose counts this many characters in ~5 ms.
 */
export const PART = 32_768

/** The next turn of the event loop, after the I/O that is waiting. */
const nextTurn: Effect.Effect<void> = Effect.async((resume) => {
  const turn = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(turn))
})

/**
 * promptTokensOf, with the event loop let in every PART characters: how a request's
 * admission counts its prompt, so that one long prompt does not hold every other request
 * of the worker. Interrupted (the client left), it stops between parts.
 */
export const countPrompt = (request: Prompted): Effect.Effect<number> =>
  Effect.suspend(() => {
    const known = countedFor(request)
    if (known !== undefined) return Effect.succeed(known)
    const prompt = promptTexts(request.messages, request.tools)
    const { texts, framing } = prompt
    if (texts.reduce((sum, text) => sum + text.length, 0) <= PART) return Effect.sync(() => keep(request, counts(prompt)))
    let index = 0
    let total = framing
    let counting: SliceCount | undefined
    const parts: Effect.Effect<number> = Effect.suspend(() => {
      let left = PART
      for (let text = texts[index]; text !== undefined; text = texts[index]) {
        counting ??= new SliceCount(text)
        const before = counting.at
        const done = counting.step(left)
        left -= counting.at - before
        if (done) {
          total += counting.total
          counting = undefined
          index++
        }
        if (left <= 0 && index < texts.length) return Effect.zipRight(nextTurn, parts)
      }
      return Effect.succeed(keep(request, total))
    })
    return parts
  })
