/**
 * The response cache on a real gateway: a repeated request answered without an upstream
 * call (JSON, and replayed as a stream to the openai SDK), at no cost, per tenant, with
 * the request's directives honoured, and by meaning where a route opts in.
 */
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { createKey, type RunningGateway, startGateway } from "./support/gateway"

const ADMIN = "admin-key-for-cache-tests"
let upstream: FakeServer
let gateway: RunningGateway
let keyA: string
let keyB: string

beforeAll(async () => {
  upstream = await startOpenAIFake()
  gateway = await startGateway(
    `
models:
  - { id: gpt, provider: openai, base_url: "${upstream.url}/v1", price: { input: 1, output: 2 } }
  - { id: embedder, provider: openai, base_url: "${upstream.url}/v1", price: { input: 0.02, output: 0 } }
routes:
  - id: by-meaning
    targets: [gpt]
    cache: { ttl_s: 600, semantic: { model: embedder, threshold: 0.99 } }
auth: { mode: keys }
cache: { ttl_s: 600 }
`,
    { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN }
  )
  keyA = await createKey(gateway.url, ADMIN, { name: "tenant-a", budget_usd: 1 })
  keyB = await createKey(gateway.url, ADMIN, { name: "tenant-b", budget_usd: 1 })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

const chat = (key: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt", temperature: 0, ...body })
  })

const calls = () => upstream.received.filter((r) => r.url === "/v1/chat/completions").length

describe("the response cache", () => {
  it("answers a repeated request without calling the upstream, at no cost, saying what it saved", async () => {
    const messages = [{ role: "user", content: "What is the capital of France? (cache 1)" }]
    const first = await chat(keyA, { messages })
    expect(first.headers.get("x-quorum-cache")).toBe("miss")
    const firstBody = await first.json()
    const before = calls()
    const again = await chat(keyA, { messages })
    expect(again.status).toBe(200)
    expect(again.headers.get("x-quorum-cache")).toBe("hit (exact)")
    expect(again.headers.get("x-quorum-cost-usd")).toBe("0.000000")
    expect(again.headers.get("x-quorum-saved-usd")).toBe(first.headers.get("x-quorum-cost-usd"))
    expect(await again.json()).toEqual(firstBody)
    expect(calls()).toBe(before)
  })

  it("replays a cached answer as a stream the openai SDK reads, and keeps a streamed answer for JSON callers", async () => {
    const client = new OpenAI({ apiKey: keyA, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const messages = [{ role: "user" as const, content: "Name a colour. (cache 2)" }]
    const streamed = await client.chat.completions.create({ model: "gpt", temperature: 0, messages, stream: true })
    let text = ""
    for await (const chunk of streamed) text += chunk.choices[0]?.delta.content ?? ""
    const before = calls()
    const asJson = await chat(keyA, { messages })
    expect(asJson.headers.get("x-quorum-cache")).toBe("hit (exact)")
    expect(((await asJson.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).toBe(text)
    const replay = await client.chat.completions.create({ model: "gpt", temperature: 0, messages, stream: true }).withResponse()
    expect(replay.response.headers.get("x-quorum-cache")).toBe("hit (exact)")
    let replayed = ""
    for await (const chunk of replay.data) replayed += chunk.choices[0]?.delta.content ?? ""
    expect(replayed).toBe(text)
    expect(calls()).toBe(before)
  })

  it("keeps tenants apart: another key's identical request is a miss", async () => {
    const messages = [{ role: "user", content: "Tenant test (cache 3)" }]
    await chat(keyA, { messages })
    const other = await chat(keyB, { messages })
    expect(other.headers.get("x-quorum-cache")).toBe("miss")
  })

  it("caches a sampled request (temperature > 0) only where the settings allow, and honours no_cache, no_store and Cache-Control", async () => {
    const sampled = [{ role: "user", content: "Sampled (cache 4)" }]
    await chat(keyA, { messages: sampled, temperature: 0.7 })
    const sampledBefore = calls()
    expect((await chat(keyA, { messages: sampled, temperature: 0.7 })).headers.get("x-quorum-cache")).toBe("miss")
    expect(calls()).toBe(sampledBefore + 1)

    const messages = [{ role: "user", content: "Directives (cache 5)" }]
    await chat(keyA, { messages, quorum: { cache: { no_store: true } } })
    expect((await chat(keyA, { messages })).headers.get("x-quorum-cache")).toBe("miss")
    expect((await chat(keyA, { messages }, { "cache-control": "no-cache" })).headers.get("x-quorum-cache")).toBe("miss")
    expect((await chat(keyA, { messages })).headers.get("x-quorum-cache")).toBe("hit (exact)")
    // The gateway's own field is never forwarded.
    expect(upstream.received.every((r) => r.body?.quorum === undefined)).toBe(true)
  })

  it("names a bad quorum field in a 400", async () => {
    const response = await chat(keyA, { messages: [{ role: "user", content: "x" }], quorum: { cache: { no_store: "yes" } } })
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe("quorum.cache.no_store")
  })

  it("serves a request that means the same on a route with a semantic cache", async () => {
    // The fake's vectors are made of a text's length, character sum, first and last characters:
    // two words swapped give the same vector, as a real model's would be near for a rephrasing.
    await chat(keyA, { model: "by-meaning", messages: [{ role: "user", content: "Capital city of Italy?" }] })
    const before = calls()
    const near = await chat(keyA, { model: "by-meaning", messages: [{ role: "user", content: "Capital of city Italy?" }] })
    expect(near.headers.get("x-quorum-cache")).toBe("hit (semantic)")
    expect(calls()).toBe(before)
    // Not on a route without the semantic cache: there, only the exact request is a hit.
    await chat(keyA, { messages: [{ role: "user", content: "Capital city of Spain?" }] })
    expect((await chat(keyA, { messages: [{ role: "user", content: "Capital of city Spain?" }] })).headers.get("x-quorum-cache")).toBe("miss")
  })
})
