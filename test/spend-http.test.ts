/**
 * Spend through the HTTP API: costs on responses, the ledger behind them, virtual keys
 * and the admin API, the errors a refused request gets, and reports that add up.
 */
import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { KEY_PREFIX } from "../src/billing/keys"
import { chatBound } from "../src/billing/worst-case"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateError } from "./support/openai-schemas"
import { startPostgres } from "./support/postgres"
import { openStore } from "./support/spend"

const ADMIN = "admin-secret-for-tests-0123456789"

let upstream: FakeServer
let gateway: RunningGateway
/** The main gateway's SQLite folder, for tests that read the ledger's rows themselves. */
const dataDir = mkdtempSync(join(tmpdir(), "quorum-data-"))

const yaml = () => `
models:
  - { id: gpt-4o, provider: openai, base_url: "${upstream.url}/v1" }
  - { id: cheap, provider: openai, model: gpt-4o-mini, base_url: "${upstream.url}/v1" }
  - { id: slow, provider: sim, price: { input: 1000, output: 1000 }, max_output_tokens: 100, sim: { latency_ms: 400, tokens_per_second: 20, answers: ["Paris is the capital of France, and it has been for a very long time."] } }
  - { id: judge-a, provider: sim, price: { input: 1, output: 1 }, weight: 3, sim: { latency_ms: 5, answers: ["Paris"] } }
  - { id: judge-b, provider: sim, price: { input: 1, output: 1 }, weight: 2, sim: { latency_ms: 5, answers: ["Paris"] } }
  - { id: judge-c, provider: sim, price: { input: 1, output: 1 }, weight: 1, sim: { latency_ms: 5, answers: ["Lyon"] } }
  - { id: cutoff, provider: sim, timeouts: { total_ms: 300 }, sim: { latency_ms: 5, tokens_per_second: 10, answers: ["one two three four five six seven eight nine ten eleven twelve"] } }
  - { id: grader, provider: sim, price: { input: 1, output: 1 }, sim: { latency_ms: 1, answers: ['{"scores": [0.9, 0.2]}'] } }
consensus:
  evaluators:
    - { name: grade, type: llm_judge, model: grader, instructions: correctness }
auth: { mode: keys }
spend: { flush_ms: 5 }
`

beforeAll(async () => {
  upstream = await startOpenAIFake()
  gateway = await startGateway(yaml(), { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN, QUORUM_DATA_DIR: dataDir })
})
afterAll(async () => {
  await gateway?.close()
  await upstream?.close()
})

const admin = async (method: string, path: string, body?: unknown, key = ADMIN) => {
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: (await response.json()) as any }
}

const newKey = async (spec: Record<string, unknown>) => {
  const created = await admin("POST", "/admin/keys", { name: "test", ...spec })
  expect(created.status).toBe(201)
  return created.body as { id: string; key: string }
}

const chat = async (key: string | undefined, body: Record<string, unknown>) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ messages: [{ role: "user", content: "What is the capital of France?" }], ...body })
  })
  return { status: response.status, headers: response.headers, body: (await response.json()) as any }
}

/** Waits until the ledger writer has nothing pending. */
const flushed = async () => {
  for (let i = 0; i < 200; i++) {
    const status = await admin("GET", "/admin/ledger")
    if (status.body.pending === 0) return
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error("the ledger did not flush")
}

describe("virtual keys", () => {
  it("refuses a request without a key, with a bad key, and with a revoked key, in OpenAI's shape", async () => {
    const missing = await chat(undefined, { model: "gpt-4o" })
    expect(missing.status).toBe(401)
    expect(validateError(missing.body)).toEqual([])
    expect(missing.body.error.code).toBe("invalid_api_key")
    expect(missing.body.error.message).toContain("didn't provide an API key")

    const wrong = await chat(`${KEY_PREFIX}nope`, { model: "gpt-4o" })
    expect(wrong.status).toBe(401)
    expect(wrong.body.error.message).toContain("Incorrect API key")

    const { id, key } = await newKey({})
    expect((await chat(key, { model: "gpt-4o" })).status).toBe(200)
    expect((await admin("DELETE", `/admin/keys/${id}`)).body.revoked_at).toBeTypeOf("number")
    const revoked = await chat(key, { model: "gpt-4o" })
    expect(revoked.status).toBe(401)
    expect(revoked.body.error.message).toContain("revoked")
    expect(upstream.received.length).toBeGreaterThan(0)
  })

  it("works with the official OpenAI SDK, the key as its apiKey", async () => {
    const { key } = await newKey({ models: ["gpt-4o"] })
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const completion = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
    expect(completion.choices[0]!.message.content).toBe("Echo: hi")
    const denied = await client.chat.completions.create({ model: "cheap", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e)
    expect(denied).toBeInstanceOf(OpenAI.PermissionDeniedError)
  })

  it("lists the models a key may use, and none without a key where keys are required", async () => {
    const list = async (key?: string) => {
      const response = await fetch(`${gateway.url}/v1/models`, key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } })
      return { status: response.status, body: (await response.json()) as any }
    }
    const anonymous = await list()
    expect(anonymous.status).toBe(401)
    expect(validateError(anonymous.body)).toEqual([])
    expect((await fetch(`${gateway.url}/evaluators`)).status).toBe(401)
    const { key } = await newKey({ models: ["cheap", "consensus"] })
    expect((await list(key)).body.data.map((m: any) => m.id).sort()).toEqual(["cheap", "consensus"])
    const { key: any } = await newKey({})
    expect((await list(any)).body.data.map((m: any) => m.id)).toContain("gpt-4o")
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    const ids: Array<string> = []
    for await (const model of client.models.list()) ids.push(model.id)
    expect(ids.sort()).toEqual(["cheap", "consensus"])
    expect((await fetch(`${gateway.url}/evaluators`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200)
  })

  it("retrieves one model under the list's rules: a key's own models, 404 for the others, 401 without a key", async () => {
    const { key } = await newKey({ models: ["cheap", "consensus"] })
    const client = new OpenAI({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    expect(await client.models.retrieve("cheap")).toMatchObject({ id: "cheap", object: "model", owned_by: "openai" })
    // A model the key may not use is not found, as OpenAI answers; the message lists only the key's own.
    const hidden = await fetch(`${gateway.url}/v1/models/gpt-4o`, { headers: { authorization: `Bearer ${key}` } })
    expect(hidden.status).toBe(404)
    const body = (await hidden.json()) as any
    expect(validateError(body)).toEqual([])
    expect(body.error.code).toBe("model_not_found")
    expect(body.error.message).toContain("available: consensus, cheap")
    expect(body.error.message).not.toContain("judge-a")
    expect(await client.models.retrieve("gpt-4o").catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError)
    const anonymous = new OpenAI({ apiKey: "not-a-quorum-key", baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    expect(await anonymous.models.retrieve("cheap").catch((e: unknown) => e)).toBeInstanceOf(OpenAI.AuthenticationError)
    const { key: all } = await newKey({})
    expect((await fetch(`${gateway.url}/v1/models/gpt-4o`, { headers: { authorization: `Bearer ${all}` } })).status).toBe(200)
  })

  it("answers 403 naming the model a key may not use", async () => {
    const { key } = await newKey({ models: ["cheap"] })
    const denied = await chat(key, { model: "gpt-4o" })
    expect(denied.status).toBe(403)
    expect(validateError(denied.body)).toEqual([])
    expect(denied.body.error).toMatchObject({ code: "model_not_allowed", param: "model" })
    expect(denied.body.error.message).toContain("`gpt-4o`")
    expect(denied.body.error.message).toContain("cheap")
  })

  it("answers 429 rate_limit_exceeded with retry-after when the key's requests per minute are used", async () => {
    const { key } = await newKey({ rpm: 2 })
    expect((await chat(key, { model: "cheap" })).status).toBe(200)
    expect((await chat(key, { model: "cheap" })).status).toBe(200)
    const limited = await chat(key, { model: "cheap" })
    expect(limited.status).toBe(429)
    expect(limited.body.error).toMatchObject({ code: "rate_limit_exceeded", type: "requests" })
    expect(Number(limited.headers.get("retry-after"))).toBe(30)
  })

  it("answers 429 insufficient_quota, without retry-after, when the budget is spent, and names what is left", async () => {
    // gpt-4o-mini, about 20 prompt and 100 output tokens at most: a worst case of 63 micro-dollars.
    const request = { model: "cheap", max_tokens: 100 }
    const bound = chatBound(gateway.config, { ...request, messages: [{ role: "user", content: "What is the capital of France?" }] })
    const { id, key } = await newKey({ budget_usd: (bound.option.micros + 3) / 1e6, budget_period: "day" })
    expect((await chat(key, request)).status).toBe(200)
    await flushed()
    // Settled at its real cost (11 + 7 tokens: 6 micro-dollars), not at the 63 it reserved.
    expect((await admin("GET", `/admin/keys/${id}`)).body.spend).toMatchObject({ spent_usd: "0.000006", reserved_usd: "0.000000" })
    const spent = await chat(key, request)
    expect(spent.status).toBe(429)
    expect(spent.headers.get("retry-after")).toBeNull()
    // Refused before any upstream call: it cost nothing, and says so like every response.
    expect(spent.headers.get("x-quorum-cost-usd")).toBe("0.000000")
    expect(validateError(spent.body)).toEqual([])
    expect(spent.body.error).toMatchObject({ code: "insufficient_quota", type: "insufficient_quota" })
    expect(spent.body.error.message).toContain("daily budget")
    expect(spent.body.error.message).toContain(`$${((bound.option.micros + 3 - 6) / 1e6).toFixed(6)} left`)
    expect(spent.body.error.message).toContain("max_tokens")
  })

  it("counts a prompt that spells out a tokenizer's special tokens as the text it is", async () => {
    const { key } = await newKey({ budget_usd: 1, tpm: 100_000 })
    const answer = await chat(key, { model: "cheap", max_tokens: 20, messages: [{ role: "user", content: "What does <|endoftext|> or <|im_start|> mean?" }] })
    expect(answer.status).toBe(200)
  })

  it("reserves the tools a request defines as prompt: a budget that fits the request without them refuses it with them", async () => {
    const field = (i: number) => [`field_${i}`, { type: "string", description: `The order's field number ${i}, as the warehouse system names it` }]
    const tools = [{
      type: "function" as const,
      function: { name: "lookup_order", description: "Finds an order by its id.", parameters: { type: "object", properties: Object.fromEntries(Array.from({ length: 40 }, (_, i) => field(i))) } }
    }]
    const request = { model: "cheap", max_tokens: 100 }
    const messages = [{ role: "user" as const, content: "What is the capital of France?" }]
    const without = chatBound(gateway.config, { ...request, messages }).option.micros
    // 40 described fields are ~800 tokens of prompt: ~120 micro-dollars at gpt-4o-mini's input price.
    expect(chatBound(gateway.config, { ...request, messages, tools }).option.micros).toBeGreaterThan(without + 100)
    const { key } = await newKey({ budget_usd: (without + 3) / 1e6 })
    const refused = await chat(key, { ...request, tools })
    expect(refused.status).toBe(429)
    expect(refused.body.error).toMatchObject({ code: "insufficient_quota" })
    expect((await chat(key, request)).status).toBe(200)
  })
})

describe("the admin API", () => {
  it("is closed without the admin key, and shows a key's secret only when it is created", async () => {
    expect((await admin("GET", "/admin/keys", undefined, "wrong")).status).toBe(401)
    const anonymous = await fetch(`${gateway.url}/admin/keys`)
    expect(anonymous.status).toBe(401)
    // Refused by the admin API's security middleware, in OpenAI's shape like every error.
    const refusal = (await anonymous.json()) as any
    expect(validateError(refusal)).toEqual([])
    expect(refusal.error).toMatchObject({ code: "invalid_api_key", type: "invalid_request_error" })
    expect(refusal.error.message).toContain("admin key")
    // The key must come as a Bearer token, not under another scheme of the same length.
    expect((await fetch(`${gateway.url}/admin/keys`, { headers: { authorization: `Token  ${ADMIN}` } })).status).toBe(401)
    expect((await fetch(`${gateway.url}/admin/keys`, { headers: { authorization: `bearer ${ADMIN}` } })).status).toBe(200)
    const created = await newKey({ name: "shown-once", budget_usd: 12.5, budget_period: "month", tpm: 10_000 })
    expect(created.key.startsWith(KEY_PREFIX)).toBe(true)
    const listed = await admin("GET", "/admin/keys")
    expect(JSON.stringify(listed.body)).not.toContain(created.key)
    const one = await admin("GET", `/admin/keys/${created.id}`)
    expect(one.body).toMatchObject({ name: "shown-once", budget_usd: 12.5, budget_period: "month", tpm: 10_000, prefix: created.key.slice(0, 9) })
    expect(one.body.key).toBeUndefined()
    const patched = await admin("PATCH", `/admin/keys/${created.id}`, { budget_usd: null, name: "renamed" })
    expect(patched.body).toMatchObject({ name: "renamed", budget_usd: null, tpm: 10_000 })
    expect((await admin("GET", "/admin/keys/key_missing")).status).toBe(404)
  })

  it("rejects a bad key spec, a misspelt field or an unknown model, with the field that is wrong", async () => {
    const bad = await admin("POST", "/admin/keys", { name: "x", budget_period: "week" })
    expect(bad.status).toBe(400)
    expect(bad.body.error.param).toBe("budget_period")
    const typo = await admin("POST", "/admin/keys", { name: "x", budget: 5 })
    expect(typo.status).toBe(400)
    expect(typo.body.error).toMatchObject({ param: "budget", code: "unknown_parameter" })
    expect(typo.body.error.message).toContain("budget_usd")
    const model = await admin("POST", "/admin/keys", { name: "x", models: ["cheap", "gpt4o"] })
    expect(model.status).toBe(400)
    expect(model.body.error).toMatchObject({ param: "models[1]", code: "model_not_found" })
    expect(model.body.error.message).toContain("gpt-4o")
    const { id } = await newKey({ models: ["consensus"] })
    expect((await admin("PATCH", `/admin/keys/${id}`, { rpm: 0 })).body.error.param).toBe("rpm")
    expect((await admin("PATCH", `/admin/keys/${id}`, { models: ["nope"] })).status).toBe(400)
    expect((await admin("GET", `/admin/keys/${id}`)).body.models).toEqual(["consensus"])
    const report = await admin("GET", "/admin/spend?group_by=colour")
    expect(report.status).toBe(400)
    expect(report.body.error.param).toBe("group_by")
  })
})

describe("costs and the ledger", () => {
  it("puts the cost on the response and the same cost in the ledger, attempt by attempt", async () => {
    const { id, key } = await newKey({})
    const answered = await chat(key, { model: "gpt-4o" })
    // 11 prompt tokens at $2.50/1M and 7 output at $10/1M: 97.5 micro-dollars, rounded up.
    expect(answered.headers.get("x-quorum-cost-usd")).toBe("0.000098")
    const requestId = answered.headers.get("x-request-id")!
    await flushed()
    const report = await admin("GET", `/admin/spend?group_by=key,model,provider&key=${id}`)
    expect(report.body.data).toEqual([{ key: id, key_name: "test", model: "gpt-4o", provider: "openai", requests: 1, succeeded: 1, refused: 0, failed: 0, cancelled: 0, by_status: { "200": 1 }, attempts: 1, prompt_tokens: 11, completion_tokens: 7, cost_micros: 98, cost_usd: "0.000098" }])
    expect((await admin("GET", `/admin/keys/${id}`)).body.spend).toMatchObject({ spent_usd: "0.000098", reserved_usd: "0.000000" })
    expect(requestId).toMatch(/^req-/)
  })

  it("records a stream cut after its first byte with the error its last event named", async () => {
    const { key } = await newKey({})
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "cutoff", stream: true, messages: [{ role: "user", content: "count" }] })
    })
    const text = await response.text()
    expect(response.status).toBe(200)
    expect(text).toContain("no response within 300 ms (total_ms)")
    const requestId = response.headers.get("x-request-id")
    await flushed()
    const recorded = await admin("GET", `/admin/requests/${requestId}`)
    expect(recorded.body).toMatchObject({ status: 200, stream: true, cancelled: false })
    expect(recorded.body.error).toContain("no response within 300 ms (total_ms)")
  })

  it("sends a stream's cost as a trailer, once the stream has ended", async () => {
    const { key } = await newKey({})
    const { body, trailers } = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      const req = httpRequest(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }
      }, (res) => {
        let text = ""
        res.on("data", (d: Buffer) => (text += d.toString()))
        res.on("end", () => resolve({ body: text, trailers: res.trailers }))
        res.on("error", reject)
      })
      req.end(JSON.stringify({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "hi" }] }))
    })
    expect(body.trim().endsWith("data: [DONE]")).toBe(true)
    expect(trailers["x-quorum-cost-usd"]).toBe("0.000098")
  })

  it("reports spend by key, model, provider and day that adds up to the ledger's rows", async () => {
    const a = await newKey({ name: "report-a" })
    const b = await newKey({ name: "report-b" })
    const costs: Array<number> = []
    for (const [key, model] of [[a.key, "gpt-4o"], [a.key, "cheap"], [b.key, "cheap"], [b.key, "slow"], [b.key, "gpt-4o"]] as const) {
      const answered = await chat(key, { model, max_tokens: 5 })
      expect(answered.status).toBe(200)
      costs.push(Math.round(Number(answered.headers.get("x-quorum-cost-usd")) * 1e6))
    }
    await flushed()
    const mine = (row: { key: string }) => row.key === a.id || row.key === b.id
    const full = await admin("GET", "/admin/spend?group_by=key,model,provider,day")
    const rows = full.body.data.filter(mine)
    expect(rows).toHaveLength(5)
    expect(rows.reduce((s: number, r: any) => s + r.cost_micros, 0)).toBe(costs.reduce((s, c) => s + c, 0))
    const today = new Date().toISOString().slice(0, 10)
    expect(new Set(rows.map((r: any) => r.day))).toEqual(new Set([today]))
    const byKey = await admin("GET", `/admin/spend?group_by=key&from=${today}&to=${today}`)
    const keyA = byKey.body.data.find((r: any) => r.key === a.id)
    expect(keyA.cost_micros).toBe(costs[0]! + costs[1]!)
    expect(keyA.requests).toBe(2)
    const byProvider = await admin("GET", "/admin/spend?group_by=provider")
    const everything = await admin("GET", "/admin/spend?group_by=")
    expect(byProvider.body.data.reduce((s: number, r: any) => s + r.cost_micros, 0)).toBe(everything.body.data[0].cost_micros)
    expect(everything.body.total.cost_micros).toBe(everything.body.data[0].cost_micros)
  })

  it("records a stream the client abandoned as cancelled, billed on an estimate, and releases its reservation", async () => {
    const { id, key } = await newKey({ budget_usd: 10 })
    const controller = new AbortController()
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "slow", stream: true, messages: [{ role: "user", content: "hi" }] }),
      signal: controller.signal
    }).catch((e: unknown) => e)
    // Headers come with the first chunk; the rest takes most of a second: leave in the middle.
    expect(response).toBeInstanceOf(Response)
    controller.abort()
    await expect.poll(async () => (await admin("GET", `/admin/keys/${id}`)).body.spend.reserved_usd, { timeout: 3_000 }).toBe("0.000000")
    const { close, sql } = await openStore({ kind: "sqlite", path: join(dataDir, "quorum.db") })
    try {
      const rows = await Effect.runPromise(sql<Record<string, unknown>>`SELECT r.status AS status, r.cancelled AS cancelled, a.status AS attempt,
          a.estimated AS estimated, a.completion_tokens AS output, a.cost_micros AS cost
        FROM quorum_requests r JOIN quorum_attempts a ON a.request_id = r.id WHERE r.key_id = ${id}`)
      expect(rows).toHaveLength(1)
      expect(rows[0]).toMatchObject({ status: 499, cancelled: 1, attempt: "cancelled", estimated: 1 })
      // What was streamed before the client left is billed, and no more than the whole answer.
      expect(Number(rows[0]!.output)).toBeGreaterThan(0)
      expect(Number(rows[0]!.output)).toBeLessThan(18)
      expect(Number(rows[0]!.cost)).toBeGreaterThan(0)
    } finally {
      await close()
    }
  })

  it("counts an LLM judge's calls in the consensus request that caused them", async () => {
    const { id, key } = await newKey({})
    const response = await fetch(`${gateway.url}/v1/consensus`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Capital of France?", models: ["judge-a", "judge-c"], evaluators: [{ name: "grade" }], early_stop: false })
    })
    const body = (await response.json()) as any
    expect(response.status).toBe(200)
    expect(body.candidates.map((c: any) => c.scores.grade)).toEqual([0.9, 0.2])
    await flushed()
    const report = await admin("GET", `/admin/spend?group_by=model&key=${id}`)
    expect(report.body.data.map((r: any) => [r.model, r.requests, r.attempts])).toEqual([["grader", 1, 1], ["judge-a", 1, 1], ["judge-c", 1, 1]])
    // The report's cost_usd is the whole request's, the judge's call included, as in the header and the ledger.
    const grader = report.body.data.find((r: any) => r.model === "grader").cost_micros
    expect(grader).toBeGreaterThan(0)
    expect(body.cost_usd).toBe(response.headers.get("x-quorum-cost-usd"))
    const candidates = body.candidates.reduce((sum: number, c: any) => sum + Math.round(Number(c.cost_usd) * 1e6), 0)
    expect(Math.round(Number(body.cost_usd) * 1e6)).toBe(candidates + grader)
    expect(report.body.total.cost_micros).toBe(Math.round(Number(response.headers.get("x-quorum-cost-usd")) * 1e6))
  })

  it("fans out only to models the key may use when Quorum picks them, and refuses a list naming others", async () => {
    const { key } = await newKey({ models: ["judge-b", "judge-c"] })
    const post = (body: unknown) =>
      fetch(`${gateway.url}/v1/consensus`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }))
    const picked = await post({ prompt: "Capital of France?", fanout: 3 })
    expect(picked.status).toBe(200)
    expect(picked.body.candidates.map((c: any) => c.model).sort()).toEqual(["judge-b", "judge-c"])
    const named = await post({ prompt: "Capital of France?", models: ["judge-a", "judge-b"] })
    expect(named.status).toBe(403)
    expect(named.body.error.message).toContain("`judge-a`")
  })

  it("falls back to one model when the key's budget does not fit the fan-out, and says so", async () => {
    const request = { messages: [{ role: "user" as const, content: "Capital of France?" }], models: ["judge-a", "judge-b", "judge-c"], max_tokens: 10 }
    const one = chatBound(gateway.config, { model: "judge-a", messages: request.messages, max_tokens: 10 }).option.micros
    const { key } = await newKey({ budget_usd: (one * 1.5) / 1e6 })
    const response = await fetch(`${gateway.url}/v1/consensus`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(request)
    })
    const body = (await response.json()) as any
    expect(response.status).toBe(200)
    expect(body.fallback).toEqual({ mode: "single", model: "judge-a", reason: "budget: only one model fits the key's remaining budget" })
    expect(body.candidates.filter((c: any) => c.status === "skipped").map((c: any) => c.model).sort()).toEqual(["judge-b", "judge-c"])
    expect(response.headers.get("x-quorum-cost-usd")).toBe(body.cost_usd)
  })
})

describe("with the ledger off", () => {
  it("records no rows, yet still settles what keys spend against their budgets", async () => {
    const quiet = await startGateway(yaml().replace("spend: { flush_ms: 5 }", "spend: { flush_ms: 5, ledger: false }"), { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN })
    try {
      const call = async (path: string, init: RequestInit = {}) => (await fetch(`${quiet.url}${path}`, init)).json() as Promise<any>
      const auth = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }
      const key = await call("/admin/keys", { method: "POST", headers: auth, body: JSON.stringify({ name: "quiet", budget_usd: 1 }) })
      const answered = await fetch(`${quiet.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      })
      expect(answered.headers.get("x-quorum-cost-usd")).toBe("0.000098")
      await expect.poll(async () => (await call(`/admin/keys/${key.id}`, { headers: auth })).spend, { timeout: 3_000 })
        .toMatchObject({ spent_usd: "0.000098", reserved_usd: "0.000000" })
      expect((await call("/admin/spend?group_by=", { headers: auth })).data[0].requests).toBe(0)
    } finally {
      await quiet.close()
    }
  })
})

describe("on shutdown", () => {
  it("writes the rows still waiting for their batch before the process stops", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-data-"))
    const slow = await startGateway(yaml().replace("spend: { flush_ms: 5 }", "spend: { flush_ms: 10000 }"), {
      OPENAI_API_KEY: OPENAI_KEY,
      QUORUM_ADMIN_KEY: ADMIN,
      QUORUM_DATA_DIR: dir
    })
    const answered = await fetch(`${slow.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "cheap", messages: [{ role: "user", content: "hi" }] })
    })
    expect(answered.status).toBe(401)
    const status = await fetch(`${slow.url}/admin/ledger`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<any>)
    expect(status).toMatchObject({ pending: 1, written: 0 })
    await slow.close()
    const { close, sql } = await openStore({ kind: "sqlite", path: join(dir, "quorum.db") })
    try {
      const rows = await Effect.runPromise(sql<{ id: string; status: unknown }>`SELECT id, status FROM quorum_requests`)
      expect(rows.map((r) => [r.id, Number(r.status)])).toEqual([[answered.headers.get("x-request-id"), 401]])
    } finally {
      await close()
    }
  })
})

describe("refused requests", () => {
  it("are in the ledger under the key that was refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-data-"))
    const own = await startGateway(yaml(), { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN, QUORUM_DATA_DIR: dir })
    const post = (path: string, key: string, body: unknown) =>
      fetch(`${own.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) })
    const created = (await (await post("/admin/keys", ADMIN, { name: "refused", rpm: 1, models: ["cheap"] })).json()) as any
    const statuses = []
    for (const model of ["cheap", "cheap", "gpt-4o"]) {
      statuses.push((await post("/v1/chat/completions", created.key, { model, messages: [{ role: "user", content: "hi" }] })).status)
    }
    expect(statuses).toEqual([200, 429, 403])
    await own.close()
    const { close, sql } = await openStore({ kind: "sqlite", path: join(dir, "quorum.db") })
    try {
      const rows = await Effect.runPromise(sql<{ key_id: string; status: unknown }>`SELECT key_id, status FROM quorum_requests ORDER BY started_at`)
      expect(rows.map((r) => [r.key_id, Number(r.status)]).sort((a, b) => Number(a[1]) - Number(b[1])))
        .toEqual([[created.id, 200], [created.id, 403], [created.id, 429]])
    } finally {
      await close()
    }
  })
})

describe.each([
  ["SQLite", async () => ({ env: {}, stop: async () => {} })],
  ["PostgreSQL", async () => {
    const pg = await startPostgres()
    return { env: { QUORUM_DATABASE_URL: pg.database("admin_requests") }, stop: () => pg.stop() }
  }]
] as const)("the ledger through the admin API on %s", (_name, database) => {
  let own: RunningGateway
  let stop: () => Promise<void>
  const call = async (path: string, init: { method?: string; key?: string; body?: unknown } = {}) => {
    const response = await fetch(`${own.url}${path}`, {
      method: init.method ?? "GET",
      headers: { authorization: `Bearer ${init.key ?? ADMIN}`, "content-type": "application/json" },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) })
    })
    return { status: response.status, id: response.headers.get("x-request-id"), body: (await response.json()) as any }
  }
  const ask = (key: string, model: string) => call("/v1/chat/completions", { method: "POST", key, body: { model, messages: [{ role: "user", content: "hi" }] } })
  const drained = async () => {
    for (let i = 0; i < 500; i++) {
      if ((await call("/admin/ledger")).body.pending === 0) return
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error("the ledger did not flush")
  }
  let key: { id: string; key: string }
  const answered: Record<string, string> = {}

  beforeAll(async () => {
    const db = await database()
    stop = db.stop
    own = await startGateway(yaml(), { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN, ...db.env })
    key = (await call("/admin/keys", { method: "POST", body: { name: "ops", rpm: 2, models: ["cheap", "gpt-4o"] } })).body
    // Answered, answered, refused by the rate limit (429), refused a model the key may not use (403).
    for (const [name, model] of [["first", "gpt-4o"], ["second", "cheap"], ["limited", "cheap"], ["denied", "slow"]] as const) {
      const response = await ask(key.key, model)
      answered[name] = response.id!
    }
    await drained()
  })
  afterAll(async () => {
    await own?.close()
    await stop?.()
  })

  it("reports refused requests by status instead of counting them as nothing", async () => {
    const report = await call(`/admin/spend?group_by=key&key=${key.id}`)
    expect(report.status).toBe(200)
    expect(report.body.data).toHaveLength(1)
    expect(report.body.data[0]).toMatchObject({ key: key.id, key_name: "ops", requests: 4, succeeded: 2, refused: 2, failed: 0, by_status: { "200": 2, "429": 1, "403": 1 }, attempts: 2 })
    expect(report.body.total).toMatchObject({ requests: 4, refused: 2, cost_micros: report.body.data[0].cost_micros })
  })

  it("lists requests newest first with their x-request-id, filtered and paged", async () => {
    const all = await call(`/admin/requests?key=${key.id}`)
    expect(all.status).toBe(200)
    expect(all.body.data.map((r: any) => r.id)).toEqual([answered.denied, answered.limited, answered.second, answered.first])
    expect(all.body).toMatchObject({ object: "list", has_more: false, next_after: null })
    expect(all.body.data[1]).toMatchObject({ object: "request", key_id: key.id, model: "cheap", status: 429, attempts: 0, cost_micros: 0 })

    const refused = await call(`/admin/requests?key=${key.id}&status=4xx`)
    expect(refused.body.data.map((r: any) => r.id)).toEqual([answered.denied, answered.limited])
    expect((await call(`/admin/requests?key=${key.id}&status=200&model=gpt-4o`)).body.data.map((r: any) => r.id)).toEqual([answered.first])
    const today = new Date().toISOString().slice(0, 10)
    expect((await call(`/admin/requests?key=${key.id}&from=${today}&to=${today}`)).body.data).toHaveLength(4)
    expect((await call(`/admin/requests?key=${key.id}&to=${today}T00:00:00Z`)).body.data).toHaveLength(0)

    const first = await call(`/admin/requests?key=${key.id}&limit=3`)
    expect(first.body).toMatchObject({ has_more: true, next_after: answered.second })
    const rest = await call(`/admin/requests?key=${key.id}&limit=3&after=${first.body.next_after}`)
    expect(rest.body.data.map((r: any) => r.id)).toEqual([answered.first])
    expect(rest.body.has_more).toBe(false)
  })

  it("shows a request by its x-request-id, with its upstream attempts", async () => {
    const found = await call(`/admin/requests/${answered.first}`)
    expect(found.status).toBe(200)
    expect(found.body).toMatchObject({ id: answered.first, key_id: key.id, endpoint: "/v1/chat/completions", model: "gpt-4o", status: 200, attempts: 1, cost_micros: 98 })
    expect(found.body.upstream_attempts).toEqual([
      expect.objectContaining({ seq: 0, model: "gpt-4o", provider: "openai", upstream_model: "gpt-4o", status: "ok", prompt_tokens: 11, completion_tokens: 7, cost_micros: 98 })
    ])
    const missing = await call("/admin/requests/req-nothing")
    expect(missing.status).toBe(404)
    expect(validateError(missing.body)).toEqual([])
    expect(missing.body.error).toMatchObject({ code: "request_not_found", param: "id" })
    expect((await call(`/admin/requests/${answered.first}`, { key: key.key })).status).toBe(401)
    expect((await call(`/admin/requests?key=${key.id}`, { key: "wrong" })).status).toBe(401)
  })

  it.each([
    ["status=20x", "status"],
    ["status=600", "status"],
    ["limit=0", "limit"],
    ["limit=501", "limit"],
    ["limit=ten", "limit"],
    ["from=yesterday", "from"],
    ["to=2026-13-01", "to"],
    ["from=2026-11-20T10:00:00+2", "from"],
    ["after=req-nothing", "after"],
    ["models=gpt-4o", "models"],
    ["status=200&status=429", "status"]
  ])("refuses /admin/requests?%s with a 400 naming the parameter", async (query, param) => {
    const refused = await call(`/admin/requests?${query}`)
    expect(refused.status).toBe(400)
    expect(validateError(refused.body)).toEqual([])
    expect(refused.body.error.param).toBe(param)
    expect(refused.body.error.message).toContain(param)
  })

  it("refuses an unknown /admin/spend parameter with a 400 naming it", async () => {
    const refused = await call("/admin/spend?group=key")
    expect(refused.status).toBe(400)
    expect(refused.body.error).toMatchObject({ param: "group", code: "unknown_parameter" })
  })
})
