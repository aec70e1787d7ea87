/** OpenAI chat request → Anthropic Messages request. */
import { Either } from "effect"
import type { Deployment } from "../../config/gateway-config"
import { contentText, type ChatCompletionRequest, maxOutputTokens, type Message } from "../../protocol/chat-request"
import { COMMON_FIELDS, invalid, parseArguments, parseDataUrl, refuseUntranslatable, stopList, unsupported } from "../translate"
import type { UpstreamError } from "../upstream-error"
import type { MessagesRequest, RequestBlock } from "./wire"

export interface Translated {
  readonly body: MessagesRequest
  /**
   * Anthropic has no JSON mode: response_format becomes one forced tool whose input is
   * the JSON answer. Responses turn that tool call back into message content.
   */
  readonly jsonTool: string | undefined
}

export type Turn = { role: "user" | "assistant"; content: Array<RequestBlock> }

const userBlocks = (message: Extract<Message, { role: "user" }>, i: number): Either.Either<Array<RequestBlock>, UpstreamError> => {
  if (typeof message.content === "string") return Either.right([{ type: "text", text: message.content }])
  const blocks: Array<RequestBlock> = []
  for (const [p, part] of message.content.entries()) {
    const param = `messages[${i}].content[${p}]`
    if (part.type === "text") blocks.push({ type: "text", text: part.text })
    else if (part.type === "image_url") {
      const data = parseDataUrl(part.image_url.url)
      blocks.push({
        type: "image",
        source: data === undefined
          ? { type: "url", url: part.image_url.url }
          : { type: "base64", media_type: data.mediaType, data: data.data }
      })
    } else return Either.left(unsupported(param, `${param}: content parts of type "${part.type}" are not supported by anthropic models`))
  }
  return Either.right(blocks)
}

/** System and developer messages, in order: Anthropic takes them as one system prompt. */
export const systemPrompt = (messages: ReadonlyArray<Message>): string | undefined => {
  const texts = messages.flatMap((m) => (m.role === "system" || m.role === "developer" ? [contentText(m.content)] : []))
  return texts.length > 0 ? texts.join("\n\n") : undefined
}

/** An assistant message: its text, then each tool call as a tool_use block (never no block at all). */
export const assistantBlocks = (message: Extract<Message, { role: "assistant" }>, i: number): Either.Either<Array<RequestBlock>, UpstreamError> =>
  Either.gen(() => assistantBlockSteps(message, i))

// Each translation step is a module-level generator run by Either.gen: a `function*` written
// inside the arrow would be a new generator function, with its own initial map, every call.
function* assistantBlockSteps(message: Extract<Message, { role: "assistant" }>, i: number) {
  const blocks: Array<RequestBlock> = []
  const text = contentText(message.content)
  if (text !== "") blocks.push({ type: "text", text })
  for (const [t, call] of (message.tool_calls ?? []).entries()) {
    const input = yield* parseArguments(call.function.arguments, `messages[${i}].tool_calls[${t}].function.arguments`)
    blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input })
  }
  if (blocks.length === 0) blocks.push({ type: "text", text: "" })
  return blocks
}

/** One message's turn, or undefined for a system prompt (which goes apart). */
const turnOf = (message: Message, i: number): Either.Either<Turn | undefined, UpstreamError> => {
  switch (message.role) {
    case "system":
    case "developer":
      return Either.right(undefined)
    case "user":
      return Either.map(userBlocks(message, i), (content): Turn => ({ role: "user", content }))
    case "assistant":
      return Either.map(assistantBlocks(message, i), (content): Turn => ({ role: "assistant", content }))
    case "tool":
      return Either.right({ role: "user", content: [{ type: "tool_result", tool_use_id: message.tool_call_id, content: contentText(message.content) }] })
  }
}

/** The conversation as Anthropic's turns; it wants them alternating, so consecutive ones (parallel tool results) merge. */
export const turnsOf = (messages: ReadonlyArray<Message>): Either.Either<Array<Turn>, UpstreamError> => Either.gen(() => turnSteps(messages))

function* turnSteps(messages: ReadonlyArray<Message>) {
  const turns: Array<Turn> = []
  for (const [i, message] of messages.entries()) {
    const turn = yield* turnOf(message, i)
    if (turn === undefined) continue
    const last = turns.at(-1)
    if (last !== undefined && last.role === turn.role) last.content.push(...turn.content)
    else turns.push(turn)
  }
  return turns
}

/** The forced tool that stands for response_format, by name: Anthropic has no JSON mode. */
const jsonToolOf = (request: ChatCompletionRequest): Either.Either<string | undefined, UpstreamError> => {
  const format = request.response_format
  const jsonTool = format === undefined || format.type === "text"
    ? undefined
    : format.type === "json_schema" ? format.json_schema.name : "json_object"
  if (jsonTool !== undefined && (request.tools?.length ?? 0) > 0) {
    return Either.left(unsupported("response_format", "anthropic models cannot combine response_format with tools in one request"))
  }
  return Either.right(jsonTool)
}

/** The request's tools, or the one JSON tool whose input is the answer. */
export const toolsOf = (request: ChatCompletionRequest, jsonTool: string | undefined): MessagesRequest["tools"] => {
  const format = request.response_format
  if (jsonTool !== undefined && format !== undefined && format.type !== "text") {
    return [{
      name: jsonTool,
      description: "Reply by calling this tool with the answer as its input.",
      input_schema: format.type === "json_schema" ? format.json_schema.schema ?? { type: "object" } : { type: "object" }
    }]
  }
  return request.tools?.map((tool) => ({
    name: tool.function.name,
    ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
    input_schema: tool.function.parameters ?? { type: "object", properties: {} }
  }))
}

/** OpenAI's tool_choice and parallel_tool_calls as Anthropic's tool_choice; the JSON tool is always forced. */
export const toolChoiceOf = (
  request: ChatCompletionRequest,
  jsonTool: string | undefined,
  tools: MessagesRequest["tools"]
): Either.Either<MessagesRequest["tool_choice"], UpstreamError> => {
  const choice = request.tool_choice
  const disableParallel = request.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {}
  const toolChoice: MessagesRequest["tool_choice"] = jsonTool !== undefined
    ? { type: "tool", name: jsonTool }
    : choice === undefined
    ? (request.parallel_tool_calls === false && tools !== undefined ? { type: "auto", ...disableParallel } : undefined)
    : typeof choice === "string"
    ? { type: choice === "required" ? "any" : choice, ...(choice === "none" ? {} : disableParallel) }
    : { type: "tool", name: choice.function.name, ...disableParallel }
  if (choice !== undefined && tools === undefined && choice !== "none") return Either.left(invalid("tool_choice", "tool_choice needs tools"))
  return Either.right(toolChoice)
}

/** What Anthropic cannot do at all: fields it has no counterpart for, a temperature above 1. */
const refuseUnsupported = (request: ChatCompletionRequest): Either.Either<void, UpstreamError> => Either.gen(() => refusalSteps(request))

function* refusalSteps(request: ChatCompletionRequest) {
  yield* refuseUntranslatable(request, "anthropic", COMMON_FIELDS)
  if (request.temperature != null && request.temperature > 1) {
    return yield* Either.left(unsupported("temperature", "anthropic models take a temperature between 0 and 1"))
  }
}

export const toAnthropic = (request: ChatCompletionRequest, deployment: Deployment): Either.Either<Translated, UpstreamError> =>
  Either.gen(() => translationSteps(request, deployment))

function* translationSteps(request: ChatCompletionRequest, deployment: Deployment) {
  yield* refuseUnsupported(request)
  const turns = yield* turnsOf(request.messages)
  const system = systemPrompt(request.messages)
  const jsonTool = yield* jsonToolOf(request)
  const tools = toolsOf(request, jsonTool)
  const toolChoice = yield* toolChoiceOf(request, jsonTool, tools)
  const stop = stopList(request.stop)
  const body: MessagesRequest = {
    model: deployment.upstreamModel,
    max_tokens: maxOutputTokens(request) ?? deployment.maxTokensDefault,
    messages: turns,
    ...(system === undefined ? {} : { system }),
    ...(stop === undefined ? {} : { stop_sequences: stop }),
    ...(request.temperature == null ? {} : { temperature: request.temperature }),
    ...(request.top_p == null ? {} : { top_p: request.top_p }),
    ...(tools === undefined ? {} : { tools }),
    ...(toolChoice === undefined ? {} : { tool_choice: toolChoice }),
    ...(request.user === undefined ? {} : { metadata: { user_id: request.user } })
  }
  return { body, jsonTool }
}
