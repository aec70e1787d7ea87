/**
 * An Anthropic Messages request as the chat request Quorum routes: the system prompt as a
 * system message, tool results as tool messages (before the user's text, as Anthropic
 * orders them), tool uses as tool calls, images and PDFs as content parts, tools as
 * functions. What cannot travel to every provider is refused by name: Anthropic's server
 * tools, images by file id, blocks of other kinds in a user turn. Thinking blocks in past
 * assistant turns are dropped: they are one model's own reasoning, and no other model
 * accepts them.
 */
import { Either } from "effect"
import type { ChatCompletionRequest, Message } from "../../protocol/chat-request"
import type { ContentBlockParam, MessageParam, MessagesRequest } from "./wire"

export interface Refusal {
  readonly param: string
  readonly message: string
}

type UserPart = Extract<Message, { role: "user" }>["content"] extends infer C ? (C extends ReadonlyArray<infer P> ? P : never) : never
type ToolCall = NonNullable<Extract<Message, { role: "assistant" }>["tool_calls"]>[number]

/** Thrown inside the translation and caught at its edge: a refusal ends it wherever it is found. */
class Refused {
  constructor(readonly refusal: Refusal) {}
}

const refuse = (param: string, message: string): never => {
  throw new Refused({ param, message })
}

/** OpenAI's chat API takes at most four stop sequences; every provider behind Quorum accepts that many. */
const MAX_STOP = 4

const blocksOf = (content: MessageParam["content"]): ReadonlyArray<ContentBlockParam> =>
  typeof content === "string" ? [{ type: "text", text: content }] : content

const userPart = (block: ContentBlockParam, at: string): UserPart | undefined => {
  switch (block.type) {
    case "text":
      return { type: "text", text: (block as { text: string }).text }
    case "image": {
      const source = (block as Extract<ContentBlockParam, { type: "image" }>).source
      if (source.type === "file") return refuse(`${at}.source`, "Images by file_id need Anthropic's Files API, which Quorum does not proxy: send the image as base64 or a URL")
      return { type: "image_url", image_url: { url: source.type === "url" ? source.url : `data:${source.media_type};base64,${source.data}` } }
    }
    case "document": {
      const doc = block as Extract<ContentBlockParam, { type: "document" }>
      if (doc.source.type !== "base64" || doc.source.data === undefined) return refuse(`${at}.source`, "Only base64 documents (PDF) can be carried to every provider: send the document's bytes as base64")
      return { type: "file", file: { file_data: `data:${doc.source.media_type ?? "application/pdf"};base64,${doc.source.data}`, ...(doc.title ? { filename: doc.title } : {}) } }
    }
    default:
      return refuse(`${at}.type`, `Content blocks of type '${block.type}' cannot be carried in a user turn through Quorum`)
  }
}

const toolResultText = (block: Extract<ContentBlockParam, { type: "tool_result" }>, at: string): string => {
  const content = block.content ?? ""
  const text = typeof content === "string"
    ? content
    : content.map((part, i) => (part.type === "text" && part.text !== undefined ? part.text : refuse(`${at}.content[${i}]`, `A tool result can carry text only through Quorum, not '${part.type}'`))).join("\n")
  // OpenAI's tool messages have no error flag: the model reads it in the text.
  return block.is_error === true ? `Error: ${text}` : text
}

/** A user turn: its tool results as tool messages first, then the rest as one user message. */
const userMessages = (message: MessageParam, at: string): ReadonlyArray<Message> => {
  const out: Array<Message> = []
  const parts: Array<UserPart> = []
  for (const [i, block] of blocksOf(message.content).entries()) {
    const path = `${at}.content[${i}]`
    if (block.type === "tool_result") {
      const result = block as Extract<ContentBlockParam, { type: "tool_result" }>
      out.push({ role: "tool", tool_call_id: result.tool_use_id, content: toolResultText(result, path) })
    } else {
      const part = userPart(block, path)
      if (part !== undefined) parts.push(part)
    }
  }
  if (parts.length > 0) out.push({ role: "user", content: parts.every((p) => p.type === "text") ? parts.map((p) => (p as { text: string }).text).join("\n") : parts })
  return out
}

const assistantMessage = (message: MessageParam, at: string): Message => {
  const texts: Array<string> = []
  const calls: Array<ToolCall> = []
  for (const [i, block] of blocksOf(message.content).entries()) {
    if (block.type === "text") texts.push((block as { text: string }).text)
    else if (block.type === "tool_use") {
      const use = block as Extract<ContentBlockParam, { type: "tool_use" }>
      calls.push({ id: use.id, type: "function", function: { name: use.name, arguments: JSON.stringify(use.input ?? {}) } })
    } else if (block.type !== "thinking" && block.type !== "redacted_thinking") {
      refuse(`${at}.content[${i}].type`, `Content blocks of type '${block.type}' cannot be carried in an assistant turn through Quorum`)
    }
  }
  return { role: "assistant", content: texts.length > 0 ? texts.join("") : null, ...(calls.length > 0 ? { tool_calls: calls } : {}) }
}

const tools = (request: MessagesRequest): Pick<ChatCompletionRequest, "tools"> => {
  if (request.tools === undefined) return {}
  return {
    tools: request.tools.map((tool, i) => {
      if (tool.type !== undefined && tool.type !== null && tool.type !== "custom") {
        return refuse(`tools[${i}].type`, `'${tool.type}' is one of Anthropic's server tools, which run only on Anthropic's side: Quorum routes to other providers too, so it takes client tools only`)
      }
      return { type: "function" as const, function: { name: tool.name, ...(tool.description !== undefined ? { description: tool.description } : {}), parameters: tool.input_schema ?? { type: "object" }, ...(tool.strict !== undefined ? { strict: tool.strict } : {}) } }
    })
  }
}

const toolChoice = (request: MessagesRequest): Pick<ChatCompletionRequest, "tool_choice" | "parallel_tool_calls"> => {
  const choice = request.tool_choice
  if (choice === undefined) return {}
  const parallel = choice.disable_parallel_tool_use === true ? { parallel_tool_calls: false } : {}
  switch (choice.type) {
    case "auto":
      return { tool_choice: "auto", ...parallel }
    case "any":
      return { tool_choice: "required", ...parallel }
    case "none":
      return { tool_choice: "none" }
    case "tool":
      if (choice.name === undefined) return refuse("tool_choice.name", "tool_choice of type 'tool' needs the tool's name")
      return { tool_choice: { type: "function", function: { name: choice.name } }, ...parallel }
  }
}

const systemMessage = (request: MessagesRequest): ReadonlyArray<Message> => {
  const system = request.system
  if (system === undefined) return []
  const text = typeof system === "string" ? system : system.map((b) => b.text).join("\n")
  return text === "" ? [] : [{ role: "system", content: text }]
}

const sampling = (request: MessagesRequest): Partial<ChatCompletionRequest> => {
  const stops = request.stop_sequences
  if (stops !== undefined && stops.length > MAX_STOP) refuse("stop_sequences", `At most ${MAX_STOP} stop sequences can be carried to every provider; this request has ${stops.length}`)
  return {
    max_tokens: request.max_tokens,
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.top_p !== undefined ? { top_p: request.top_p } : {}),
    ...(stops !== undefined && stops.length > 0 ? { stop: [...stops] } : {}),
    ...(request.metadata?.user_id ? { user: request.metadata.user_id } : {})
  }
}

export const toChatRequest = (request: MessagesRequest): Either.Either<ChatCompletionRequest, Refusal> => {
  try {
    const messages = request.messages.flatMap((m, i) => (m.role === "user" ? userMessages(m, `messages[${i}]`) : [assistantMessage(m, `messages[${i}]`)]))
    return Either.right({
      model: request.model,
      messages: [...systemMessage(request), ...messages],
      ...sampling(request),
      ...tools(request),
      ...toolChoice(request),
      // Usage comes last in a chat stream; Anthropic's events carry it, so always ask.
      ...(request.stream === true ? { stream: true, stream_options: { include_usage: true } } : {})
    })
  } catch (error) {
    if (error instanceof Refused) return Either.left(error.refusal)
    throw error
  }
}
