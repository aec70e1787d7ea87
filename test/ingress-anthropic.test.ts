/**
 * The Anthropic Messages ingress's translation, without the gateway: a Messages request as
 * the chat request Quorum routes, and a chat answer (whole, or as chunks) as what the
 * official Anthropic SDK reads. The SDK is the real client here, over loopback HTTP, against
 * a small server that translates as the gateway's /v1/messages does.
 */
import Anthropic from "@anthropic-ai/sdk"
import type { Message } from "@anthropic-ai/sdk/resources/messages"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { anthropicError } from "../src/ingress/anthropic/errors"
import { fromChatCompletion } from "../src/ingress/anthropic/from-chat"
import { AnthropicStream, sseEvent } from "../src/ingress/anthropic/stream-events"
import { toChatRequest } from "../src/ingress/anthropic/to-chat"
import { MessagesRequest } from "../src/ingress/anthropic/wire"
import type { ChatCompletion } from "../src/protocol/chat-response"
import { completionChunks } from "../src/protocol/stream-assembly"

const decode = Schema.decodeUnknownSync(MessagesRequest)

const translate = (body: unknown) => toChatRequest(decode(body))

describe("a Messages request as a chat request", () => {
  it("carries system, turns, images, documents, tool uses and results, tools and sampling", () => {
    const result = translate({
      model: "claude-sonnet",
      max_tokens: 512,
      system: [{ type: "text", text: "Be brief." }, { type: "text", text: "Answer in French.", cache_control: { type: "ephemeral" } }],
      messages: [
        { role: "user", content: [{ type: "text", text: "What is in this picture?" }, { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }] },
        { role: "assistant", content: [{ type: "thinking", thinking: "hmm", signature: "x" }, { type: "text", text: "Let me look it up." }, { type: "tool_use", id: "toolu_1", name: "search", input: { q: "cat" } }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "a cat" }] }, { type: "text", text: "And this PDF?" }, { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" }, title: "a.pdf" }] },
        { role: "assistant", content: "Un chat." },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_2", content: "timeout", is_error: true }, { type: "image", source: { type: "url", url: "https://example.com/b.png" } }] }
      ],
      tools: [{ name: "search", description: "Search the web", input_schema: { type: "object", properties: { q: { type: "string" } } } }],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      stop_sequences: ["END"],
      temperature: 0.2,
      top_k: 5,
      metadata: { user_id: "u-42" },
      stream: true
    })
    expect(result).toEqual(Either.right({
      model: "claude-sonnet",
      max_tokens: 512,
      temperature: 0.2,
      stop: ["END"],
      user: "u-42",
      messages: [
        { role: "system", content: "Be brief.\nAnswer in French." },
        { role: "user", content: [{ type: "text", text: "What is in this picture?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] },
        { role: "assistant", content: "Let me look it up.", tool_calls: [{ id: "toolu_1", type: "function", function: { name: "search", arguments: "{\"q\":\"cat\"}" } }] },
        { role: "tool", tool_call_id: "toolu_1", content: "a cat" },
        { role: "user", content: [{ type: "text", text: "And this PDF?" }, { type: "file", file: { file_data: "data:application/pdf;base64,JVBERi0=", filename: "a.pdf" } }] },
        { role: "assistant", content: "Un chat." },
        { role: "tool", tool_call_id: "toolu_2", content: "Error: timeout" },
        { role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/b.png" } }] }
      ],
      tools: [{ type: "function", function: { name: "search", description: "Search the web", parameters: { type: "object", properties: { q: { type: "string" } } } } }],
      tool_choice: "required",
      parallel_tool_calls: false,
      stream: true,
      stream_options: { include_usage: true }
    }))
  })

  it("maps each tool_choice", () => {
    const choice = (tool_choice: unknown) => {
      const r = translate({ model: "m", max_tokens: 1, messages: [{ role: "user", content: "hi" }], tool_choice })
      return Either.isRight(r) ? [r.right.tool_choice, r.right.parallel_tool_calls] : r.left
    }
    expect(choice({ type: "auto" })).toEqual(["auto", undefined])
    expect(choice({ type: "none" })).toEqual(["none", undefined])
    expect(choice({ type: "tool", name: "f" })).toEqual([{ type: "function", function: { name: "f" } }, undefined])
    expect(choice({ type: "tool" })).toEqual({ param: "tool_choice.name", message: expect.stringContaining("name") })
  })

  it("refuses by name what cannot reach every provider", () => {
    const base = { model: "m", max_tokens: 1, messages: [{ role: "user", content: "hi" }] }
    expect(translate({ ...base, tools: [{ type: "web_search_20250305", name: "web_search" }] })).toEqual(Either.left({ param: "tools[0].type", message: expect.stringContaining("server tools") }))
    expect(translate({ ...base, messages: [{ role: "user", content: [{ type: "image", source: { type: "file", file_id: "file_1" } }] }] })).toEqual(Either.left({ param: "messages[0].content[0].source", message: expect.stringContaining("file_id") }))
    expect(translate({ ...base, messages: [{ role: "user", content: [{ type: "search_result", source: "x" }] }] })).toEqual(Either.left({ param: "messages[0].content[0].type", message: expect.stringContaining("search_result") }))
    expect(translate({ ...base, stop_sequences: ["a", "b", "c", "d", "e"] })).toEqual(Either.left({ param: "stop_sequences", message: expect.stringContaining("5") }))
  })

  it("rejects a malformed request in the schema, naming the field", () => {
    expect(() => decode({ model: "m", messages: [{ role: "user", content: "hi" }] })).toThrow(/max_tokens/)
    expect(() => decode({ model: "m", max_tokens: 1, messages: [{ role: "user", content: [{ type: "text" }] }] })).toThrow(/text/)
  })
})

const completion: ChatCompletion = {
  id: "chatcmpl-abc",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "claude-sonnet",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: "Looking it up.",
      refusal: null,
      tool_calls: [
        { id: "call_1", type: "function", function: { name: "search", arguments: "{\"q\":\"cats\"}" } },
        { id: "call_2", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } }
      ]
    },
    finish_reason: "tool_calls"
  }],
  usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 100 } }
}

describe("a chat answer as an Anthropic message", () => {
  it("has text and tool uses as blocks, the stop reason, and cache reads apart", () => {
    const message = fromChatCompletion(completion) satisfies Message
    expect(message).toMatchObject({
      id: "msg_abc",
      type: "message",
      role: "assistant",
      content: [
        { type: "text", text: "Looking it up." },
        { type: "tool_use", id: "call_1", name: "search", input: { q: "cats" } },
        { type: "tool_use", id: "call_2", name: "weather", input: { city: "Paris" } }
      ],
      stop_reason: "tool_use",
      usage: { input_tokens: 20, output_tokens: 30, cache_read_input_tokens: 100 }
    })
  })
})

/** Serves /v1/messages as the gateway does, answering every request with `completion`, as JSON or as a stream cut after `cutAfter` chunks. */
const translatingServer = (cutAfter?: number) =>
  createServer((req, res) => {
    let body = ""
    req.on("data", (d) => (body += d))
    req.on("end", () => {
      const request = toChatRequest(decode(JSON.parse(body)))
      if (Either.isLeft(request)) {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify(anthropicError(400, request.left.message)))
        return
      }
      if (request.right.stream !== true) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(fromChatCompletion(completion)))
        return
      }
      res.writeHead(200, { "content-type": "text/event-stream" })
      const stream = new AnthropicStream()
      const chunks = completionChunks(completion, true)
      for (const [i, chunk] of chunks.entries()) {
        if (i === cutAfter) {
          for (const e of stream.fail(502, "The upstream closed the stream")) res.write(sseEvent(e))
          res.end()
          return
        }
        for (const e of stream.push(chunk)) res.write(sseEvent(e))
      }
      for (const e of stream.end()) res.write(sseEvent(e))
      res.end()
    })
  })

const listening = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return new Anthropic({ apiKey: "test", baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxRetries: 0 })
}

describe("the official Anthropic SDK reading what the ingress writes", () => {
  const whole = translatingServer()
  const cut = translatingServer(2)
  let client: Anthropic
  let cutClient: Anthropic
  beforeAll(async () => {
    client = await listening(whole)
    cutClient = await listening(cut)
  })
  afterAll(() => {
    whole.close()
    cut.close()
  })

  const params = { model: "claude-sonnet", max_tokens: 100, messages: [{ role: "user" as const, content: "Find cats" }] }

  it("gets the same message from the stream as from the JSON answer", async () => {
    const json = await client.messages.create(params)
    const streamed = await client.messages.stream(params).finalMessage()
    expect(json).toEqual(fromChatCompletion(completion))
    expect(streamed.content).toEqual(json.content)
    expect(streamed.stop_reason).toBe("tool_use")
    expect(streamed.usage).toMatchObject({ input_tokens: 20, output_tokens: 30, cache_read_input_tokens: 100 })
  })

  it("reads a stream cut short as an error, never as a finished message", async () => {
    await expect(cutClient.messages.stream(params).finalMessage()).rejects.toThrow(/upstream closed the stream/)
  })

  it("reads a refusal as the SDK's own error", async () => {
    await expect(client.messages.create({ ...params, stop_sequences: ["1", "2", "3", "4", "5"] })).rejects.toMatchObject({ status: 400, error: { type: "error", error: { type: "invalid_request_error" } } })
  })
})
