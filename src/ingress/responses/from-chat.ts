/**
 * A chat completion as the Responses API's `response` object: the first choice's text (or
 * refusal) as one message item, each tool call as a function_call item after it, usage
 * with input/output names, and the request's settings echoed as OpenAI echoes them. A
 * finish by length or content filter is an `incomplete` response with its reason.
 */
import type { ChatCompletion, FinishReason, Usage } from "../../protocol/chat-response"
import type { FunctionCall, OutputItem, OutputMessage, ResponseObject, ResponseUsage } from "./output"
import type { ResponsesRequest } from "./wire"

export const responseId = (chatId: string): string => `resp_${chatId.replace(/^chatcmpl-/, "")}`
export const messageItemId = (responseId: string): string => `msg_${responseId.replace(/^resp_/, "")}`
export const functionCallItemId = (callId: string): string => `fc_${callId.replace(/^call_/, "")}`

export const usageOf = (usage: Usage): ResponseUsage => ({
  input_tokens: usage.prompt_tokens,
  input_tokens_details: { cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0, cache_write_tokens: 0 },
  output_tokens: usage.completion_tokens,
  output_tokens_details: { reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0 },
  total_tokens: usage.total_tokens
})

/** How the answer ended, as a response's status and incomplete_details. */
export const endingOf = (finish: FinishReason | null): Pick<ResponseObject, "status" | "incomplete_details"> => {
  if (finish === "length") return { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } }
  if (finish === "content_filter") return { status: "incomplete", incomplete_details: { reason: "content_filter" } }
  return { status: "completed", incomplete_details: null }
}

export const outputTextOf = (output: ReadonlyArray<OutputItem>): string =>
  output.flatMap((item) => (item.type === "message" ? item.content.flatMap((part) => (part.type === "output_text" ? [part.text] : [])) : [])).join("")

/**
 * A response as it stands before its answer: the request's settings echoed, no output.
 * `status` and the rest are filled in by the caller (whole answer, or each stream event).
 */
export const responseShell = (request: ResponsesRequest, id: string, model: string, createdAt: number): ResponseObject => ({
  id,
  object: "response",
  created_at: createdAt,
  completed_at: null,
  status: "in_progress",
  error: null,
  incomplete_details: null,
  instructions: request.instructions ?? null,
  max_output_tokens: request.max_output_tokens ?? null,
  model,
  output: [],
  output_text: "",
  parallel_tool_calls: request.parallel_tool_calls ?? true,
  previous_response_id: null,
  temperature: request.temperature ?? null,
  top_p: request.top_p ?? null,
  tool_choice: echoedToolChoice(request),
  tools: (request.tools ?? []).flatMap((tool) => {
    if (tool.type !== "function") return []
    const fn = tool as Extract<typeof tool, { type: "function" }>
    return [{ type: "function" as const, name: fn.name, description: fn.description ?? null, parameters: fn.parameters ?? null, strict: fn.strict ?? null }]
  }),
  text: { format: request.text?.format ?? { type: "text" } },
  metadata: request.metadata ?? null,
  ...(request.user !== undefined ? { user: request.user } : {}),
  ...(request.safety_identifier != null ? { safety_identifier: request.safety_identifier } : {}),
  store: false
})

const echoedToolChoice = (request: ResponsesRequest): ResponseObject["tool_choice"] => {
  const choice = request.tool_choice
  if (choice === undefined) return "auto"
  if (typeof choice === "string") return choice
  // Other kinds were refused by to-chat.ts before any answer.
  return { type: "function", name: (choice as { name?: string }).name ?? "" }
}

export const fromChatCompletion = (completion: ChatCompletion, request: ResponsesRequest): ResponseObject => {
  // The Responses API has one answer per request: the first choice is it (n is never sent).
  const choice = completion.choices[0]
  const id = responseId(completion.id)
  const ending = endingOf(choice?.finish_reason ?? null)
  const itemStatus = ending.status === "completed" ? "completed" : "incomplete"
  const output: Array<OutputItem> = []
  const content: OutputMessage["content"] = []
  const text = choice?.message.content ?? null
  if (text !== null && text !== "") content.push({ type: "output_text", text, annotations: [], logprobs: [] })
  const refusal = choice?.message.refusal ?? null
  if (refusal !== null && refusal !== "") content.push({ type: "refusal", refusal })
  if (content.length > 0) output.push({ type: "message", id: messageItemId(id), role: "assistant", status: itemStatus, content })
  for (const call of choice?.message.tool_calls ?? []) {
    const item: FunctionCall = { type: "function_call", id: functionCallItemId(call.id), call_id: call.id, name: call.function.name, arguments: call.function.arguments, status: "completed" }
    output.push(item)
  }
  return {
    ...responseShell(request, id, completion.model, completion.created),
    ...ending,
    completed_at: completion.created,
    output,
    output_text: outputTextOf(output),
    ...(completion.usage !== undefined ? { usage: usageOf(completion.usage) } : {})
  }
}
