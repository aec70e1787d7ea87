/**
 * The Responses API ingress's translation, without the gateway: a Responses request as the
 * chat request Quorum routes, and a chat answer (whole, or as chunks) as what the official
 * `openai` SDK reads. Produced objects are held to the SDK's own types, and the SDK is the
 * real client over loopback HTTP, against a small server that translates as the gateway's
 * /v1/responses will.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import OpenAI from "openai"
import type { Response, ResponseStreamEvent } from "openai/resources/responses/responses"
import { refusalAnswer } from "../src/ingress/responses/errors"
import { fromChatCompletion } from "../src/ingress/responses/from-chat"
import { ResponseObject, StreamEvent } from "../src/ingress/responses/output"
import { type FailureAnswer, framesPull } from "../src/protocol/frames"
import { responsesFrames } from "../src/ingress/responses/sse"
import { ResponsesStream } from "../src/ingress/responses/stream-events"
import { toChatRequest } from "../src/ingress/responses/to-chat"
import { ResponsesRequest } from "../src/ingress/responses/wire"
import { ChatCompletionRequest } from "../src/protocol/chat-request"
import type { ChatCompletion, ChatCompletionChunk } from "../src/protocol/chat-response"
import { completionChunks } from "../src/protocol/stream-assembly"
import { validator } from "../src/protocol/validate"
import { jsonBodyReader } from "../src/http/read-json-body"

/** The Responses frames of a Stream of chunks, as the hot route writes them from a pull. */
const responsesSse = <E>(request: ResponsesRequest, chunks: Stream.Stream<ChatCompletionChunk, E>, answerFor: (error: E) => FailureAnswer): Stream.Stream<Uint8Array> =>
  Stream.unwrapScoped(Effect.map(Stream.toPull(chunks), (pull) => Stream.repeatEffectChunkOption(framesPull(pull, responsesFrames(request, answerFor)))))

/** As the gateway reads a body: validated, unknown fields kept on the value. */
const check = validator(ResponsesRequest)
const read = (body: unknown): ResponsesRequest => Either.getOrThrow(check(body))
const translate = (body: unknown) => toChatRequest(read(body))
const isChatRequest = Schema.is(ChatCompletionRequest)

describe("a Responses request as a chat request", () => {
  it("carries instructions, input items, tools, tool_choice, text.format and sampling", () => {
    const result = translate({
      model: "default",
      instructions: "Be brief.",
      input: [
        { role: "developer", content: "Answer in French." },
        { role: "user", content: [{ type: "input_text", text: "What is this?" }, { type: "input_image", image_url: "https://example.com/a.png", detail: "low" }] },
        { type: "message", role: "assistant", id: "msg_1", status: "completed", content: [{ type: "output_text", text: "Let me look.", annotations: [] }] },
        { type: "function_call", call_id: "call_1", name: "search", arguments: "{\"q\":\"cat\"}", id: "fc_1", status: "completed" },
        { type: "function_call", call_id: "call_2", name: "weather", arguments: "{}" },
        { type: "function_call_output", call_id: "call_1", output: "a cat" },
        { type: "function_call_output", call_id: "call_2", output: [{ type: "input_text", text: "sunny" }] },
        { type: "reasoning", id: "rs_1", summary: [] },
        { role: "system", content: [{ type: "input_text", text: "Stay kind." }] },
        { role: "user", content: "And now?" }
      ],
      tools: [{ type: "function", name: "search", description: "Search", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: true }],
      tool_choice: { type: "function", name: "search" },
      parallel_tool_calls: false,
      text: { format: { type: "json_schema", name: "answer", schema: { type: "object" }, strict: true }, verbosity: "low" },
      temperature: 0.3,
      top_p: 0.9,
      max_output_tokens: 256,
      metadata: { team: "a" },
      user: "u-1",
      safety_identifier: "s-1",
      store: true,
      reasoning: { effort: "low" },
      stream: true
    })
    expect(result).toEqual(Either.right({
      model: "default",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: "Answer in French." },
        { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "https://example.com/a.png", detail: "low" } }] },
        {
          role: "assistant",
          content: "Let me look.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "search", arguments: "{\"q\":\"cat\"}" } },
            { id: "call_2", type: "function", function: { name: "weather", arguments: "{}" } }
          ]
        },
        { role: "tool", tool_call_id: "call_1", content: "a cat" },
        { role: "tool", tool_call_id: "call_2", content: "sunny" },
        { role: "system", content: [{ type: "text", text: "Stay kind." }] },
        { role: "user", content: "And now?" }
      ],
      tools: [{ type: "function", function: { name: "search", description: "Search", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: true } }],
      tool_choice: { type: "function", function: { name: "search" } },
      parallel_tool_calls: false,
      response_format: { type: "json_schema", json_schema: { name: "answer", schema: { type: "object" }, strict: true } },
      temperature: 0.3,
      top_p: 0.9,
      max_completion_tokens: 256,
      metadata: { team: "a" },
      user: "u-1",
      safety_identifier: "s-1",
      stream: true,
      stream_options: { include_usage: true }
    }))
    // What it produces is a chat request the gateway's own schema accepts.
    expect(Either.isRight(result) && isChatRequest(result.right)).toBe(true)
  })

  it("takes a string input as one user message, and maps each tool_choice and text format", () => {
    expect(translate({ model: "m", input: "Hi" })).toEqual(Either.right({ model: "m", messages: [{ role: "user", content: "Hi" }] }))
    const field = (extra: object, key: keyof ChatCompletionRequest) => {
      const r = translate({ model: "m", input: "Hi", ...extra })
      return Either.isRight(r) ? r.right[key] : r.left
    }
    expect(field({ tool_choice: "required" }, "tool_choice")).toBe("required")
    expect(field({ tool_choice: "none" }, "tool_choice")).toBe("none")
    expect(field({ text: { format: { type: "json_object" } } }, "response_format")).toEqual({ type: "json_object" })
    expect(field({ text: { format: { type: "text" } } }, "response_format")).toEqual({ type: "text" })
    expect(field({ store: false, reasoning: { effort: "high", summary: "auto" } }, "messages")).toEqual([{ role: "user", content: "Hi" }])
  })

  it("refuses by name what a stateless gateway in front of many providers cannot carry", () => {
    const base = { model: "m", input: "hi" }
    const refusal = (extra: object) => translate({ ...base, ...extra })
    expect(refusal({ tools: [{ type: "function", name: "f" }, { type: "web_search" }] })).toEqual(Either.left({ param: "tools[1].type", code: "unsupported_value", message: expect.stringContaining("'web_search'") }))
    expect(refusal({ previous_response_id: "resp_1" })).toEqual(Either.left({ param: "previous_response_id", code: "unsupported_parameter", message: expect.stringContaining("stateless") }))
    expect(refusal({ conversation: "conv_1" })).toEqual(Either.left({ param: "conversation", code: "unsupported_parameter", message: expect.stringContaining("stateless") }))
    expect(refusal({ background: true })).toEqual(Either.left({ param: "background", code: "unsupported_parameter", message: expect.stringContaining("stateless") }))
    expect(refusal({ include: ["reasoning.encrypted_content"] })).toEqual(Either.left({ param: "include", code: "unsupported_value", message: expect.stringContaining("reasoning.encrypted_content") }))
    expect(refusal({ frobnicate: 1 })).toEqual(Either.left({ param: "frobnicate", code: "unknown_parameter", message: "Unknown parameter: 'frobnicate'." }))
    expect(refusal({ tool_choice: { type: "web_search_preview" } })).toEqual(Either.left({ param: "tool_choice.type", code: "unsupported_value", message: expect.stringContaining("web_search_preview") }))
    expect(refusal({ input: [{ role: "user", content: [{ type: "input_image", file_id: "file_1", detail: "auto" }] }] })).toEqual(Either.left({ param: "input[0].content[0].file_id", code: "unsupported_value", message: expect.stringContaining("file_id") }))
    expect(refusal({ input: [{ type: "item_reference", id: "msg_1" }] })).toEqual(Either.left({ param: "input[0].type", code: "unsupported_parameter", message: expect.stringContaining("stateless") }))
    expect(refusal({ input: [{ type: "computer_call_output", call_id: "c" }] })).toEqual(Either.left({ param: "input[0].type", code: "unsupported_value", message: expect.stringContaining("computer_call_output") }))
    expect(refusal({ input: [{ role: "system", content: [{ type: "input_image", image_url: "https://x/y.png", detail: "auto" }] }] })).toEqual(Either.left({ param: "input[0].content[0].type", code: "unsupported_value", message: expect.stringContaining("input_image") }))
    expect(refusal({ input: [] })).toEqual(Either.left({ param: "input", code: "invalid_value", message: expect.stringContaining("input") }))
  })

  it("answers a refusal in OpenAI's error envelope", () => {
    expect(refusalAnswer({ param: "previous_response_id", code: "unsupported_parameter", message: "stateless" })).toEqual({
      status: 400,
      body: { error: { message: "stateless", type: "invalid_request_error", param: "previous_response_id", code: "unsupported_parameter" } }
    })
  })

  it("is read by the gateway's own body reader (a schema whose decoded and encoded forms are one)", () => {
    expect(typeof jsonBodyReader(ResponsesRequest)).toBe("function")
  })

  it("rejects a malformed request in the schema, naming the field", () => {
    expect(Either.isLeft(check({ model: "m" }))).toBe(true)
    expect(String(Either.flip(check({ model: "m" })).pipe(Either.getOrThrow))).toMatch(/input/)
    expect(String(Either.flip(check({ model: "m", input: "hi", temperature: 3 })).pipe(Either.getOrThrow))).toMatch(/temperature/)
  })
})

const completion: ChatCompletion = {
  id: "chatcmpl-abc",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "sim-fast",
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
  usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 100 }, completion_tokens_details: { reasoning_tokens: 7 } }
}

const request = read({
  model: "default",
  input: "Find cats",
  instructions: "Be brief.",
  tools: [{ type: "function", name: "search", parameters: { type: "object" } }, { type: "function", name: "weather", parameters: { type: "object" } }]
})

const expectedOutput = [
  { type: "message", id: "msg_abc", role: "assistant", status: "completed", content: [{ type: "output_text", text: "Looking it up.", annotations: [], logprobs: [] }] },
  { type: "function_call", id: "fc_1", call_id: "call_1", name: "search", arguments: "{\"q\":\"cats\"}", status: "completed" },
  { type: "function_call", id: "fc_2", call_id: "call_2", name: "weather", arguments: "{\"city\":\"Paris\"}", status: "completed" }
]

describe("a chat answer as a Responses response", () => {
  it("has the text as a message item, each tool call as a function_call item, usage and the request's settings", () => {
    const response = fromChatCompletion(completion, request) satisfies Response
    expect(Schema.is(ResponseObject)(response)).toBe(true)
    expect(response).toMatchObject({
      id: "resp_abc",
      object: "response",
      status: "completed",
      model: "sim-fast",
      instructions: "Be brief.",
      output: expectedOutput,
      output_text: "Looking it up.",
      tool_choice: "auto",
      parallel_tool_calls: true,
      store: false,
      error: null,
      usage: { input_tokens: 120, input_tokens_details: { cached_tokens: 100, cache_write_tokens: 0 }, output_tokens: 30, output_tokens_details: { reasoning_tokens: 7 }, total_tokens: 150 }
    })
    expect(response.tools.map((t) => t.name)).toEqual(["search", "weather"])
  })

  it("says a cut answer is incomplete, and why", () => {
    const cut: ChatCompletion = { ...completion, choices: [{ index: 0, message: { role: "assistant", content: "Once upon", refusal: null }, finish_reason: "length" }] }
    expect(fromChatCompletion(cut, request)).toMatchObject({ status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, output: [{ type: "message", status: "incomplete" }] })
  })
})

const head = { id: "chatcmpl-abc", object: "chat.completion.chunk" as const, created: 1_700_000_000, model: "sim-fast" }
const chunk = (delta: ChatCompletionChunk["choices"][number]["delta"], finish: ChatCompletionChunk["choices"][number]["finish_reason"] = null): ChatCompletionChunk => ({ ...head, choices: [{ index: 0, delta, finish_reason: finish }] })

/** Text in two pieces, two tool calls whose arguments arrive in pieces, then the finish and the usage. */
const splitChunks: ReadonlyArray<ChatCompletionChunk> = [
  chunk({ role: "assistant", content: "" }),
  chunk({ content: "Looking " }),
  chunk({ content: "it up." }),
  chunk({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "search", arguments: "{\"q\":" } }] }),
  chunk({ tool_calls: [{ index: 0, function: { arguments: "\"cats\"}" } }] }),
  chunk({ tool_calls: [{ index: 1, id: "call_2", type: "function", function: { name: "weather", arguments: "{\"city\":\"Paris\"}" } }] }),
  chunk({}, "tool_calls"),
  { ...head, choices: [], usage: completion.usage ?? null }
]

const run = (chunks: ReadonlyArray<ChatCompletionChunk>, ending: (s: ResponsesStream) => ReadonlyArray<StreamEvent>) => {
  const stream = new ResponsesStream(request, 1_700_000_000)
  const events = chunks.flatMap((c) => stream.push(c))
  return [...events, ...ending(stream)]
}

describe("a chat stream as Responses streaming events", () => {
  it("sends the events in order, numbered, typed as the SDK's, ending in response.completed with the whole answer", () => {
    const events = run(splitChunks, (s) => s.end())
    const typed: ReadonlyArray<ResponseStreamEvent> = events
    expect(typed.map((e) => e.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed"
    ])
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    expect(events.every(Schema.is(StreamEvent))).toBe(true)
    const last = events[events.length - 1]
    expect(last?.type === "response.completed" ? last.response : undefined).toMatchObject({ status: "completed", output: expectedOutput, output_text: "Looking it up.", usage: { input_tokens: 120, output_tokens: 30, total_tokens: 150 } })
    expect(events.find((e) => e.type === "response.function_call_arguments.done")).toMatchObject({ item_id: "fc_1", output_index: 1, name: "search", arguments: "{\"q\":\"cats\"}" })
  })

  it("ends a stream cut before its finish, or failing, in response.failed and nothing after", () => {
    const cut = run(splitChunks.slice(0, 4), (s) => s.end())
    expect(cut.map((e) => e.type).slice(-1)).toEqual(["response.failed"])
    expect(cut.some((e) => e.type === "response.completed")).toBe(false)
    const failed = run(splitChunks.slice(0, 2), (s) => [...s.fail(429, "upstream: rate limited"), ...s.end(), ...s.fail(502, "again")])
    const last = failed[failed.length - 1]
    expect(last).toMatchObject({ type: "response.failed", response: { status: "failed", error: { code: "rate_limit_exceeded", message: "upstream: rate limited" } } })
    expect(failed.filter((e) => e.type === "response.failed")).toHaveLength(1)
    const nothing = run([], (s) => s.end())
    expect(nothing.map((e) => e.type)).toEqual(["response.created", "response.in_progress", "response.failed"])
  })

  it("opens no message for an answer of tool calls only, and keeps item ids unique when text follows a call", () => {
    const callsOnly = run([chunk({ role: "assistant", content: null }), splitChunks[5] ?? chunk({}), chunk({}, "tool_calls")], (s) => s.end())
    const done = callsOnly[callsOnly.length - 1]
    expect(done?.type === "response.completed" ? done.response.output.map((i) => i.type) : undefined).toEqual(["function_call"])
    const textAfter = run([splitChunks[3] ?? chunk({}), chunk({ content: "Done." }), chunk({}, "stop")], (s) => s.end())
    const last = textAfter[textAfter.length - 1]
    const ids = last?.type === "response.completed" ? last.response.output.map((i) => i.id) : []
    expect(ids).toEqual(["fc_1", "msg_abc_1"])
  })

  it("carries a refusal as a refusal part", () => {
    const events = run([chunk({ role: "assistant", refusal: "I can't help with that." }), chunk({}, "stop")], (s) => s.end())
    expect(events.map((e) => e.type)).toContain("response.refusal.delta")
    const last = events[events.length - 1]
    expect(last?.type === "response.completed" ? last.response.output : undefined).toEqual([
      { type: "message", id: "msg_abc", role: "assistant", status: "completed", content: [{ type: "refusal", refusal: "I can't help with that." }] }
    ])
  })
})

describe("a routed chat stream as a Responses SSE body", () => {
  const frames = (body: Stream.Stream<Uint8Array>) =>
    Stream.runCollect(body).pipe(
      Effect.map((bytes) => Chunk.toReadonlyArray(bytes).map((b) => new TextDecoder().decode(b))),
      Effect.map((texts) => texts.map((text) => ({ name: /^event: (.*)$/m.exec(text)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(text)?.[1] ?? "null") as StreamEvent })))
    )

  it.effect("writes each event as an SSE frame named by its type, ending in response.completed", () =>
    Effect.gen(function*() {
      const out = yield* frames(responsesSse(request, Stream.fromIterable(splitChunks), () => ({ status: 502, message: "never" })))
      expect(out.every((f) => f.name === f.data.type)).toBe(true)
      expect(out.map((f) => f.data.type).slice(-1)).toEqual(["response.completed"])
    }))

  it.effect("ends a failing stream in response.failed with the failure's message, and no error escapes", () =>
    Effect.gen(function*() {
      const failing = Stream.fromIterable(splitChunks.slice(0, 3)).pipe(Stream.concat(Stream.fail({ status: 504, message: "upstream: timed out" })))
      const out = yield* frames(responsesSse(request, failing, (error) => error))
      expect(out[out.length - 1]?.data).toMatchObject({ type: "response.failed", response: { status: "failed", error: { code: "server_error", message: "upstream: timed out" }, output_text: "" } })
      expect(out.some((f) => f.data.type === "response.completed")).toBe(false)
    }))
})

/** Serves /v1/responses as the gateway will, answering every request with `completion`, as JSON or as a stream cut after `cutAfter` chunks. */
const translatingServer = (cutAfter?: number) =>
  createServer((req, res) => {
    let body = ""
    req.on("data", (d) => (body += d))
    req.on("end", () => {
      const checked = check(JSON.parse(body))
      const decoded = Either.isRight(checked) ? checked.right : undefined
      if (decoded === undefined) {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: "bad", type: "invalid_request_error", param: null, code: "invalid_value" } }))
        return
      }
      const chat = toChatRequest(decoded)
      if (Either.isLeft(chat)) {
        const answer = refusalAnswer(chat.left)
        res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body))
        return
      }
      if (chat.right.stream !== true) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(fromChatCompletion(completion, decoded)))
        return
      }
      res.writeHead(200, { "content-type": "text/event-stream" })
      const all = completionChunks(completion, true)
      const chunks = cutAfter === undefined
        ? Stream.fromIterable(all)
        : Stream.fromIterable(all.slice(0, cutAfter)).pipe(Stream.concat(Stream.fail("The upstream closed the stream")))
      const sseBody = responsesSse(decoded, chunks, (message) => ({ status: 502, message }))
      Effect.runPromise(Stream.runForEach(sseBody, (bytes) => Effect.sync(() => res.write(bytes)))).then(() => res.end(), () => res.destroy())
    })
  })

const listening = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return new OpenAI({ apiKey: "test", baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0 })
}

describe("the official openai SDK reading what the ingress writes", () => {
  const whole = translatingServer()
  const cut = translatingServer(1)
  let client: OpenAI
  let cutClient: OpenAI
  beforeAll(async () => {
    client = await listening(whole)
    cutClient = await listening(cut)
  })
  afterAll(() => {
    whole.close()
    cut.close()
  })

  const params = {
    model: "default",
    instructions: "Be brief.",
    input: "Find cats",
    tools: [{ type: "function" as const, name: "search", parameters: { type: "object" }, strict: false }]
  }

  it("gets the same response from the stream as from the JSON answer", async () => {
    const json = await client.responses.create(params)
    expect(json.output_text).toBe("Looking it up.")
    expect(json.output).toEqual(expectedOutput)
    const streamed = await client.responses.stream(params).finalResponse()
    expect(streamed.status).toBe("completed")
    // The stream helper adds its parsed_arguments / parsed fields; what came over the wire matches.
    expect(streamed.output).toMatchObject(expectedOutput)
    expect(streamed.output_text).toBe("Looking it up.")
    expect(streamed.usage).toEqual(json.usage)
    const events: Array<string> = []
    for await (const event of await client.responses.create({ ...params, stream: true })) events.push(event.type)
    expect(events[0]).toBe("response.created")
    expect(events[events.length - 1]).toBe("response.completed")
  })

  it("reads a stream cut short as failed, never as a finished response", async () => {
    const final = await cutClient.responses.stream(params).finalResponse()
    expect(final.status).toBe("failed")
    expect(final.error).toEqual({ code: "server_error", message: "The upstream closed the stream" })
  })

  it("reads a refusal as the SDK's own 400", async () => {
    await expect(client.responses.create({ ...params, previous_response_id: "resp_1" })).rejects.toMatchObject({ status: 400, param: "previous_response_id", code: "unsupported_parameter" })
    await expect(client.responses.create({ ...params, tools: [{ type: "web_search" }] })).rejects.toMatchObject({ status: 400, param: "tools[0].type", message: expect.stringContaining("web_search") })
  })
})
