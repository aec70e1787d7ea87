/** OpenAI chat request → Gemini generateContent request. */
import { Either } from "effect"
import { contentText, type ChatCompletionRequest, maxOutputTokens, type Message } from "../../protocol/chat-request"
import { COMMON_FIELDS, invalid, parseArguments, parseDataUrl, refuseUntranslatable, stopList, unsupported } from "../translate"
import type { UpstreamError } from "../upstream-error"
import type { Content, GenerateContentRequest, Part } from "./wire"

const userParts = (message: Extract<Message, { role: "user" }>, i: number): Either.Either<Array<Part>, UpstreamError> => {
  if (typeof message.content === "string") return Either.right([{ text: message.content }])
  const parts: Array<Part> = []
  for (const [p, part] of message.content.entries()) {
    const param = `messages[${i}].content[${p}]`
    if (part.type === "text") parts.push({ text: part.text })
    else if (part.type === "image_url") {
      const data = parseDataUrl(part.image_url.url)
      if (data === undefined) {
        return Either.left(unsupported(`${param}.image_url.url`, `${param}: gemini models take images as base64 data: URLs`))
      }
      parts.push({ inlineData: { mimeType: data.mediaType, data: data.data } })
    } else if (part.type === "input_audio") {
      parts.push({ inlineData: { mimeType: `audio/${part.input_audio.format}`, data: part.input_audio.data } })
    } else return Either.left(unsupported(param, `${param}: content parts of type "${part.type}" are not supported by gemini models`))
  }
  return Either.right(parts)
}

/** Tool results name their call by id; Gemini wants the function's name. */
const functionResponse = (text: string): Record<string, unknown> => {
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>
    return { result: parsed }
  } catch {
    return { result: text }
  }
}

type Turn = { role: "user" | "model"; parts: Array<Part> }

/** System and developer messages, in order: Gemini's system instruction. */
export const systemParts = (messages: ReadonlyArray<Message>): Array<Part> =>
  messages.flatMap((m) => (m.role === "system" || m.role === "developer" ? [{ text: contentText(m.content) }] : []))

/** An assistant message: its text, then each tool call as a functionCall part (never no part at all). */
export const modelParts = (message: Extract<Message, { role: "assistant" }>, i: number): Either.Either<Array<Part>, UpstreamError> =>
  Either.gen(() => modelPartSteps(message, i))

// Each translation step is a module-level generator run by Either.gen: a `function*` written
// inside the arrow would be a new generator function, with its own initial map, every call.
function* modelPartSteps(message: Extract<Message, { role: "assistant" }>, i: number) {
  const parts: Array<Part> = []
  const text = contentText(message.content)
  if (text !== "") parts.push({ text })
  for (const [t, call] of (message.tool_calls ?? []).entries()) {
    const args = yield* parseArguments(call.function.arguments, `messages[${i}].tool_calls[${t}].function.arguments`)
    parts.push({ functionCall: { name: call.function.name, args: args as Record<string, unknown> } })
  }
  return parts.length > 0 ? parts : [{ text: "" }]
}

/** A tool result, under the name of the call it answers (Gemini names calls by function, OpenAI by id). */
const toolResultParts = (message: Extract<Message, { role: "tool" }>, i: number, toolNames: ReadonlyMap<string, string>): Either.Either<Array<Part>, UpstreamError> => {
  const name = toolNames.get(message.tool_call_id)
  if (name === undefined) {
    return Either.left(invalid(`messages[${i}].tool_call_id`, `messages[${i}].tool_call_id "${message.tool_call_id}" matches no earlier tool call`))
  }
  return Either.right([{ functionResponse: { name, response: functionResponse(contentText(message.content)) } }])
}

/** One message's turn, or undefined for a system prompt (which goes apart); `toolNames` are the calls made before it. */
const turnOf = (message: Message, i: number, toolNames: ReadonlyMap<string, string>): Either.Either<Turn | undefined, UpstreamError> => {
  switch (message.role) {
    case "system":
    case "developer":
      return Either.right(undefined)
    case "user":
      return Either.map(userParts(message, i), (parts): Turn => ({ role: "user", parts }))
    case "assistant":
      return Either.map(modelParts(message, i), (parts): Turn => ({ role: "model", parts }))
    case "tool":
      return Either.map(toolResultParts(message, i, toolNames), (parts): Turn => ({ role: "user", parts }))
  }
}

/** The conversation as Gemini's contents; consecutive turns of one role (parallel tool results) merge. */
export const contentsOf = (messages: ReadonlyArray<Message>): Either.Either<Array<Turn>, UpstreamError> => Either.gen(() => contentSteps(messages))

function* contentSteps(messages: ReadonlyArray<Message>) {
  const contents: Array<Turn> = []
  const toolNames = new Map<string, string>()
  for (const [i, message] of messages.entries()) {
    const turn = yield* turnOf(message, i, toolNames)
    if (message.role === "assistant") for (const call of message.tool_calls ?? []) toolNames.set(call.id, call.function.name)
    if (turn === undefined) continue
    const last = contents.at(-1)
    if (last !== undefined && last.role === turn.role) last.parts.push(...turn.parts)
    else contents.push(turn)
  }
  return contents
}

/** OpenAI's tool_choice as Gemini's function calling mode. */
export const toolConfigOf = (choice: ChatCompletionRequest["tool_choice"]): GenerateContentRequest["toolConfig"] =>
  choice === undefined
    ? undefined
    : typeof choice === "string"
    ? { functionCallingConfig: { mode: choice === "required" ? "ANY" : choice === "none" ? "NONE" : "AUTO" } }
    : { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function.name] } }

/** Sampling, length, stops and JSON mode; empty when the request sets none. */
const generationConfigOf = (request: ChatCompletionRequest) => {
  const format = request.response_format
  const stop = stopList(request.stop)
  const max = maxOutputTokens(request)
  return {
    ...(request.temperature == null ? {} : { temperature: request.temperature }),
    ...(request.top_p == null ? {} : { topP: request.top_p }),
    ...(max === undefined ? {} : { maxOutputTokens: max }),
    ...(stop === undefined ? {} : { stopSequences: stop }),
    ...(format === undefined || format.type === "text" ? {} : { responseMimeType: "application/json" }),
    ...(format?.type === "json_schema" && format.json_schema.schema !== undefined
      ? { responseJsonSchema: format.json_schema.schema }
      : {})
  }
}

/** The request's tools as function declarations, if it has any. */
const toolsOf = (request: ChatCompletionRequest) =>
  request.tools === undefined || request.tools.length === 0 ? {} : {
    tools: [{
      functionDeclarations: request.tools.map((tool) => ({
        name: tool.function.name,
        ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
        ...(tool.function.parameters === undefined ? {} : { parametersJsonSchema: tool.function.parameters })
      }))
    }]
  }

/** What Gemini cannot do at all: fields it has no counterpart for, one tool call at a time. */
const refuseUnsupported = (request: ChatCompletionRequest): Either.Either<void, UpstreamError> => Either.gen(() => refusalSteps(request))

function* refusalSteps(request: ChatCompletionRequest) {
  yield* refuseUntranslatable(request, "gemini", COMMON_FIELDS)
  if (request.parallel_tool_calls === false) {
    return yield* Either.left(unsupported("parallel_tool_calls", "gemini models cannot be told to call one tool at a time"))
  }
}

export const toGemini = (request: ChatCompletionRequest): Either.Either<GenerateContentRequest, UpstreamError> => Either.gen(() => translationSteps(request))

function* translationSteps(request: ChatCompletionRequest) {
  yield* refuseUnsupported(request)
  const contents = yield* contentsOf(request.messages)
  const system = systemParts(request.messages)
  const toolConfig = toolConfigOf(request.tool_choice)
  const generationConfig = generationConfigOf(request)
  return {
    contents: contents satisfies ReadonlyArray<Content>,
    ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}),
    ...toolsOf(request),
    ...(toolConfig === undefined ? {} : { toolConfig }),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {})
  }
}
