/**
 * A streamed answer and the same answer whole. The cache keeps one form of an answer and
 * serves either: a stream is assembled as it passes (chunks → completion), and a cached
 * completion is replayed to a streaming client as chunks of OpenAI's stream format.
 */
import type { ToolCall } from "./chat-request"
import type { ChatCompletion, ChatCompletionChunk, Choice, FinishReason, Usage } from "./chat-response"

interface ChoiceSoFar {
  content: string | null
  refusal: string | null
  toolCalls: Array<{ id: string; name: string; arguments: string }>
  finish: FinishReason | null
}

const emptyChoice = (): ChoiceSoFar => ({ content: null, refusal: null, toolCalls: [], finish: null })

/** Folds stream chunks, in order, into the completion they spell. */
export class StreamAssembler {
  private readonly choices = new Map<number, ChoiceSoFar>()
  private first: ChatCompletionChunk | undefined
  private usage: Usage | undefined

  push(chunk: ChatCompletionChunk): void {
    this.first ??= chunk
    if (chunk.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage
    for (const c of chunk.choices) {
      let so = this.choices.get(c.index)
      if (so === undefined) this.choices.set(c.index, (so = emptyChoice()))
      const { content, refusal, tool_calls } = c.delta
      if (typeof content === "string") so.content = (so.content ?? "") + content
      if (typeof refusal === "string") so.refusal = (so.refusal ?? "") + refusal
      for (const t of tool_calls ?? []) {
        const call = (so.toolCalls[t.index] ??= { id: "", name: "", arguments: "" })
        if (t.id !== undefined) call.id = t.id
        if (t.function?.name !== undefined) call.name += t.function.name
        if (t.function?.arguments !== undefined) call.arguments += t.function.arguments
      }
      if (c.finish_reason !== null) so.finish = c.finish_reason
    }
  }

  /** The completion, or undefined when no choice finished (a stream cut short is not an answer). */
  completion(): ChatCompletion | undefined {
    const first = this.first
    if (first === undefined || this.choices.size === 0) return undefined
    const choices: Array<Choice> = []
    for (const [index, so] of [...this.choices].sort(([a], [b]) => a - b)) {
      if (so.finish === null) return undefined
      const toolCalls: Array<ToolCall> = so.toolCalls.filter((t) => t !== undefined).map((t) => ({ id: t.id, type: "function", function: { name: t.name, arguments: t.arguments } }))
      choices.push({
        index,
        message: { role: "assistant", content: so.content, refusal: so.refusal, ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}) },
        finish_reason: so.finish
      })
    }
    return {
      id: first.id,
      object: "chat.completion",
      created: first.created,
      model: first.model,
      choices,
      ...(this.usage !== undefined ? { usage: this.usage } : {}),
      ...(first.system_fingerprint !== undefined ? { system_fingerprint: first.system_fingerprint } : {})
    }
  }
}

/**
 * The chunks a stream of this completion sends: per choice, the role and the text, then
 * the tool calls, then the finish reason; the usage chunk last when the client asked for it.
 */
export const completionChunks = (completion: ChatCompletion, includeUsage: boolean): ReadonlyArray<ChatCompletionChunk> => {
  const head = { id: completion.id, object: "chat.completion.chunk" as const, created: completion.created, model: completion.model, ...(completion.system_fingerprint !== undefined ? { system_fingerprint: completion.system_fingerprint } : {}) }
  const chunks: Array<ChatCompletionChunk> = []
  for (const choice of completion.choices) {
    const { content, refusal, tool_calls } = choice.message
    chunks.push({ ...head, choices: [{ index: choice.index, delta: { role: "assistant", content: content ?? (refusal === null ? "" : null), ...(refusal !== null ? { refusal } : {}) }, finish_reason: null }] })
    if (tool_calls !== undefined && tool_calls.length > 0) {
      const deltas = tool_calls.map((t, index) => ({ index, id: t.id, type: "function" as const, function: { name: t.function.name, arguments: t.function.arguments } }))
      chunks.push({ ...head, choices: [{ index: choice.index, delta: { tool_calls: deltas }, finish_reason: null }] })
    }
    chunks.push({ ...head, choices: [{ index: choice.index, delta: {}, finish_reason: choice.finish_reason }] })
  }
  if (includeUsage && completion.usage !== undefined) chunks.push({ ...head, choices: [], usage: completion.usage })
  return chunks
}
