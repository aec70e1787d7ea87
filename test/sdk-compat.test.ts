/**
 * The official `openai` SDK, pointed at the gateway, through each adapter: plain, stream,
 * tools and json_schema calls. Every response and chunk must validate against OpenAI's
 * published schemas, and each fake upstream checks that it was spoken to in its own format.
 */
import Ajv from "ajv"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ANTHROPIC_KEY, startAnthropicFake } from "./fakes/anthropic-fake"
import type { FakeServer } from "./fakes/fake-server"
import { GEMINI_KEY, startGeminiFake } from "./fakes/gemini-fake"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateChunk, validateCompletion, validateModelList } from "./support/openai-schemas"

const providers = [
  { name: "openai", start: startOpenAIFake, path: "/v1", env: { OPENAI_API_KEY: OPENAI_KEY } },
  { name: "anthropic", start: startAnthropicFake, path: "", env: { ANTHROPIC_API_KEY: ANTHROPIC_KEY } },
  { name: "gemini", start: startGeminiFake, path: "", env: { GEMINI_API_KEY: GEMINI_KEY } }
] as const

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
  }
}

const citySchema = {
  type: "object",
  properties: { city: { type: "string" }, population: { type: "integer" } },
  required: ["city", "population"],
  additionalProperties: false
}

describe.each(providers)("through the $name adapter", (provider) => {
  let fake: FakeServer
  let gateway: RunningGateway
  let client: OpenAI

  beforeAll(async () => {
    fake = await provider.start()
    gateway = await startGateway(
      `
models:
  - id: m
    provider: ${provider.name}
    model: upstream-model
    base_url: ${fake.url}${provider.path}
`,
      provider.env
    )
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "client-key", maxRetries: 0 })
  })
  afterAll(async () => {
    await gateway.close()
    await fake.close()
  })

  it("answers a plain call in OpenAI's schema", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello there" }]
    })
    expect(validateCompletion(completion)).toEqual([])
    expect(completion.choices[0]!.message.content).toBe("Echo: hello there")
    expect(completion.choices[0]!.finish_reason).toBe("stop")
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens)
    expect(completion.usage!.total_tokens).toBeGreaterThan(0)
  })

  it("streams chunks in OpenAI's schema, with usage when asked", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream me please" }]
    })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    for (const chunk of chunks) expect(validateChunk(chunk), JSON.stringify(chunk)).toEqual([])
    expect(chunks.length).toBeGreaterThan(3)
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("Echo: stream me please")
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === "stop")).toHaveLength(1)
    const last = chunks.at(-1)!
    expect(last.choices).toEqual([])
    expect(last.usage!.completion_tokens).toBeGreaterThan(0)
  })

  it("leaves usage out of a stream that did not ask for it", async () => {
    const stream = await client.chat.completions.create({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true)
  })

  it("calls tools, and takes the tool's result back", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      tools: [weatherTool],
      messages: [{ role: "user", content: "What is the weather in Paris?" }]
    })
    expect(validateCompletion(completion)).toEqual([])
    const choice = completion.choices[0]!
    expect(choice.finish_reason).toBe("tool_calls")
    const call = choice.message.tool_calls![0]!
    expect(call.type).toBe("function")
    if (call.type !== "function") throw new Error("expected a function call")
    expect(call.function.name).toBe("get_weather")
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Paris" })

    const followUp = await client.chat.completions.create({
      model: "m",
      tools: [weatherTool],
      messages: [
        { role: "user", content: "What is the weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: "{\"celsius\": 21}" },
        { role: "user", content: "thanks" }
      ]
    })
    expect(validateCompletion(followUp)).toEqual([])
    expect(followUp.choices[0]!.message.content).toBe("Echo: thanks")
  })

  it("streams tool calls", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      tools: [weatherTool],
      messages: [{ role: "user", content: "weather in Paris?" }]
    })
    let name = ""
    let args = ""
    let finish: string | null = null
    for await (const chunk of stream) {
      expect(validateChunk(chunk)).toEqual([])
      const choice = chunk.choices[0]
      for (const call of choice?.delta.tool_calls ?? []) {
        expect(call.index).toBe(0)
        name += call.function?.name ?? ""
        args += call.function?.arguments ?? ""
      }
      finish = choice?.finish_reason ?? finish
    }
    expect(name).toBe("get_weather")
    expect(JSON.parse(args)).toEqual({ city: "Paris" })
    expect(finish).toBe("tool_calls")
  })

  it("answers json_schema requests with JSON that fits the schema", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      response_format: { type: "json_schema", json_schema: { name: "city", schema: citySchema, strict: true } },
      messages: [{ role: "user", content: "Name a big city" }]
    })
    expect(validateCompletion(completion)).toEqual([])
    expect(completion.choices[0]!.finish_reason).toBe("stop")
    const parsed = JSON.parse(completion.choices[0]!.message.content!)
    expect(new Ajv().validate(citySchema, parsed)).toBe(true)
  })

  it("streams json_schema answers as content", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      response_format: { type: "json_schema", json_schema: { name: "city", schema: citySchema } },
      messages: [{ role: "user", content: "Name a big city" }]
    })
    let content = ""
    for await (const chunk of stream) {
      expect(validateChunk(chunk)).toEqual([])
      content += chunk.choices[0]?.delta.content ?? ""
    }
    expect(new Ajv().validate(citySchema, JSON.parse(content))).toBe(true)
  })

  it("lists its models in OpenAI's schema", async () => {
    const response = await fetch(`${gateway.url}/v1/models`)
    const list = (await response.json()) as { data: Array<{ id: string }> }
    expect(validateModelList(list)).toEqual([])
    expect(list.data.map((m: { id: string }) => m.id)).toEqual(["consensus", "m"])
  })
})
