/** Token counts before a call, for worst-case costs and token rate limits. */
import { createRequire } from "node:module"
import { contentText, type Message } from "./chat-request"

/** OpenAI's chat format adds a few tokens a message; other providers are close to it. */
const PER_MESSAGE = 4

type Tokenizer = { readonly countTokens: (text: string) => number }

/**
 * The tokenizer is loaded on first use: its tables are ~70 MB of a worker's memory and
 * ~200 ms of its start-up, and an open gateway whose upstreams report usage never needs
 * it (it counts for budgets, token rate limits and streams cut before their usage).
 * Synchronous, since every caller is.
 */
let tokenizer: Tokenizer | undefined
const load = (): Tokenizer => (tokenizer ??= createRequire(import.meta.url)("gpt-tokenizer") as Tokenizer)

export const countTokens = (text: string): number => load().countTokens(text)

export const promptTokens = (messages: ReadonlyArray<Message>): number =>
  messages.reduce((sum, m) => sum + countTokens(contentText(m.content)) + PER_MESSAGE, 3)
