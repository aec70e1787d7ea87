/**
 * The steps of the Anthropic and Gemini request translations, each on its own: where the
 * system prompt goes, how turns merge, how tool calls and their results are mapped, how
 * image parts are sent, and what is refused (with the field named). The whole
 * translation is tested over HTTP against fake upstreams in translation.test.ts.
 */
import { Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ChatCompletionRequest, Message } from "../src/protocol/chat-request"
import { assistantBlocks, systemPrompt, toolChoiceOf, toolsOf, turnsOf } from "../src/providers/anthropic/request"
import { makeStreamTranslator } from "../src/providers/anthropic/response"
import type { StreamEvent } from "../src/providers/anthropic/wire"
import { contentsOf, systemParts, toolConfigOf } from "../src/providers/gemini/request"

const messages = Schema.decodeUnknownSync(Schema.Array(Message))
const request = Schema.decodeUnknownSync(ChatCompletionRequest)

/** The Left of an Either that must have failed, as what a client would read of it. */
const failure = <A, E extends { readonly kind: string; readonly param?: string | undefined; readonly message: string }>(result: Either.Either<A, E>) => {
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return { kind: result.left.kind, param: result.left.param, message: result.left.message }
}

const PNG = "data:image/png;base64,iVBORw0KGgo="

const toolConversation = messages([
  { role: "system", content: "Be terse." },
  { role: "user", content: "weather in Paris and Rome?" },
  {
    role: "assistant",
    content: null,
    tool_calls: [
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } },
      { id: "call_2", type: "function", function: { name: "get_time", arguments: "{\"city\":\"Rome\"}" } }
    ]
  },
  { role: "tool", tool_call_id: "call_1", content: "{\"celsius\":21}" },
  { role: "tool", tool_call_id: "call_2", content: "noon" },
  { role: "user", content: "thanks" }
])

describe("Anthropic request steps", () => {
  it("systemPrompt joins system and developer messages in order, and is absent without them", () => {
    expect(systemPrompt(messages([
      { role: "system", content: "One." },
      { role: "user", content: "hi" },
      { role: "developer", content: [{ type: "text", text: "Two." }] }
    ]))).toBe("One.\n\nTwo.")
    expect(systemPrompt(messages([{ role: "user", content: "hi" }]))).toBeUndefined()
  })

  it("turnsOf leaves system messages out, sends images as base64 or by URL, and merges consecutive turns of one role", () => {
    const turns = Either.getOrThrow(turnsOf(messages([
      { role: "system", content: "Be terse." },
      { role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: PNG } }] },
      { role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }
    ])))
    expect(turns).toEqual([{
      role: "user",
      content: [
        { type: "text", text: "what is this?" },
        { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
        { type: "image", source: { type: "url", url: "https://example.com/cat.png" } }
      ]
    }])
  })

  it("turnsOf maps tool calls to tool_use blocks and parallel tool results to one user turn, the next user message included", () => {
    const turns = Either.getOrThrow(turnsOf(toolConversation))
    expect(turns).toEqual([
      { role: "user", content: [{ type: "text", text: "weather in Paris and Rome?" }] },
      {
        role: "assistant",
        content: [
          { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "call_2", name: "get_time", input: { city: "Rome" } }
        ]
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "call_1", content: "{\"celsius\":21}" },
          { type: "tool_result", tool_use_id: "call_2", content: "noon" },
          { type: "text", text: "thanks" }
        ]
      }
    ])
  })

  it("turnsOf refuses a content part Anthropic cannot take, naming it", () => {
    const refused = failure(turnsOf(messages([
      { role: "user", content: [{ type: "text", text: "listen" }, { type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }] }
    ])))
    expect(refused.kind).toBe("unsupported")
    expect(refused.param).toBe("messages[0].content[1]")
  })

  it("assistantBlocks keeps the text before the calls, sends an empty text block for an empty message, and names bad arguments", () => {
    const [withText, empty, broken] = messages([
      { role: "assistant", content: "Let me look.", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] },
      { role: "assistant", content: "" },
      { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{not json" } }] }
    ])
    if (withText?.role !== "assistant" || empty?.role !== "assistant" || broken?.role !== "assistant") throw new Error("assistant messages expected")
    expect(Either.getOrThrow(assistantBlocks(withText, 2))).toEqual([
      { type: "text", text: "Let me look." },
      { type: "tool_use", id: "c", name: "f", input: {} }
    ])
    expect(Either.getOrThrow(assistantBlocks(empty, 2))).toEqual([{ type: "text", text: "" }])
    expect(failure(assistantBlocks(broken, 2)).param).toBe("messages[2].tool_calls[0].function.arguments")
  })

  it("toolsOf and toolChoiceOf: tools with an empty object schema by default, required as any, parallel calls turned off, the JSON tool forced", () => {
    const withTools = request({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      tools: [{ type: "function", function: { name: "lookup" } }],
      tool_choice: "required",
      parallel_tool_calls: false
    })
    const tools = toolsOf(withTools, undefined)
    expect(tools).toEqual([{ name: "lookup", input_schema: { type: "object", properties: {} } }])
    expect(Either.getOrThrow(toolChoiceOf(withTools, undefined, tools))).toEqual({ type: "any", disable_parallel_tool_use: true })

    const json = request({
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_schema", json_schema: { name: "answer", schema: { type: "object", properties: { n: { type: "number" } } } } }
    })
    const jsonTools = toolsOf(json, "answer")
    expect(jsonTools).toEqual([{
      name: "answer",
      description: "Reply by calling this tool with the answer as its input.",
      input_schema: { type: "object", properties: { n: { type: "number" } } }
    }])
    expect(Either.getOrThrow(toolChoiceOf(json, "answer", jsonTools))).toEqual({ type: "tool", name: "answer" })
  })

  it("toolChoiceOf refuses a tool_choice without tools, naming it", () => {
    const bare = request({ model: "m", messages: [{ role: "user", content: "hi" }], tool_choice: "auto" })
    expect(failure(toolChoiceOf(bare, undefined, toolsOf(bare, undefined)))).toMatchObject({ kind: "bad_request", param: "tool_choice" })
  })
})

describe("Anthropic stream steps", () => {
  /** Each event's chunks as their deltas (or usage), so the mapping reads at a glance. */
  const translated = (jsonTool: string | undefined, events: ReadonlyArray<StreamEvent>) => {
    const translate = makeStreamTranslator(jsonTool, 1_700_000_000)
    return events.map((event) => {
      const chunks = translate(event)
      if (!Array.isArray(chunks)) throw new Error("expected chunks")
      return chunks.map((c) => c.usage ?? { delta: c.choices[0]?.delta, finish: c.choices[0]?.finish_reason })
    })
  }
  const start: StreamEvent = { type: "message_start", message: { id: "msg_1", model: "claude", usage: { input_tokens: 10, output_tokens: 1 } } }

  it("numbers tool calls as OpenAI does (blocks after text start at 0), and sums usage's two halves at the end", () => {
    expect(translated(undefined, [
      start,
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Looking." } },
      { type: "content_block_start", index: 1, content_block: { type: "tool_use", id: "toolu_1", name: "get_weather", input: {} } },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "{\"city\":" } },
      { type: "content_block_delta", index: 7, delta: { type: "input_json_delta", partial_json: "lost" } },
      { type: "message_delta", delta: { stop_reason: "tool_use" }, usage: { output_tokens: 25 } },
      { type: "message_stop" }
    ])).toEqual([
      [{ delta: { role: "assistant", content: "" }, finish: null }],
      [],
      [{ delta: { content: "Looking." }, finish: null }],
      [{ delta: { tool_calls: [{ index: 0, id: "toolu_1", type: "function", function: { name: "get_weather", arguments: "" } }] }, finish: null }],
      [{ delta: { tool_calls: [{ index: 0, function: { arguments: "{\"city\":" } }] }, finish: null }],
      // A delta for a block that never started is dropped.
      [],
      [{ delta: {}, finish: "tool_calls" }],
      [{ prompt_tokens: 10, completion_tokens: 25, total_tokens: 35 }]
    ])
  })

  it("streams the JSON tool's input as the answer's text, finishing with stop", () => {
    expect(translated("answer", [
      start,
      { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "toolu_1", name: "answer", input: {} } },
      { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: "{\"n\":1}" } },
      { type: "message_delta", delta: { stop_reason: "tool_use" } }
    ])).toEqual([
      [{ delta: { role: "assistant", content: "" }, finish: null }],
      [],
      [{ delta: { content: "{\"n\":1}" }, finish: null }],
      [{ delta: {}, finish: "stop" }]
    ])
  })
})

describe("Gemini request steps", () => {
  it("systemParts keeps system and developer messages as parts, in order", () => {
    expect(systemParts(messages([
      { role: "developer", content: "One." },
      { role: "user", content: "hi" },
      { role: "system", content: "Two." }
    ]))).toEqual([{ text: "One." }, { text: "Two." }])
  })

  it("contentsOf names each tool result by its call's function and merges parallel results with the next user message", () => {
    const contents = Either.getOrThrow(contentsOf(toolConversation))
    expect(contents).toEqual([
      { role: "user", parts: [{ text: "weather in Paris and Rome?" }] },
      {
        role: "model",
        parts: [
          { functionCall: { name: "get_weather", args: { city: "Paris" } } },
          { functionCall: { name: "get_time", args: { city: "Rome" } } }
        ]
      },
      {
        role: "user",
        parts: [
          // An object result is the response itself; anything else goes under `result`.
          { functionResponse: { name: "get_weather", response: { celsius: 21 } } },
          { functionResponse: { name: "get_time", response: { result: "noon" } } },
          { text: "thanks" }
        ]
      }
    ])
  })

  it("contentsOf refuses a tool result whose call was never made, naming the field", () => {
    const refused = failure(contentsOf(messages([
      { role: "user", content: "hi" },
      { role: "tool", tool_call_id: "call_9", content: "42" }
    ])))
    expect(refused).toMatchObject({ kind: "bad_request", param: "messages[1].tool_call_id" })
  })

  it("contentsOf sends data: images and audio inline, and refuses an image by URL", () => {
    const contents = Either.getOrThrow(contentsOf(messages([
      { role: "user", content: [{ type: "image_url", image_url: { url: PNG } }, { type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }] }
    ])))
    expect(contents).toEqual([{
      role: "user",
      parts: [{ inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } }, { inlineData: { mimeType: "audio/wav", data: "AAAA" } }]
    }])
    const refused = failure(contentsOf(messages([{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }])))
    expect(refused).toMatchObject({ kind: "unsupported", param: "messages[0].content[0].image_url.url" })
  })

  it("toolConfigOf maps required to ANY, none to NONE, and a named function to ANY limited to it", () => {
    expect(toolConfigOf(undefined)).toBeUndefined()
    expect(toolConfigOf("required")).toEqual({ functionCallingConfig: { mode: "ANY" } })
    expect(toolConfigOf("none")).toEqual({ functionCallingConfig: { mode: "NONE" } })
    expect(toolConfigOf("auto")).toEqual({ functionCallingConfig: { mode: "AUTO" } })
    expect(toolConfigOf({ type: "function", function: { name: "lookup" } })).toEqual({
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["lookup"] }
    })
  })
})
