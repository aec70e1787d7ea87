/** Token counts before a call, for worst-case costs and token rate limits. */
import { countTokens } from "gpt-tokenizer"
import { contentText, type Message } from "../protocol/chat-request"

/** OpenAI's chat format adds a few tokens a message; other providers are close to it. */
const PER_MESSAGE = 4

export const promptTokens = (messages: ReadonlyArray<Message>): number =>
  messages.reduce((sum, m) => sum + countTokens(contentText(m.content)) + PER_MESSAGE, 3)
