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

export const toGemini = (request: ChatCompletionRequest): Either.Either<GenerateContentRequest, UpstreamError> =>
  Either.gen(function*() {
    yield* refuseUntranslatable(request, "gemini", COMMON_FIELDS)
    if (request.parallel_tool_calls === false) {
      return yield* Either.left(unsupported("parallel_tool_calls", "gemini models cannot be told to call one tool at a time"))
    }
    const system: Array<Part> = []
    const contents: Array<{ role: "user" | "model"; parts: Array<Part> }> = []
    const toolNames = new Map<string, string>()
    const push = (role: "user" | "model", parts: Array<Part>) => {
      const last = contents[contents.length - 1]
      if (last !== undefined && last.role === role) last.parts.push(...parts)
      else contents.push({ role, parts })
    }

    for (const [i, message] of request.messages.entries()) {
      switch (message.role) {
        case "system":
        case "developer":
          system.push({ text: contentText(message.content) })
          break
        case "user":
          push("user", yield* userParts(message, i))
          break
        case "assistant": {
          const parts: Array<Part> = []
          const text = contentText(message.content)
          if (text !== "") parts.push({ text })
          for (const [t, call] of (message.tool_calls ?? []).entries()) {
            const args = yield* parseArguments(call.function.arguments, `messages[${i}].tool_calls[${t}].function.arguments`)
            toolNames.set(call.id, call.function.name)
            parts.push({ functionCall: { name: call.function.name, args: args as Record<string, unknown> } })
          }
          push("model", parts.length > 0 ? parts : [{ text: "" }])
          break
        }
        case "tool": {
          const name = toolNames.get(message.tool_call_id)
          if (name === undefined) {
            return yield* Either.left(
              invalid(`messages[${i}].tool_call_id`, `messages[${i}].tool_call_id "${message.tool_call_id}" matches no earlier tool call`)
            )
          }
          push("user", [{ functionResponse: { name, response: functionResponse(contentText(message.content)) } }])
          break
        }
      }
    }

    const choice = request.tool_choice
    const toolConfig: GenerateContentRequest["toolConfig"] = choice === undefined
      ? undefined
      : typeof choice === "string"
      ? { functionCallingConfig: { mode: choice === "required" ? "ANY" : choice === "none" ? "NONE" : "AUTO" } }
      : { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function.name] } }

    const format = request.response_format
    const stop = stopList(request.stop)
    const max = maxOutputTokens(request)
    const generationConfig = {
      ...(request.temperature == null ? {} : { temperature: request.temperature }),
      ...(request.top_p == null ? {} : { topP: request.top_p }),
      ...(max === undefined ? {} : { maxOutputTokens: max }),
      ...(stop === undefined ? {} : { stopSequences: stop }),
      ...(format === undefined || format.type === "text" ? {} : { responseMimeType: "application/json" }),
      ...(format?.type === "json_schema" && format.json_schema.schema !== undefined
        ? { responseJsonSchema: format.json_schema.schema }
        : {})
    }

    return {
      contents: contents satisfies ReadonlyArray<Content>,
      ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}),
      ...(request.tools === undefined || request.tools.length === 0 ? {} : {
        tools: [{
          functionDeclarations: request.tools.map((tool) => ({
            name: tool.function.name,
            ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
            ...(tool.function.parameters === undefined ? {} : { parametersJsonSchema: tool.function.parameters })
          }))
        }]
      }),
      ...(toolConfig === undefined ? {} : { toolConfig }),
      ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {})
    }
  })
