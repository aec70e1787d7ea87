/**
 * A Responses API request as the chat request Quorum routes: instructions as the first
 * system message, input items as chat messages (function calls merged into the assistant
 * turn they belong to, their outputs as tool messages), function tools, tool_choice,
 * text.format as response_format, max_output_tokens as max_completion_tokens.
 *
 * Quorum is stateless: nothing is stored (`store` is accepted and dropped, never sent on,
 * so no upstream stores either), and what needs OpenAI's server-side state is refused by
 * name: previous_response_id, conversation, stored prompts, background mode, item
 * references, file ids. So are OpenAI's hosted tools (web_search, file_search, …), which
 * no other provider runs, and any field this translation does not know, as OpenAI itself
 * refuses an unknown parameter: silently dropping it would change the answer unseen.
 * Reasoning settings and reasoning items are dropped: the chat request has no field for
 * them, and a reasoning item is one model's own trace that no other model accepts.
 */
import { Either } from "effect"
import type { ChatCompletionRequest, Message, ToolCall, UserContentPart } from "../../protocol/chat-request"
import type { Refusal } from "./errors"
import { type ContentPart, type InputItem, type MessageItem, ResponsesRequest } from "./wire"

/** Thrown inside the translation and caught at its edge: a refusal ends it wherever it is found. */
class Refused {
  constructor(readonly refusal: Refusal) {}
}

const refuse = (param: string, message: string, code: Refusal["code"] = "unsupported_value"): never => {
  throw new Refused({ param, message, code })
}

const KNOWN_FIELDS: ReadonlySet<string> = new Set(Object.keys(ResponsesRequest.fields))

const STATELESS = "Quorum is a stateless gateway: it stores no responses or conversations"

const refuseUnknownFields = (request: object): void => {
  for (const key of Object.keys(request)) {
    if (!KNOWN_FIELDS.has(key)) refuse(key, `Unknown parameter: '${key}'.`, "unknown_parameter")
  }
}

const refuseStateful = (request: ResponsesRequest): void => {
  const unsupported = (param: string, why: string) => refuse(param, `${STATELESS}: ${why}`, "unsupported_parameter")
  if (request.previous_response_id != null) unsupported("previous_response_id", "send the whole conversation as `input` items instead of previous_response_id")
  if (request.conversation != null) unsupported("conversation", "send the whole conversation as `input` items instead of a conversation id")
  if (request.prompt != null) unsupported("prompt", "stored prompt templates live on OpenAI's side; send the prompt's text as `instructions` and `input`")
  if (request.background === true) unsupported("background", "background responses must be stored to be fetched later; send the request without `background`")
  const include = request.include ?? []
  if (include.length > 0) refuse("include", `Quorum cannot add '${include[0]}' to a response: it carries what every provider returns, so send the request without \`include\``)
}

type TextPart = { readonly type: "text"; readonly text: string }

const textOf = (part: ContentPart, at: string, what: string): string => {
  switch (part.type) {
    case "input_text":
    case "output_text":
      return (part as { text: string }).text
    default:
      return refuse(`${at}.type`, `${what} can carry text only through Quorum, not '${part.type}'`)
  }
}

const userPart = (part: ContentPart, at: string): UserContentPart => {
  switch (part.type) {
    case "input_text":
    case "output_text":
      return { type: "text", text: (part as { text: string }).text }
    case "input_image": {
      const image = part as Extract<ContentPart, { type: "input_image" }>
      if (image.file_id != null) return refuse(`${at}.file_id`, "Images by file_id need OpenAI's Files API, which Quorum does not proxy: send the image as image_url (https: or a data: URL)")
      if (image.image_url == null) return refuse(`${at}.image_url`, "An input_image needs an image_url (https: or a data: URL)", "invalid_value")
      const detail = image.detail === undefined || image.detail === "original" ? {} : { detail: image.detail }
      return { type: "image_url", image_url: { url: image.image_url, ...detail } }
    }
    case "input_file": {
      const file = part as Extract<ContentPart, { type: "input_file" }>
      if (file.file_id != null) return refuse(`${at}.file_id`, "Files by file_id need OpenAI's Files API, which Quorum does not proxy: send the file's bytes as file_data")
      if (file.file_data === undefined) return refuse(`${at}.file_data`, "Quorum carries input files as file_data only (a data: URL with the file's bytes), not by file_url")
      return { type: "file", file: { file_data: file.file_data, ...(file.filename !== undefined ? { filename: file.filename } : {}) } }
    }
    default:
      return refuse(`${at}.type`, `Content parts of type '${part.type}' cannot be carried in a user message through Quorum`)
  }
}

const userMessage = (item: MessageItem, at: string): Message => {
  if (typeof item.content === "string") return { role: "user", content: item.content }
  const parts = item.content.map((part, i) => userPart(part, `${at}.content[${i}]`))
  if (parts.length === 0) return refuse(`${at}.content`, "A message needs at least one content part", "invalid_value")
  return { role: "user", content: parts }
}

const systemMessage = (item: MessageItem, role: "system" | "developer", at: string): Message => {
  if (typeof item.content === "string") return { role, content: item.content }
  const parts: Array<TextPart> = item.content.map((part, i) => ({ type: "text", text: textOf(part, `${at}.content[${i}]`, `A ${role} message`) }))
  if (parts.length === 0) return refuse(`${at}.content`, "A message needs at least one content part", "invalid_value")
  return { role, content: parts }
}

const assistantMessage = (item: MessageItem, at: string): Message => {
  if (typeof item.content === "string") return { role: "assistant", content: item.content }
  const texts: Array<string> = []
  const refusals: Array<string> = []
  for (const [i, part] of item.content.entries()) {
    if (part.type === "refusal") refusals.push((part as { refusal: string }).refusal)
    else texts.push(textOf(part, `${at}.content[${i}]`, "An assistant message"))
  }
  return {
    role: "assistant",
    content: texts.length > 0 ? texts.join("") : null,
    ...(refusals.length > 0 ? { refusal: refusals.join("") } : {})
  }
}

const toolOutputText = (output: string | ReadonlyArray<ContentPart>, at: string): string =>
  typeof output === "string" ? output : output.map((part, i) => textOf(part, `${at}[${i}]`, "A function_call_output")).join("")

/** Appends a function call to the assistant turn just before it, or opens one: chat puts a turn's calls on its message. */
const addToolCall = (messages: Array<Message>, call: ToolCall): void => {
  const last = messages[messages.length - 1]
  if (last !== undefined && last.role === "assistant") {
    messages[messages.length - 1] = { ...last, tool_calls: [...(last.tool_calls ?? []), call] }
  } else {
    messages.push({ role: "assistant", content: null, tool_calls: [call] })
  }
}

const inputMessages = (input: ResponsesRequest["input"]): ReadonlyArray<Message> => {
  if (typeof input === "string") return [{ role: "user", content: input }]
  const messages: Array<Message> = []
  for (const [i, item] of input.entries()) messages.push(...itemMessages(item, `input[${i}]`, messages))
  return messages
}

/** The messages one input item adds (a function call adds none: it joins the assistant turn in `so_far`). */
const itemMessages = (item: InputItem, at: string, soFar: Array<Message>): ReadonlyArray<Message> => {
  if (!("type" in item) || item.type === undefined || item.type === "message") {
    const message = item as MessageItem
    switch (message.role) {
      case "user":
        return [userMessage(message, at)]
      case "assistant":
        return [assistantMessage(message, at)]
      case "system":
      case "developer":
        return [systemMessage(message, message.role, at)]
    }
  }
  switch (item.type) {
    case "function_call": {
      const call = item as Extract<InputItem, { type: "function_call" }>
      addToolCall(soFar, { id: call.call_id, type: "function", function: { name: call.name, arguments: call.arguments } })
      return []
    }
    case "function_call_output": {
      const output = item as Extract<InputItem, { type: "function_call_output" }>
      return [{ role: "tool", tool_call_id: output.call_id, content: toolOutputText(output.output, `${at}.output`) }]
    }
    case "reasoning":
      return []
    case "item_reference":
      return refuse(`${at}.type`, `${STATELESS}: an item_reference points at a stored item; send the item itself`, "unsupported_parameter")
    default:
      return refuse(`${at}.type`, `Input items of type '${item.type}' cannot be carried through Quorum: it takes messages, function_call and function_call_output items`)
  }
}

const tools = (request: ResponsesRequest): Pick<ChatCompletionRequest, "tools"> => {
  if (request.tools === undefined) return {}
  return {
    tools: request.tools.map((tool, i) => {
      if (tool.type !== "function") {
        return refuse(`tools[${i}].type`, `'${tool.type}' is a tool OpenAI runs on its own side: Quorum routes to other providers too, so it takes function tools only`, "unsupported_value")
      }
      const fn = tool as Extract<typeof tool, { type: "function" }>
      return {
        type: "function" as const,
        function: {
          name: fn.name,
          ...(fn.description != null ? { description: fn.description } : {}),
          ...(fn.parameters != null ? { parameters: fn.parameters } : {}),
          ...(fn.strict != null ? { strict: fn.strict } : {})
        }
      }
    })
  }
}

const toolChoice = (request: ResponsesRequest): Pick<ChatCompletionRequest, "tool_choice"> => {
  const choice = request.tool_choice
  if (choice === undefined) return {}
  if (typeof choice === "string") return { tool_choice: choice }
  if (choice.type === "function") return { tool_choice: { type: "function", function: { name: (choice as { name: string }).name } } }
  return refuse("tool_choice.type", `tool_choice of type '${choice.type}' cannot be carried through Quorum: use 'none', 'auto', 'required' or a function`)
}

const responseFormat = (request: ResponsesRequest): Pick<ChatCompletionRequest, "response_format"> => {
  const format = request.text?.format
  if (format === undefined) return {}
  if (format.type !== "json_schema") return { response_format: { type: format.type } }
  return {
    response_format: {
      type: "json_schema",
      json_schema: {
        name: format.name,
        schema: format.schema,
        ...(format.description !== undefined ? { description: format.description } : {}),
        ...(format.strict != null ? { strict: format.strict } : {})
      }
    }
  }
}

const sampling = (request: ResponsesRequest): Partial<ChatCompletionRequest> => ({
  ...(request.temperature != null ? { temperature: request.temperature } : {}),
  ...(request.top_p != null ? { top_p: request.top_p } : {}),
  ...(request.max_output_tokens != null ? { max_completion_tokens: request.max_output_tokens } : {}),
  ...(request.parallel_tool_calls != null ? { parallel_tool_calls: request.parallel_tool_calls } : {}),
  ...(request.metadata != null ? { metadata: request.metadata } : {}),
  ...(request.user !== undefined ? { user: request.user } : {}),
  ...(request.safety_identifier != null ? { safety_identifier: request.safety_identifier } : {}),
  ...(request.prompt_cache_key != null ? { prompt_cache_key: request.prompt_cache_key } : {})
})

/**
 * The chat request for a Responses request, or why it cannot be carried. `request` is the
 * validated body as received (the gateway's validator keeps unknown fields on it, and
 * they are refused here by name).
 */
export const toChatRequest = (request: ResponsesRequest): Either.Either<ChatCompletionRequest, Refusal> => {
  try {
    refuseUnknownFields(request)
    refuseStateful(request)
    const instructions = request.instructions != null && request.instructions !== "" ? [{ role: "system" as const, content: request.instructions }] : []
    const messages = [...instructions, ...inputMessages(request.input)]
    if (messages.length === 0) refuse("input", "The request needs input: a string or at least one input item", "invalid_value")
    return Either.right({
      model: request.model,
      messages,
      ...sampling(request),
      ...tools(request),
      ...toolChoice(request),
      ...responseFormat(request),
      // Usage comes last in a chat stream; response.completed carries it, so always ask.
      ...(request.stream === true ? { stream: true, stream_options: { include_usage: true } } : {})
    })
  } catch (error) {
    if (error instanceof Refused) return Either.left(error.refusal)
    throw error
  }
}
