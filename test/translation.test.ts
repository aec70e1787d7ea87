/**
 * What each upstream is actually sent, and what is refused before any upstream call:
 * unknown fields pass through to OpenAI-compatible upstreams, and are translated or
 * refused with a 400 naming them for the others, never dropped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ANTHROPIC_KEY, startAnthropicFake } from "./fakes/anthropic-fake"
import type { FakeServer } from "./fakes/fake-server"
import { GEMINI_KEY, startGeminiFake } from "./fakes/gemini-fake"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateCompletion, validateError } from "./support/openai-schemas"

let openai: FakeServer
let anthropic: FakeServer
let gemini: FakeServer
let gateway: RunningGateway

beforeAll(async () => {
  ;[openai, anthropic, gemini] = await Promise.all([startOpenAIFake(), startAnthropicFake(), startGeminiFake()])
  gateway = await startGateway(
    `
models:
  - { id: gpt, provider: openai, model: gpt-upstream, base_url: "${openai.url}/v1" }
  - { id: claude, provider: anthropic, model: claude-upstream, base_url: "${anthropic.url}", max_tokens_default: 1234 }
  - { id: gem, provider: gemini, model: gemini-upstream, base_url: "${gemini.url}" }
routes:
  - { id: claude-then-gpt, strategy: fallback, targets: [claude, gpt] }
`,
    { OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY, GEMINI_API_KEY: GEMINI_KEY }
  )
})
afterAll(async () => {
  await gateway.close()
  await Promise.all([openai.close(), anthropic.close(), gemini.close()])
})

const post = async (body: unknown) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  return { status: response.status, headers: response.headers, body: (await response.json()) as any }
}

const conversation = [
  { role: "system", content: "You are terse." },
  { role: "user", content: [{ type: "text", text: "weather?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] },
  { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
  { role: "tool", tool_call_id: "call_1", content: "{\"celsius\":21}" },
  { role: "user", content: "thanks" }
]

describe("OpenAI-compatible upstreams", () => {
  it("receive unknown fields unchanged, with the upstream's model name", async () => {
    const res = await post({
      model: "gpt",
      messages: [{ role: "user", content: "hi" }],
      logit_bias: { "50256": -100 },
      reasoning_effort: "low",
      some_future_param: { nested: [1, 2] }
    })
    expect(res.status).toBe(200)
    const sent = openai.received.at(-1)!.body
    expect(sent.model).toBe("gpt-upstream")
    expect(sent.logit_bias).toEqual({ "50256": -100 })
    expect(sent.reasoning_effort).toBe("low")
    expect(sent.some_future_param).toEqual({ nested: [1, 2] })
    expect(res.headers.get("x-quorum-deployment")).toBe("gpt")
  })
})

describe("OpenAI-compatible answers", () => {
  it("keep the provider's own fields, and get the logprobs OpenAI's schema requires", async () => {
    const res = await post({ model: "gpt", messages: [{ role: "user", content: "sparse please" }] })
    expect(res.status).toBe(200)
    expect(validateCompletion(res.body)).toEqual([])
    expect(res.body.choices[0].message.reasoning_content).toBe("thought about it")
    expect(res.body.choices[0].logprobs).toBeNull()
  })
})

describe("Anthropic upstreams", () => {
  it("receive the system prompt apart, alternating turns, tool_use and tool_result blocks, and a default max_tokens", async () => {
    const res = await post({ model: "claude", messages: conversation, stop: "END", user: "u-42" })
    expect(res.status).toBe(200)
    const sent = anthropic.received.at(-1)!.body
    expect(sent.model).toBe("claude-upstream")
    expect(sent.system).toBe("You are terse.")
    expect(sent.max_tokens).toBe(1234)
    expect(sent.stop_sequences).toEqual(["END"])
    expect(sent.metadata).toEqual({ user_id: "u-42" })
    expect(sent.messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant", "user"])
    expect(sent.messages[0].content[1]).toEqual({ type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } })
    expect(sent.messages[1].content).toEqual([{ type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } }])
    expect(sent.messages[2].content).toEqual([
      { type: "tool_result", tool_use_id: "call_1", content: "{\"celsius\":21}" },
      { type: "text", text: "thanks" }
    ])
  })

  it("get max_completion_tokens and tool_choice translated", async () => {
    const res = await post({
      model: "claude",
      messages: [{ role: "user", content: "hi" }],
      max_completion_tokens: 99,
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      tool_choice: "required",
      parallel_tool_calls: false
    })
    expect(res.status).toBe(200)
    const sent = anthropic.received.at(-1)!.body
    expect(sent.max_tokens).toBe(99)
    expect(sent.tool_choice).toEqual({ type: "any", disable_parallel_tool_use: true })
  })

  it.each([
    [{ seed: 7 }, "seed"],
    [{ n: 2 }, "n"],
    [{ logprobs: true }, "logprobs"],
    [{ frequency_penalty: 0.5 }, "frequency_penalty"],
    [{ temperature: 1.5 }, "temperature"],
    [{ some_future_param: true }, "some_future_param"]
  ])("refuse %j with a 400 naming %s, without calling the upstream", async (extra, param) => {
    const before = anthropic.received.length
    const res = await post({ model: "claude", messages: [{ role: "user", content: "hi" }], ...extra })
    expect(res.status).toBe(400)
    expect(validateError(res.body)).toEqual([])
    expect(res.body.error.param).toBe(param)
    expect(res.body.error.message).toContain(param)
    expect(anthropic.received.length).toBe(before)
  })

  it("fall back to a target that can take the field", async () => {
    const res = await post({ model: "claude-then-gpt", messages: [{ role: "user", content: "hi" }], seed: 7 })
    expect(res.status).toBe(200)
    expect(res.headers.get("x-quorum-deployment")).toBe("gpt")
    expect(openai.received.at(-1)!.body.seed).toBe(7)
  })
})

describe("Gemini upstreams", () => {
  it("receive systemInstruction, user/model turns, functionCall and functionResponse by name, and generationConfig", async () => {
    const res = await post({ model: "gem", messages: conversation, max_tokens: 50, temperature: 0.2, stop: ["x"] })
    expect(res.status).toBe(200)
    const sent = gemini.received.at(-1)!
    expect(sent.url).toBe("/v1beta/models/gemini-upstream:generateContent")
    expect(sent.body.systemInstruction).toEqual({ parts: [{ text: "You are terse." }] })
    expect(sent.body.contents.map((c: { role: string }) => c.role)).toEqual(["user", "model", "user"])
    expect(sent.body.contents[0].parts[1]).toEqual({ inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } })
    expect(sent.body.contents[1].parts).toEqual([{ functionCall: { name: "get_weather", args: { city: "Paris" } } }])
    expect(sent.body.contents[2].parts[0]).toEqual({ functionResponse: { name: "get_weather", response: { celsius: 21 } } })
    expect(sent.body.generationConfig).toEqual({ temperature: 0.2, maxOutputTokens: 50, stopSequences: ["x"] })
  })

  it("get json_object as responseMimeType", async () => {
    const res = await post({ model: "gem", messages: [{ role: "user", content: "hi" }], response_format: { type: "json_object" } })
    expect(res.status).toBe(200)
    expect(gemini.received.at(-1)!.body.generationConfig).toEqual({ responseMimeType: "application/json" })
    expect(JSON.parse(res.body.choices[0].message.content)).toEqual({ answer: "Paris" })
  })

  it("refuse image URLs they cannot fetch, naming the part", async () => {
    const before = gemini.received.length
    const res = await post({
      model: "gem",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }]
    })
    expect(res.status).toBe(400)
    expect(res.body.error.param).toBe("messages[0].content[0].image_url.url")
    expect(gemini.received.length).toBe(before)
  })
})
