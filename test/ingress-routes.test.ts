/**
 * /v1/messages and /v1/responses through a real gateway: the official SDKs (Anthropic's,
 * and OpenAI's responses API) pointed at Quorum, an OpenAI-compatible fake upstream
 * behind it, keys, the ledger, faults and content policies as for chat completions.
 */
import Anthropic from "@anthropic-ai/sdk"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { createKey, type RunningGateway, startGateway } from "./support/gateway"

const ADMIN = "admin-key-for-ingress-tests"
let upstream: FakeServer
let gateway: RunningGateway
let key: string

beforeAll(async () => {
  upstream = await startOpenAIFake()
  gateway = await startGateway(
    `
defaults:
  retry: { max_attempts: 1 }
models:
  - { id: gpt, provider: openai, base_url: "${upstream.url}/v1", price: { input: 1, output: 2 } }
auth: { mode: keys }
spend: { flush_ms: 5 }
policies:
  - { name: no-cards, on: input, action: block, checks: [{ type: pii, kinds: [card] }] }
`,
    { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN }
  )
  key = await createKey(gateway.url, ADMIN, { name: "ingress", budget_usd: 10 })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

const anthropic = (apiKey = key) => new Anthropic({ apiKey, baseURL: gateway.url, maxRetries: 0 })
const openai = () => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })

const keySpend = async () => {
  const keys = await fetch(`${gateway.url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN}` } })
  const list = (await keys.json()) as { data: Array<{ name: string; spend: { spent_usd: string } }> }
  return list.data.find((k) => k.name === "ingress")!.spend.spent_usd
}

describe("POST /v1/messages", () => {
  it("answers the Anthropic SDK with a message, its key sent as x-api-key, the upstream asked in OpenAI's terms", async () => {
    const message = await anthropic().messages.create({
      model: "gpt",
      max_tokens: 100,
      system: "Be brief.",
      messages: [{ role: "user", content: "What is the capital of France?" }]
    })
    expect(message.type).toBe("message")
    expect(message.content).toEqual([{ type: "text", text: "Echo: What is the capital of France?", citations: null }])
    expect(message.stop_reason).toBe("end_turn")
    expect(message.usage).toMatchObject({ input_tokens: 11, output_tokens: 7 })
    const sent = upstream.received.at(-1)!
    expect(sent.url).toBe("/v1/chat/completions")
    expect(sent.body.messages).toEqual([{ role: "system", content: "Be brief." }, { role: "user", content: "What is the capital of France?" }])
    expect(sent.body.max_tokens).toBe(100)
  })

  it("streams Messages events to the SDK, tool use included", async () => {
    const stream = anthropic().messages.stream({
      model: "gpt",
      max_tokens: 100,
      tools: [{ name: "get_weather", description: "Weather for a city", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
      messages: [{ role: "user", content: "What is the weather in Paris?" }]
    })
    const final = await stream.finalMessage()
    expect(final.stop_reason).toBe("tool_use")
    expect(final.content).toEqual([expect.objectContaining({ type: "tool_use", name: "get_weather", input: { city: "Paris" } })])
    expect(upstream.received.at(-1)!.body.stream).toBe(true)
  })

  it("refuses a wrong key in Anthropic's error shape, before any upstream call", async () => {
    const before = upstream.received.length
    const error = await anthropic("qk-not-a-real-key").messages.create({ model: "gpt", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError)
    expect((error as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({ type: "error", error: { type: "authentication_error" } })
    expect(upstream.received.length).toBe(before)
  })

  it("refuses by name what it cannot carry, and blocks what a policy forbids, in Anthropic's shape", async () => {
    const before = upstream.received.length
    const refused = await fetch(`${gateway.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: "gpt", max_tokens: 10, messages: [{ role: "user", content: "hi" }], tools: [{ type: "web_search_20250305", name: "web_search" }] })
    })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("tools[0]") } })

    const blocked = await anthropic().messages.create({ model: "gpt", max_tokens: 10, messages: [{ role: "user", content: "my card is 4111 1111 1111 1111" }] }).catch((e: unknown) => e)
    expect(blocked).toBeInstanceOf(Anthropic.BadRequestError)
    expect(String((blocked as Error).message)).toContain("no-cards")
    expect(upstream.received.length).toBe(before)
  })
})

describe("POST /v1/responses", () => {
  it("answers the openai SDK's responses.create, billed to the key", async () => {
    const spentBefore = await keySpend()
    const response = await openai().responses.create({ model: "gpt", instructions: "Be brief.", input: "What is the capital of France?", store: false })
    expect(response.object).toBe("response")
    expect(response.status).toBe("completed")
    expect(response.output_text).toBe("Echo: What is the capital of France?")
    expect(response.usage).toMatchObject({ input_tokens: 11, output_tokens: 7 })
    expect(upstream.received.at(-1)!.body.messages[0]).toEqual({ role: "system", content: "Be brief." })
    // 11 prompt tokens at $1/Mtok and 7 completion tokens at $2/Mtok, settled by the ledger's writer.
    await expect.poll(keySpend).not.toBe(spentBefore)
  })

  it("streams Responses events to the SDK", async () => {
    const stream = openai().responses.stream({ model: "gpt", input: "What is the capital of France?" })
    const types: Array<string> = []
    for await (const event of stream) types.push(event.type)
    const final = await stream.finalResponse()
    expect(final.output_text).toBe("Echo: What is the capital of France?")
    expect(types[0]).toBe("response.created")
    expect(types.at(-1)).toBe("response.completed")
    expect(types).toContain("response.output_text.delta")
  })

  it("refuses a stateful request by name in OpenAI's error shape", async () => {
    const error = await openai().responses.create({ model: "gpt", input: "hi", previous_response_id: "resp_123" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OpenAI.BadRequestError)
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("previous_response_id")
  })

  it("ends a stream the upstream cut with response.failed, never response.completed", async () => {
    upstream.script({ kind: "cut", afterEvents: 2 })
    const stream = openai().responses.stream({ model: "gpt", input: "What is the capital of France?" })
    const events: Array<{ type: string; response?: { error?: { message: string } | null } }> = []
    for await (const event of stream) events.push(event)
    expect(events.map((e) => e.type)).not.toContain("response.completed")
    expect(events.at(-1)?.type).toBe("response.failed")
    expect(events.at(-1)?.response?.error?.message).toContain("closed the stream")
  })
})
