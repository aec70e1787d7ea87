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

type Turn = { role: "user" | "assistant"; content: Array<RequestBlock> }

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

export const toAnthropic = (request: ChatCompletionRequest, deployment: Deployment): Either.Either<Translated, UpstreamError> =>
  Either.gen(function*() {
    yield* refuseUntranslatable(request, "anthropic", COMMON_FIELDS)
    if (request.temperature != null && request.temperature > 1) {
      return yield* Either.left(unsupported("temperature", "anthropic models take a temperature between 0 and 1"))
    }
    const system: Array<string> = []
    const turns: Array<Turn> = []
    const push = (role: Turn["role"], blocks: Array<RequestBlock>) => {
      const last = turns[turns.length - 1]
      // Anthropic wants alternating turns; consecutive ones (e.g. parallel tool results) merge.
      if (last !== undefined && last.role === role) last.content.push(...blocks)
      else turns.push({ role, content: blocks })
    }

    for (const [i, message] of request.messages.entries()) {
      switch (message.role) {
        case "system":
        case "developer":
          system.push(contentText(message.content))
          break
        case "user":
          push("user", yield* userBlocks(message, i))
          break
        case "assistant": {
          const blocks: Array<RequestBlock> = []
          const text = contentText(message.content)
          if (text !== "") blocks.push({ type: "text", text })
          for (const [t, call] of (message.tool_calls ?? []).entries()) {
            const input = yield* parseArguments(call.function.arguments, `messages[${i}].tool_calls[${t}].function.arguments`)
            blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input })
          }
          if (blocks.length === 0) blocks.push({ type: "text", text: "" })
          push("assistant", blocks)
          break
        }
        case "tool":
          push("user", [{ type: "tool_result", tool_use_id: message.tool_call_id, content: contentText(message.content) }])
          break
      }
    }

    const format = request.response_format
    const jsonTool = format === undefined || format.type === "text"
      ? undefined
      : format.type === "json_schema" ? format.json_schema.name : "json_object"
    if (jsonTool !== undefined && (request.tools?.length ?? 0) > 0) {
      return yield* Either.left(
        unsupported("response_format", "anthropic models cannot combine response_format with tools in one request")
      )
    }

    const tools = jsonTool !== undefined && format !== undefined && format.type !== "text"
      ? [{
        name: jsonTool,
        description: "Reply by calling this tool with the answer as its input.",
        input_schema: format.type === "json_schema" ? format.json_schema.schema ?? { type: "object" } : { type: "object" }
      }]
      : request.tools?.map((tool) => ({
        name: tool.function.name,
        ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
        input_schema: tool.function.parameters ?? { type: "object", properties: {} }
      }))

    const choice = request.tool_choice
    const disableParallel = request.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {}
    const toolChoice: MessagesRequest["tool_choice"] = jsonTool !== undefined
      ? { type: "tool", name: jsonTool }
      : choice === undefined
      ? (request.parallel_tool_calls === false && tools !== undefined ? { type: "auto", ...disableParallel } : undefined)
      : typeof choice === "string"
      ? { type: choice === "required" ? "any" : choice, ...(choice === "none" ? {} : disableParallel) }
      : { type: "tool", name: choice.function.name, ...disableParallel }
    if (choice !== undefined && tools === undefined && choice !== "none") {
      return yield* Either.left(invalid("tool_choice", "tool_choice needs tools"))
    }

    const stop = stopList(request.stop)
    const body: MessagesRequest = {
      model: deployment.upstreamModel,
      max_tokens: maxOutputTokens(request) ?? deployment.maxTokensDefault,
      messages: turns,
      ...(system.length > 0 ? { system: system.join("\n\n") } : {}),
      ...(stop === undefined ? {} : { stop_sequences: stop }),
      ...(request.temperature == null ? {} : { temperature: request.temperature }),
      ...(request.top_p == null ? {} : { top_p: request.top_p }),
      ...(tools === undefined ? {} : { tools }),
      ...(toolChoice === undefined ? {} : { tool_choice: toolChoice }),
      ...(request.user === undefined ? {} : { metadata: { user_id: request.user } })
    }
    return { body, jsonTool }
  })
