/**
 * An OpenAI chat-completions server, per OpenAI's API reference: JSON responses, SSE
 * chunks ending in `data: [DONE]`, tool-call deltas, usage when asked, errors in
 * OpenAI's error shape (echoing a bad key the way OpenAI does, to test redaction).
 */
import { type FakeServer, json, lastUserText, startFake, writeSse } from "./fake-server"
import { pieces, sampleFor } from "./sample-json"

export const OPENAI_KEY = "sk-test-openai-0123456789abcdef"

/** A text's vector, the same every time: its length and two figures of its characters, cut or padded to `dimensions`. */
export const fakeVector = (text: string, dimensions = 4): Array<number> => {
  const codes = [...text].map((c) => c.codePointAt(0)!)
  const base = [text.length, codes.reduce((a, b) => a + b, 0) % 97, codes[0] ?? 0, codes.at(-1) ?? 0]
  return Array.from({ length: dimensions }, (_, i) => (base[i % base.length]! + i) / 100)
}

const embeddings = (body: any) => {
  const inputs: Array<string> = typeof body.input === "string" ? [body.input] : body.input.map((item: unknown) => (typeof item === "string" ? item : JSON.stringify(item)))
  const tokens = inputs.reduce((sum, text) => sum + text.split(/\s+/).filter(Boolean).length, 0)
  return {
    object: "list",
    data: inputs.map((text, index) => {
      const vector = fakeVector(text, body.dimensions)
      return { object: "embedding", index, embedding: body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector }
    }),
    model: body.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens }
  }
}

/** `answerAfter`: each answer waits for it (an event another part of the test sends), not for a time. */
export const startOpenAIFake = (options: { latencyMs?: number; answerAfter?: () => Promise<unknown> } = {}): Promise<FakeServer> =>
  startFake(async ({ received, res, fault }) => {
    if (received.url !== "/v1/chat/completions" && received.url !== "/v1/embeddings") {
      return json(res, 404, { error: { message: "not found", type: "invalid_request_error", param: null, code: null } })
    }
    const auth = received.headers.authorization
    if (auth !== `Bearer ${OPENAI_KEY}`) {
      return json(res, 401, {
        error: { message: `Incorrect API key provided: ${String(auth).replace("Bearer ", "")}.`, type: "invalid_request_error", param: null, code: "invalid_api_key" }
      })
    }
    if (received.url === "/v1/embeddings") return json(res, 200, embeddings(received.body))
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs))
    if (options.answerAfter) await options.answerAfter()
    const body = received.body
    const id = `chatcmpl-fake${received.headers["x-request-n"] ?? ""}`
    const created = 1_700_000_000
    const model = body.model
    const text = lastUserText(body.messages)
    const tool = body.tools?.length > 0 && /weather/i.test(text) ? body.tools[0].function.name : undefined
    const format = body.response_format
    const content = tool !== undefined
      ? null
      : format?.type === "json_schema"
      ? JSON.stringify(sampleFor(format.json_schema.schema))
      : format?.type === "json_object"
      ? JSON.stringify({ answer: "Paris" })
      : `Echo: ${text}`
    const args = JSON.stringify({ city: "Paris" })
    const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }
    const finish = tool !== undefined ? "tool_calls" : "stop"

    if (body.stream !== true) {
      // Like vLLM or DeepSeek: sometimes no logprobs, sometimes fields of the provider's own.
      const sparse = /sparse/.test(text)
      return json(res, 200, {
        id, object: "chat.completion", created, model,
        choices: [{
          index: 0,
          message: {
            role: "assistant", content, refusal: null,
            ...(sparse ? { reasoning_content: "thought about it" } : {}),
            ...(tool === undefined ? {} : { tool_calls: [{ id: "call_abc", type: "function", function: { name: tool, arguments: args } }] })
          },
          ...(sparse ? {} : { logprobs: null }),
          finish_reason: finish
        }],
        usage,
        system_fingerprint: "fp_fake"
      })
    }

    const chunk = (delta: unknown, finish_reason: string | null = null) =>
      JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason }] })
    const events = [{ data: chunk({ role: "assistant", content: "", refusal: null }) }]
    if (tool !== undefined) {
      events.push({ data: chunk({ tool_calls: [{ index: 0, id: "call_abc", type: "function", function: { name: tool, arguments: "" } }] }) })
      for (const part of [args.slice(0, 5), args.slice(5)]) {
        events.push({ data: chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }) })
      }
    } else {
      for (const piece of pieces(content ?? "")) events.push({ data: chunk({ content: piece }) })
    }
    events.push({ data: chunk({}, finish) })
    if (body.stream_options?.include_usage) {
      events.push({ data: JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage }) })
    }
    events.push({ data: "[DONE]" })
    await writeSse(res, events, fault)
  })
