/** Token counts before a call, for worst-case costs and token rate limits. */
import { createRequire } from "node:module"
import { contentText, type FunctionTool, type Message } from "./chat-request"

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
