/**
 * An Anthropic Messages API server, per Anthropic's API reference: it checks the headers
 * and required fields as the real API does (400 on a missing max_tokens or an unknown
 * field), answers with content blocks, and streams named SSE events from message_start
 * to message_stop.
 */
import { type FakeServer, json, lastUserText, startFake, writeSse } from "./fake-server"
import { pieces, sampleFor } from "./sample-json"

export const ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"

const KNOWN = new Set(["model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p", "top_k", "stream", "tools", "tool_choice", "metadata"])

const error = (type: string, message: string) => ({ type: "error", error: { type, message } })

export const startAnthropicFake = (): Promise<FakeServer> =>
  startFake(async ({ received, res, fault }) => {
    if (received.url !== "/v1/messages") return json(res, 404, error("not_found_error", "Not found"))
    if (received.headers["x-api-key"] !== ANTHROPIC_KEY) return json(res, 401, error("authentication_error", "invalid x-api-key"))
    if (received.headers["anthropic-version"] === undefined) return json(res, 400, error("invalid_request_error", "anthropic-version: header is required"))
    const body = received.body
    const extra = Object.keys(body).find((k) => !KNOWN.has(k))
    if (extra !== undefined) return json(res, 400, error("invalid_request_error", `${extra}: Extra inputs are not permitted`))
    if (typeof body.max_tokens !== "number") return json(res, 400, error("invalid_request_error", "max_tokens: Field required"))
    if (body.messages.some((m: any) => m.role !== "user" && m.role !== "assistant")) {
      return json(res, 400, error("invalid_request_error", "messages: roles must be user or assistant"))
    }

    const text = lastUserText(body.messages)
    const forced = body.tool_choice?.type === "tool" ? body.tools.find((t: any) => t.name === body.tool_choice.name) : undefined
    const tool = forced ?? (body.tools?.length > 0 && /weather/i.test(text) ? body.tools[0] : undefined)
    const input = forced !== undefined ? sampleFor(forced.input_schema) : { city: "Paris" }
    const answer = `Echo: ${text}`
    const id = "msg_fake01"
    const usage = { input_tokens: 12, output_tokens: 6, cache_read_input_tokens: 3, cache_creation_input_tokens: 0 }
    const stopReason = tool !== undefined ? "tool_use" : "end_turn"
    const block = tool !== undefined
      ? { type: "tool_use", id: "toolu_fake01", name: tool.name, input }
      : { type: "text", text: answer }

    if (body.stream !== true) {
      return json(res, 200, { id, type: "message", role: "assistant", model: body.model, content: [block], stop_reason: stopReason, stop_sequence: null, usage })
    }
    const ev = (event: string, data: unknown) => ({ event, data: JSON.stringify({ type: event, ...(data as object) }) })
    const events = [
      ev("message_start", { message: { id, type: "message", role: "assistant", model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } } }),
      ev("content_block_start", { index: 0, content_block: tool !== undefined ? { ...block, input: {} } : { type: "text", text: "" } }),
      ev("ping", {})
    ]
    if (tool !== undefined) {
      const args = JSON.stringify(input)
      for (const part of [args.slice(0, 4), args.slice(4)]) {
        events.push(ev("content_block_delta", { index: 0, delta: { type: "input_json_delta", partial_json: part } }))
      }
    } else {
      for (const piece of pieces(answer)) events.push(ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: piece } }))
    }
    events.push(
      ev("content_block_stop", { index: 0 }),
      ev("message_delta", { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }),
      ev("message_stop", {})
    )
    await writeSse(res, events, fault)
  })
