/**
 * A chat stream as the events of Anthropic's Messages stream: message_start, then for each
 * content block (the text, then each tool use) a start, its deltas and a stop, then
 * message_delta with the stop reason and usage, and message_stop. Fed chunk by chunk; a
 * stream that fails ends with an `error` event, never with message_stop, so a client
 * never takes a cut answer for a whole one.
 */
import type { ChatCompletionChunk, FinishReason, Usage } from "../../protocol/chat-response"
import { anthropicError } from "./errors"
import { messageId, stopReasonOf, usageOf } from "./from-chat"

export interface StreamEvent {
  readonly type: string
  readonly [field: string]: unknown
}

type OpenBlock = { readonly kind: "text" } | { readonly kind: "tool"; readonly toolIndex: number }

export class AnthropicStream {
  private started = false
  private ended = false
  private block: OpenBlock | undefined
  private index = -1
  private finish: FinishReason | null = null
  private usage: Usage | undefined

  /** The events this chunk makes (none for a chunk with nothing to say). */
  push(chunk: ChatCompletionChunk): ReadonlyArray<StreamEvent> {
    if (this.ended) return []
    const events: Array<StreamEvent> = []
    if (!this.started) events.push(this.start(chunk))
    if (chunk.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage
    // One answer per Messages request: choices other than the first are not asked for.
    const choice = chunk.choices.find((c) => c.index === 0)
    if (choice === undefined) return events
    const { content, refusal, tool_calls } = choice.delta
    const text = content ?? refusal
    if (typeof text === "string" && text !== "") {
      if (this.block?.kind !== "text") events.push(...this.open({ kind: "text" }, { type: "text", text: "", citations: null }))
      events.push({ type: "content_block_delta", index: this.index, delta: { type: "text_delta", text } })
    }
    for (const call of tool_calls ?? []) {
      const current = this.block
      if (current?.kind !== "tool" || current.toolIndex !== call.index) {
        const toolUse = { type: "tool_use", id: call.id ?? `toolu_${this.index + 1}`, name: call.function?.name ?? "", input: {}, caller: { type: "direct" } }
        events.push(...this.open({ kind: "tool", toolIndex: call.index }, toolUse))
      }
      const partial = call.function?.arguments
      if (partial !== undefined && partial !== "") events.push({ type: "content_block_delta", index: this.index, delta: { type: "input_json_delta", partial_json: partial } })
    }
    if (choice.finish_reason !== null) this.finish = choice.finish_reason
    return events
  }

  /** The upstream stream ended whole: close the open block and the message. */
  end(): ReadonlyArray<StreamEvent> {
    if (this.ended) return []
    // A chat stream always has a chunk: one that ended without any was cut before it began.
    if (!this.started) return this.fail(502, "The upstream stream ended before it sent anything")
    this.ended = true
    const usage = usageOf(this.usage)
    return [
      ...this.close(),
      {
        type: "message_delta",
        delta: { stop_reason: stopReasonOf(this.finish) ?? "end_turn", stop_sequence: null, stop_details: null, container: null },
        usage: { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, cache_creation_input_tokens: null, cache_read_input_tokens: usage.cache_read_input_tokens, output_tokens_details: null, server_tool_use: null }
      },
      { type: "message_stop" }
    ]
  }

  /** The stream failed: an error event, and nothing after it. */
  fail(status: number, message: string): ReadonlyArray<StreamEvent> {
    if (this.ended) return []
    this.ended = true
    return [anthropicError(status, message)]
  }

  private start(chunk: ChatCompletionChunk): StreamEvent {
    this.started = true
    return {
      type: "message_start",
      message: {
        id: messageId(chunk.id),
        type: "message",
        role: "assistant",
        model: chunk.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        stop_details: null,
        container: null,
        diagnostics: null,
        // A chat stream tells its usage only at the end: message_delta carries it.
        usage: usageOf(undefined)
      }
    }
  }

  private open(block: OpenBlock, contentBlock: Record<string, unknown>): ReadonlyArray<StreamEvent> {
    const closed = this.close()
    this.block = block
    this.index++
    return [...closed, { type: "content_block_start", index: this.index, content_block: contentBlock }]
  }

  private close(): ReadonlyArray<StreamEvent> {
    if (this.block === undefined) return []
    this.block = undefined
    return [{ type: "content_block_stop", index: this.index }]
  }
}

/** One event as Server-Sent Events write it: its type as the event name, its JSON as data. */
export const sseEvent = (event: StreamEvent): string => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
