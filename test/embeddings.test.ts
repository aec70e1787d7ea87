/**
 * POST /v1/embeddings through a real gateway, with the openai SDK as the client: an
 * OpenAI-compatible upstream and Gemini behind it (loopback fakes in each provider's wire
 * format), routing with fallback, keys and the ledger's cost, input policies.
 */
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FakeServer } from "./fakes/fake-server"
import { GEMINI_KEY, startGeminiFake } from "./fakes/gemini-fake"
import { fakeVector, OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { createKey, type RunningGateway, startGateway } from "./support/gateway"

const ADMIN = "admin-key-for-embeddings"
let openaiUpstream: FakeServer
let gemini: FakeServer
let gateway: RunningGateway
let key: string

beforeAll(async () => {
  ;[openaiUpstream, gemini] = await Promise.all([startOpenAIFake(), startGeminiFake()])
  gateway = await startGateway(
    `
defaults:
  retry: { max_attempts: 1 }
models:
  - { id: small, provider: openai, model: text-embedding-3-small, base_url: "${openaiUpstream.url}/v1", price: { input: 0.02, output: 0 } }
  - { id: gem, provider: gemini, model: gemini-embedding-001, base_url: "${gemini.url}", price: { input: 0.15, output: 0 } }
routes:
  - { id: embed, targets: [small, gem] }
auth: { mode: keys }
spend: { flush_ms: 5 }
policies:
  - { name: mask-email, on: input, action: redact, checks: [{ type: pii, kinds: [email] }] }
`,
    { OPENAI_API_KEY: OPENAI_KEY, GEMINI_API_KEY: GEMINI_KEY, QUORUM_ADMIN_KEY: ADMIN }
  )
  key = await createKey(gateway.url, ADMIN, { name: "embedder", budget_usd: 1 })
})
afterAll(async () => {
  await gateway?.close()
  await Promise.all([openaiUpstream?.close(), gemini?.close()])
})

const client = () => new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })

const ledgerRow = async (requestId: string) => {
  for (;;) {
    const res = await fetch(`${gateway.url}/admin/requests/${requestId}`, { headers: { authorization: `Bearer ${ADMIN}` } })
    if (res.status === 200) return (await res.json()) as { endpoint: string; upstream_attempts: Array<Record<string, unknown>> }
    // The ledger's writer commits every flush_ms: the row is there within a few.
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe("POST /v1/embeddings", () => {
  it("answers the openai SDK from an OpenAI-compatible upstream, the model swapped for the upstream's, billed to the key", async () => {
    const { data, usage, model } = await client().embeddings.create({ model: "small", input: ["the cat sat", "on the mat"], encoding_format: "float" })
    expect(data.map((d) => d.embedding)).toEqual([fakeVector("the cat sat"), fakeVector("on the mat")])
    expect(model).toBe("text-embedding-3-small")
    expect(usage).toEqual({ prompt_tokens: 6, total_tokens: 6 })
    expect(openaiUpstream.received.at(-1)!.body.model).toBe("text-embedding-3-small")

    const raw = await client().embeddings.create({ model: "small", input: "the cat sat" }).withResponse()
    const requestId = raw.response.headers.get("x-request-id")!
    // 3 tokens at $0.02 / Mtok, rounded up to the micro-dollar the ledger keeps.
    expect(raw.response.headers.get("x-quorum-cost-usd")).toBe("0.000001")
    const row = await ledgerRow(requestId)
    expect(row.endpoint).toBe("/v1/embeddings")
    expect(row.upstream_attempts).toEqual([expect.objectContaining({ model: "small", upstream_model: "text-embedding-3-small", prompt_tokens: 3, cost_usd: "0.000001", estimated: false })])
  })

  it("translates to Gemini's batchEmbedContents, base64 and dimensions included, counting the tokens Gemini does not report", async () => {
    const { data, usage } = await client().embeddings.create({ model: "gem", input: ["hello there", "bonjour"], dimensions: 3, encoding_format: "float" })
    expect(data.map((d) => d.embedding)).toEqual([fakeVector("hello there", 3), fakeVector("bonjour", 3)])
    expect(usage.prompt_tokens).toBeGreaterThan(0)
    expect(gemini.received.at(-1)!.body.requests[0]).toEqual({ model: "models/gemini-embedding-001", content: { parts: [{ text: "hello there" }] }, outputDimensionality: 3 })

    // The SDK asks for base64 by default and decodes it: the floats survive the trip.
    const decoded = await client().embeddings.create({ model: "gem", input: "bonjour", dimensions: 4 })
    expect(decoded.data[0]!.embedding.map((v) => Math.round(v * 1e4) / 1e4)).toEqual(fakeVector("bonjour", 4).map((v) => Math.round(v * 1e4) / 1e4))
  })

  it("falls back along a route when the first target fails, and redacts what an input policy masks", async () => {
    openaiUpstream.script({ kind: "status", status: 500, body: { error: { message: "boom", type: "server_error", param: null, code: null } } })
    const raw = await client().embeddings.create({ model: "embed", input: "write to ann@example.com" }).withResponse()
    expect(raw.response.headers.get("x-quorum-deployment")).toBe("gem")
    expect(raw.response.headers.get("x-quorum-policies")).toBe("mask-email")
    expect(gemini.received.at(-1)!.body.requests[0].content.parts[0].text).toBe("write to [REDACTED:email]")
  })

  it("refuses a malformed body naming the field, and a model that serves no embeddings, before any upstream call", async () => {
    const before = openaiUpstream.received.length + gemini.received.length
    const bad = await fetch(`${gateway.url}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "small", input: [] })
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("input")
    const unknown = await client().embeddings.create({ model: "nope", input: "x" }).catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError)
    expect(openaiUpstream.received.length + gemini.received.length).toBe(before)
  })
})
