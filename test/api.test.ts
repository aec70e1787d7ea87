/** Bad input gets a clear OpenAI-shaped error naming what is wrong, and never reaches an upstream. */
import { request } from "node:http"
import Ajv2020 from "ajv/dist/2020"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateError, validateModelList } from "./support/openai-schemas"

const ADMIN = "admin-key-for-api-tests"

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
    { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN }
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
    const response = await fetch(`${gateway.url}/v1/audio/speech`, { method: "POST", body: "{}" })
    expect(response.status).toBe(404)
    const body = await response.json()
    expect(validateError(body)).toEqual([])
  })

  it("keep the admin API off without an admin key, and say how to turn it on", async () => {
    const closed = await startGateway("models:\n  - { id: m, provider: sim }\n")
    try {
      const response = await fetch(`${closed.url}/admin/keys`, { headers: { authorization: "Bearer anything" } })
      expect(response.status).toBe(401)
      const body = (await response.json()) as { error: { message: string; code: string } }
      expect(validateError(body)).toEqual([])
      expect(body.error.code).toBe("invalid_api_key")
      expect(body.error.message).toContain("QUORUM_ADMIN_KEY")
    } finally {
      await closed.close()
    }
  })

  it("report health", async () => {
    const response = await fetch(`${gateway.url}/health`)
    expect(await response.json()).toEqual({ status: "ok", models: 1, routes: 1 })
  })

})

type Operation = {
  operationId: string
  parameters: Array<{ name: string; in: string; required: boolean }>
  requestBody?: { content: Record<string, { schema: unknown }> }
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>
  security: Array<Record<string, Array<string>>>
}
type Document = {
  openapi: string
  info: { title: string; version: string }
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme: string }> }
}

/**
 * Every route the gateway serves, with a request that reaches it: the document must
 * describe each one, and describe nothing else.
 */
const SERVED: Array<[method: string, template: string, path: string, body: unknown]> = [
  ["post", "/v1/chat/completions", "/v1/chat/completions", { model: "gpt", messages: hello }],
  ["post", "/v1/messages", "/v1/messages", { model: "gpt", messages: hello }],
  ["post", "/v1/responses", "/v1/responses", { model: "gpt", input: "hello" }],
  ["post", "/v1/embeddings", "/v1/embeddings", { model: "gpt", input: [] }],
  ["post", "/v1/consensus", "/v1/consensus", {}],
  ["post", "/consensus", "/consensus", {}],
  ["get", "/v1/models", "/v1/models", undefined],
  ["get", "/v1/models/{id}", "/v1/models/gpt", undefined],
  ["get", "/evaluators", "/evaluators", undefined],
  ["post", "/v1/feedback", "/v1/feedback", { id: "consensus-missing", label: "A" }],
  ["get", "/v1/reliability", "/v1/reliability?task=default", undefined],
  ["get", "/v1/routes/{name}/beliefs", "/v1/routes/missing/beliefs", undefined],
  ["get", "/health", "/health", undefined],
  ["get", "/openapi.json", "/openapi.json", undefined],
  ["post", "/admin/keys", "/admin/keys", { name: "api-test" }],
  ["get", "/admin/keys", "/admin/keys", undefined],
  ["get", "/admin/keys/{id}", "/admin/keys/key_missing", undefined],
  ["patch", "/admin/keys/{id}", "/admin/keys/key_missing", { name: "x" }],
  ["delete", "/admin/keys/{id}", "/admin/keys/key_missing", undefined],
  ["get", "/admin/spend", "/admin/spend", undefined],
  ["get", "/admin/requests", "/admin/requests", undefined],
  ["get", "/admin/requests/{id}", "/admin/requests/req-missing", undefined],
  ["get", "/admin/ledger", "/admin/ledger", undefined],
  ["get", "/admin/health", "/admin/health", undefined]
]

describe("the OpenAPI document", () => {
  let doc: Document
  beforeAll(async () => {
    doc = (await (await fetch(`${gateway.url}/openapi.json`)).json()) as Document
  })

  const operations = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })))

  /**
   * A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for a schema of the document,
   * its refs resolved against the document's components. Effect marks its `unknown` schema
   * with the same `$id` everywhere: an annotation, dropped here so that ids stay unique.
   */
  const schemaValidator = (schema: unknown) => {
    const withoutIds = (node: unknown): unknown =>
      Array.isArray(node) ? node.map(withoutIds)
      : typeof node === "object" && node !== null ? Object.fromEntries(Object.entries(node).filter(([k]) => k !== "$id").map(([k, v]) => [k, withoutIds(v)]))
      : node
    return new Ajv2020({ strict: false, allErrors: true }).compile(withoutIds({ allOf: [schema], components: doc.components }) as object)
  }

  /** A $ref's target, or the node itself. */
  const resolve = (node: unknown): unknown => {
    const ref = (node as { $ref?: string } | null)?.$ref
    return ref === undefined ? node : doc.components.schemas[ref.replace("#/components/schemas/", "")]
  }
  /** Every `additionalProperties: false` in a schema, refs followed, with where it is. */
  const closedObjects = (node: unknown, at = "", seen = new Set<unknown>()): Array<string> => {
    const target = resolve(node)
    if (typeof target !== "object" || target === null || seen.has(target)) return []
    seen.add(target)
    const here = (target as Record<string, unknown>).additionalProperties === false ? [at || "(top)"] : []
    return [...here, ...Object.entries(target).flatMap(([k, v]) => closedObjects(v, `${at}/${k}`, seen))]
  }

  it.each(SERVED)("describes %s %s, which the gateway serves (not the catch-all 404)", async (method, template, path, body) => {
    expect(doc.paths[template]?.[method]).toBeDefined()
    const response = await fetch(`${gateway.url}${path}`, {
      method: method.toUpperCase(),
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const answer = (await response.json()) as { error?: { code: string | null } }
    expect(answer.error?.code).not.toBe("unknown_url")
    // The status answered is one the document declares for the route, and the body is what it says.
    const declared = doc.paths[template]![method]!.responses[String(response.status)]
    expect(declared).toBeDefined()
    const validate = schemaValidator(declared!.content!["application/json"]!.schema)
    expect(validate(answer), JSON.stringify(validate.errors)).toBe(true)
  })

  it("describes nothing the gateway does not serve", () => {
    const documented = operations().map(({ method, path }) => `${method} ${path}`).sort()
    expect(documented).toEqual(SERVED.map(([method, template]) => `${method} ${template}`).sort())
  })

  it("is OpenAPI 3.1 in structure: operations with responses, declared path parameters, refs and security schemes that exist", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/)
    expect(doc.info.title).toBe("Quorum")
    expect(typeof doc.info.version).toBe("string")
    const ids = operations().map(({ op }) => op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const { method, op, path } of operations()) {
      expect(["get", "post", "patch", "delete", "put"]).toContain(method)
      expect(path.startsWith("/")).toBe(true)
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])
      expect(op.parameters.filter((p) => p.in === "path").map((p) => p.name)).toEqual(templated)
      for (const p of op.parameters.filter((p) => p.in === "path")) expect(p.required).toBe(true)
      expect(Object.keys(op.responses).some((status) => /^2\d\d$/.test(status))).toBe(true)
      for (const [status, response] of Object.entries(op.responses)) {
        expect(status).toMatch(/^[1-5]\d\d$/)
        expect(response.description.length).toBeGreaterThan(0)
        // Every error has OpenAI's shape, but Anthropic's Messages API's, which has Anthropic's (its SDK reads that).
        const envelope = path === "/v1/messages" ? "AnthropicErrorResponse" : "ErrorResponse"
        if (Number(status) >= 400) expect(response.content?.["application/json"]?.schema).toEqual({ $ref: `#/components/schemas/${envelope}` })
      }
      for (const requirement of op.security) {
        for (const scheme of Object.keys(requirement)) expect(doc.components.securitySchemes[scheme]).toMatchObject({ type: "http", scheme: "bearer" })
      }
    }
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!)
    expect(refs.length).toBeGreaterThan(0)
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//)
      expect(doc.components.schemas[ref.replace("#/components/schemas/", "")]).toBeDefined()
    }
  })

  it("declares the errors of each route, streaming for chat completions, and who may call what", () => {
    const chat = doc.paths["/v1/chat/completions"]!.post!
    expect(Object.keys(chat.responses).sort()).toEqual(["200", "400", "401", "403", "404", "413", "429", "500", "502", "503", "504"])
    expect(Object.keys(chat.responses["200"]!.content!).sort()).toEqual(["application/json", "text/event-stream"])
    expect(Object.keys(doc.paths["/v1/models/{id}"]!.get!.responses).sort()).toEqual(["200", "401", "404", "503"])
    expect(doc.components.schemas.ErrorResponse).toBeDefined()
    // A virtual key, optional on an open gateway; the admin key on every admin route.
    expect(chat.security).toEqual([{ virtualKey: [] }, {}])
    for (const { op, path } of operations()) {
      if (path.startsWith("/admin/")) expect(op.security).toEqual([{ adminKey: [] }])
    }
    expect(doc.paths["/health"]!.get!.security).toEqual([])
  })

  it("lets chat and consensus requests carry fields it does not declare, as the gateway passes them on; key specs may not", () => {
    for (const path of ["/v1/chat/completions", "/v1/consensus", "/consensus"]) {
      const schema = doc.paths[path]!.post!.requestBody!.content["application/json"]!.schema
      expect((resolve(schema) as { properties: Record<string, unknown> }).properties.messages).toBeDefined()
      expect(closedObjects(schema)).toEqual([])
    }
    // The admin API refuses an unknown field in a key spec, and says so.
    expect(closedObjects(doc.paths["/admin/keys"]!.post!.requestBody!.content["application/json"]!.schema)).toContain("(top)")
  })

  it("is served as the gateway builds it, and the gateway passes an undeclared field on, as the document says", async () => {
    const before = upstream.received.length
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt", messages: hello, quorum_test_field: { nested: true } })
    })
    expect(response.status).toBe(200)
    expect(upstream.received.length).toBe(before + 1)
    expect(JSON.stringify(upstream.received[before])).toContain("quorum_test_field")
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
