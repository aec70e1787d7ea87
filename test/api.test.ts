/** Bad input gets a clear OpenAI-shaped error naming what is wrong, and never reaches an upstream. */
import { request } from "node:http"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateError, validateModelList } from "./support/openai-schemas"

let upstream: FakeServer
let gateway: RunningGateway

beforeAll(async () => {
  upstream = await startOpenAIFake()
  gateway = await startGateway(
    `
server: { max_body_bytes: 2000 }
models:
  - { id: gpt, provider: openai, base_url: "${upstream.url}/v1" }
routes:
  - { id: default, targets: [gpt] }
consensus:
  presets:
    - { id: code-review, models: [gpt, default] }
`,
    { OPENAI_API_KEY: OPENAI_KEY }
  )
})
afterAll(async () => {
  await gateway.close()
  await upstream.close()
})

const send = async (body: string) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body
  })
  const json = (await response.json()) as { error: { message: string; param: string | null; code: string | null; type: string } }
  expect(validateError(json)).toEqual([])
  return { status: response.status, error: json.error }
}

const hello = [{ role: "user", content: "hi" }]

describe("an invalid request", () => {
  it.each([
    ["not JSON", "{\"model\": ", null, "invalid_json"],
    ["a JSON array", "[1, 2]", null, "invalid_json"],
    ["no messages", JSON.stringify({ model: "gpt" }), "messages", "missing_required_parameter"],
    ["empty messages", JSON.stringify({ model: "gpt", messages: [] }), "messages", "invalid_value"],
    ["an unknown role", JSON.stringify({ model: "gpt", messages: [{ role: "robot", content: "x" }] }), "messages[0].role", "invalid_value"],
    ["a temperature out of range", JSON.stringify({ model: "gpt", messages: hello, temperature: 7 }), "temperature", "invalid_value"],
    ["a non-integer max_tokens", JSON.stringify({ model: "gpt", messages: hello, max_tokens: 1.5 }), "max_tokens", "invalid_value"],
    ["a tool without a name", JSON.stringify({ model: "gpt", messages: hello, tools: [{ type: "function", function: {} }] }), "tools[0].function.name", "missing_required_parameter"],
    ["a bad response_format", JSON.stringify({ model: "gpt", messages: hello, response_format: { type: "yaml" } }), "response_format.type", "invalid_value"]
  ])("with %s is a 400 naming the field", async (_, body, param, code) => {
    const before = upstream.received.length
    const res = await send(body)
    expect(res.status).toBe(400)
    expect(res.error.type).toBe("invalid_request_error")
    expect(res.error.param).toBe(param)
    expect(res.error.code).toBe(code)
    if (param !== null) expect(res.error.message).toContain(param)
    expect(upstream.received.length).toBe(before)
  })

  it("for an unknown model is a 404 that lists the known ones", async () => {
    const res = await send(JSON.stringify({ model: "gpt-9", messages: hello }))
    expect(res.status).toBe(404)
    expect(res.error.code).toBe("model_not_found")
    expect(res.error.param).toBe("model")
    expect(res.error.message).toContain("gpt-9")
    expect(res.error.message).toContain("default, gpt")
  })

  it("over the body limit is a 413, by declared length", async () => {
    const before = upstream.received.length
    const res = await send(JSON.stringify({ model: "gpt", messages: [{ role: "user", content: "x".repeat(5000) }] }))
    expect(res.status).toBe(413)
    expect(res.error.message).toContain("2000 bytes")
    expect(upstream.received.length).toBe(before)
  })

  it("over the body limit is a 413 when sent chunked, without a length", async () => {
    const big = JSON.stringify({ model: "gpt", messages: [{ role: "user", content: "x".repeat(5000) }] })
    const before = upstream.received.length
    // node:http reads a response that comes before the upload is done, as HTTP allows.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gateway.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" } }, (res) => resolve(res.statusCode ?? 0))
      req.on("error", reject)
      for (let i = 0; i < big.length; i += 500) req.write(big.slice(i, i + 500))
      req.end()
    })
    expect(status).toBe(413)
    expect(upstream.received.length).toBe(before)
  })
})

describe("the other routes", () => {
  it("answer unknown paths with a 404 in OpenAI's shape", async () => {
    const response = await fetch(`${gateway.url}/v1/embeddings`, { method: "POST", body: "{}" })
    expect(response.status).toBe(404)
    const body = await response.json()
    expect(validateError(body)).toEqual([])
  })

  it("report health", async () => {
    const response = await fetch(`${gateway.url}/health`)
    expect(await response.json()).toEqual({ status: "ok", models: 1, routes: 1 })
  })

  it("publish an OpenAPI document that covers the API", async () => {
    const doc = (await (await fetch(`${gateway.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> }
    expect(doc.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.paths).sort()).toEqual(["/health", "/v1/chat/completions", "/v1/models"])
  })
})

describe("GET /v1/models/{id}", () => {
  /** OpenAI's Model schema, through the list schema that refers to it. */
  const validateModel = (model: unknown) => validateModelList({ object: "list", data: [model] })

  it("answers the openai SDK's models.retrieve with the model object, as the list has it", async () => {
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const listed = new Map<string, unknown>()
    for await (const model of client.models.list()) listed.set(model.id, { ...model })
    for (const id of ["gpt", "default", "consensus", "consensus/code-review"]) {
      const model = await client.models.retrieve(id)
      expect(validateModel(model)).toEqual([])
      expect({ ...model }).toEqual(listed.get(id))
    }
    expect(await client.models.retrieve("gpt")).toMatchObject({ id: "gpt", object: "model", owned_by: "openai" })
  })

  it("routes an id with a slash, sent as it is or encoded", async () => {
    for (const path of ["consensus/code-review", "consensus%2Fcode-review"]) {
      const response = await fetch(`${gateway.url}/v1/models/${path}`)
      expect(response.status).toBe(200)
      expect(((await response.json()) as { id: string }).id).toBe("consensus/code-review")
    }
  })

  it("answers an unknown id with a 404 model_not_found in OpenAI's shape, which the SDK raises as NotFoundError", async () => {
    for (const path of ["gpt-9", "consensus/nope", "gpt/extra"]) {
      const response = await fetch(`${gateway.url}/v1/models/${path}`)
      expect(response.status).toBe(404)
      const body = (await response.json()) as { error: { code: string; message: string } }
      expect(validateError(body)).toEqual([])
      expect(body.error.code).toBe("model_not_found")
      expect(body.error.message).toContain(`\`${path}\``)
    }
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    expect(await client.models.retrieve("gpt-9").catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError)
  })
})
