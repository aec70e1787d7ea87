/**
 * A chat stream as the Responses API's streaming events: response.created and
 * response.in_progress, then for the answer's text a message item (output_item.added,
 * content_part.added, output_text.delta…, output_text.done, content_part.done,
 * output_item.done), for each tool call a function_call item (with its arguments' deltas
 * and done), then response.completed (or response.incomplete when the answer was cut by
 * length or a content filter) with the whole response and usage. Every event carries its
 * sequence_number. Fed chunk by chunk; a stream that fails, or ends before it finished,
 * ends with response.failed, never with response.completed, so a client never takes a cut
 * answer for a whole one.
 */
import { randomUUID } from "node:crypto"
import type { ChatCompletionChunk, FinishReason, Usage } from "../../protocol/chat-response"
import { responseErrorCodeOf } from "./errors"
import { endingOf, functionCallItemId, messageItemId, outputTextOf, responseId, responseShell, usageOf } from "./from-chat"
import type { FunctionCall, OutputItem, OutputMessage, OutputTextPart, RefusalPart, ResponseObject, StreamEvent } from "./output"
import type { ResponsesRequest } from "./wire"

/** Omit over a union, member by member (a plain Omit collapses the union). */
type Unsequenced<E> = E extends StreamEvent ? Omit<E, "sequence_number"> : never

type OpenPart = { kind: "text"; text: string } | { kind: "refusal"; refusal: string }

type OpenItem =
  | { readonly kind: "message"; readonly index: number; readonly id: string; readonly parts: Array<OutputTextPart | RefusalPart>; part: OpenPart | undefined }
  | { readonly kind: "call"; readonly index: number; readonly chatIndex: number; readonly id: string; readonly callId: string; readonly name: string; arguments: string }

export class ResponsesStream {
  private sequence = 0
  private shell: ResponseObject | undefined
  private ended = false
  private item: OpenItem | undefined
  private readonly output: Array<OutputItem> = []
  private finish: FinishReason | null = null
  private usage: Usage | undefined

  constructor(private readonly request: ResponsesRequest, private readonly createdAt: number = Math.floor(Date.now() / 1000)) {}

  /** The events this chunk makes (none for a chunk with nothing to say). */
  push(chunk: ChatCompletionChunk): ReadonlyArray<StreamEvent> {
    if (this.ended) return []
    const events: Array<StreamEvent> = []
    if (this.shell === undefined) events.push(...this.start(responseId(chunk.id), chunk.model))
    if (chunk.usage !== undefined && chunk.usage !== null) this.usage = chunk.usage
    // One answer per Responses request: choices other than the first are not asked for.
    const choice = chunk.choices.find((c) => c.index === 0)
    if (choice === undefined) return events
    const { content, refusal, tool_calls } = choice.delta
    if (typeof content === "string" && content !== "") events.push(...this.text("text", content))
    if (typeof refusal === "string" && refusal !== "") events.push(...this.text("refusal", refusal))
    for (const call of tool_calls ?? []) {
      const current = this.item
      if (current?.kind !== "call" || current.chatIndex !== call.index) {
        events.push(...this.closeItem("completed"))
        events.push(...this.openCall(call.index, call.id ?? `call_${randomUUID().replaceAll("-", "")}`, call.function?.name ?? ""))
      }
      const open = this.item
      const partial = call.function?.arguments
      if (open?.kind === "call" && partial !== undefined && partial !== "") {
        open.arguments += partial
        events.push(this.event({ type: "response.function_call_arguments.delta", item_id: open.id, output_index: open.index, delta: partial }))
      }
    }
    if (choice.finish_reason !== null) this.finish = choice.finish_reason
    return events
  }

  /** The upstream stream ended whole: close the open item and the response. */
  end(): ReadonlyArray<StreamEvent> {
    if (this.ended) return []
    // A chat stream always has a chunk, and its last says why it finished: without either it was cut.
    if (this.shell === undefined) return this.fail(502, "The upstream stream ended before it sent anything")
    if (this.finish === null) return this.fail(502, "The upstream stream ended before the answer finished")
    const ending = endingOf(this.finish)
    const events = [...this.closeItem(ending.status === "completed" ? "completed" : "incomplete")]
    this.ended = true
    const response: ResponseObject = {
      ...this.snapshot(),
      ...ending,
      completed_at: Math.floor(Date.now() / 1000),
      ...(this.usage !== undefined ? { usage: usageOf(this.usage) } : {})
    }
    events.push(this.event({ type: ending.status === "completed" ? "response.completed" : "response.incomplete", response }))
    return events
  }

  /** The stream failed (status: what the same failure would have answered before the stream began): response.failed, and nothing after it. */
  fail(status: number, message: string): ReadonlyArray<StreamEvent> {
    if (this.ended) return []
    const events: Array<StreamEvent> = []
    if (this.shell === undefined) events.push(...this.start(`resp_${randomUUID().replaceAll("-", "")}`, this.request.model))
    this.ended = true
    const response: ResponseObject = { ...this.snapshot(), status: "failed", error: { code: responseErrorCodeOf(status), message } }
    events.push(this.event({ type: "response.failed", response }))
    return events
  }

  private event(event: Unsequenced<StreamEvent>): StreamEvent {
    return { ...event, sequence_number: this.sequence++ } as StreamEvent
  }

  private snapshot(): ResponseObject {
    const shell = this.shell ?? responseShell(this.request, "", this.request.model, this.createdAt)
    const output = [...this.output]
    return { ...shell, output, output_text: outputTextOf(output) }
  }

  private start(id: string, model: string): ReadonlyArray<StreamEvent> {
    this.shell = responseShell(this.request, id, model, this.createdAt)
    return [this.event({ type: "response.created", response: this.snapshot() }), this.event({ type: "response.in_progress", response: this.snapshot() })]
  }

  /** Text or refusal for the message item: opened, and its part switched, as needed. */
  private text(kind: OpenPart["kind"], delta: string): ReadonlyArray<StreamEvent> {
    const events: Array<StreamEvent> = []
    if (this.item?.kind !== "message") events.push(...this.closeItem("completed"), ...this.openMessage())
    const item = this.item
    if (item?.kind !== "message") return events
    if (item.part?.kind !== kind) {
      events.push(...this.closePart(item))
      item.part = kind === "text" ? { kind, text: "" } : { kind, refusal: "" }
      const part: OutputTextPart | RefusalPart = kind === "text" ? { type: "output_text", text: "", annotations: [], logprobs: [] } : { type: "refusal", refusal: "" }
      events.push(this.event({ type: "response.content_part.added", item_id: item.id, output_index: item.index, content_index: item.parts.length, part }))
    }
    const at = { item_id: item.id, output_index: item.index, content_index: item.parts.length }
    if (item.part.kind === "text") {
      item.part.text += delta
      events.push(this.event({ type: "response.output_text.delta", ...at, delta, logprobs: [] }))
    } else {
      item.part.refusal += delta
      events.push(this.event({ type: "response.refusal.delta", ...at, delta }))
    }
    return events
  }

  private openMessage(): ReadonlyArray<StreamEvent> {
    const index = this.output.length
    // Text after a tool call (rare) opens a second message: item ids stay unique.
    const id = `${messageItemId(this.shell?.id ?? "")}${index === 0 ? "" : `_${index}`}`
    this.item = { kind: "message", index, id, parts: [], part: undefined }
    const item: OutputMessage = { type: "message", id, role: "assistant", status: "in_progress", content: [] }
    return [this.event({ type: "response.output_item.added", output_index: index, item })]
  }

  private openCall(chatIndex: number, callId: string, name: string): ReadonlyArray<StreamEvent> {
    const id = functionCallItemId(callId)
    const index = this.output.length
    this.item = { kind: "call", index, chatIndex, id, callId, name, arguments: "" }
    const item: FunctionCall = { type: "function_call", id, call_id: callId, name, arguments: "", status: "in_progress" }
    return [this.event({ type: "response.output_item.added", output_index: index, item })]
  }

  private closePart(item: Extract<OpenItem, { kind: "message" }>): ReadonlyArray<StreamEvent> {
    const open = item.part
    if (open === undefined) return []
    item.part = undefined
    const at = { item_id: item.id, output_index: item.index, content_index: item.parts.length }
    if (open.kind === "text") {
      const part: OutputTextPart = { type: "output_text", text: open.text, annotations: [], logprobs: [] }
      item.parts.push(part)
      return [this.event({ type: "response.output_text.done", ...at, text: open.text, logprobs: [] }), this.event({ type: "response.content_part.done", ...at, part })]
    }
    const part: RefusalPart = { type: "refusal", refusal: open.refusal }
    item.parts.push(part)
    return [this.event({ type: "response.refusal.done", ...at, refusal: open.refusal }), this.event({ type: "response.content_part.done", ...at, part })]
  }

  /** Closes the open item, which joins the response's output. */
  private closeItem(status: "completed" | "incomplete"): ReadonlyArray<StreamEvent> {
    const open = this.item
    if (open === undefined) return []
    this.item = undefined
    if (open.kind === "message") {
      const events = [...this.closePart(open)]
      const item: OutputMessage = { type: "message", id: open.id, role: "assistant", status, content: [...open.parts] }
      this.output.push(item)
      events.push(this.event({ type: "response.output_item.done", output_index: open.index, item }))
      return events
    }
    const item: FunctionCall = { type: "function_call", id: open.id, call_id: open.callId, name: open.name, arguments: open.arguments, status: "completed" }
    this.output.push(item)
    return [
      this.event({ type: "response.function_call_arguments.done", item_id: open.id, output_index: open.index, name: open.name, arguments: open.arguments }),
      this.event({ type: "response.output_item.done", output_index: open.index, item })
    ]
  }
}

/** One event as Server-Sent Events write it: its type as the event name, its JSON as data. */
export const sseEvent = (event: StreamEvent): string => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`
