/**
 * Consensus as a keyed client meets it: fan-outs Quorum picks from a key's routes and
 * models, consensus fields in chat completions (honoured, and never sent upstream), tool
 * calls under consensus, and what the report says: the majority rule, a single answer,
 * an answer no gate let through, costs that equal the header, and money as decimals.
 */
import { HttpServerResponse } from "@effect/platform"
import { Cause, Effect, Logger } from "effect"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { pickModels } from "../src/consensus/pick"
import { answeringDefects } from "../src/http/errors"
import { type FakeServer, json, startFake } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateChunk, validateCompletion, validateError } from "./support/openai-schemas"

const ADMIN = "admin-secret-for-consensus-tests-0123"

/** Answers every request with text, as a model that ignores the tools it was offered. */
const startTextOnly = () =>
  startFake(({ received, res }) =>
    json(res, 200, {
      id: "chatcmpl-text",
      object: "chat.completion",
      created: 1_700_000_000,
      model: received.body.model,
      choices: [{ index: 0, message: { role: "assistant", content: "It is sunny in Paris.", refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 11, completion_tokens: 6, total_tokens: 17 }
    }))

let fake: FakeServer
let slow: FakeServer
let textOnly: FakeServer
let gateway: RunningGateway
let anyKey: string

const QUORUM_ONLY = ["models", "fanout", "strategy", "evaluators", "max_cost_usd", "early_stop", "min_agreement", "timeout_ms", "prompt", "stream_options"]

beforeAll(async () => {
  fake = await startOpenAIFake()
  slow = await startOpenAIFake({ latencyMs: 60_000 })
  textOnly = await startTextOnly()
  gateway = await startGateway(
    `
defaults:
  retry: { max_attempts: 1 }
consensus:
  default_fanout: 3
  max_fanout: 4
  presets:
    - { id: pair, models: [o1, o2], min_agreement: 0.9 }
models:
  - { id: o1, provider: openai, base_url: "${fake.url}/v1", price: { input: 1, output: 2 } }
  - { id: o2, provider: openai, base_url: "${fake.url}/v1", price: { input: 1, output: 2 } }
  - { id: chatty, provider: openai, base_url: "${textOnly.url}/v1" }
  - { id: sluggish, provider: openai, base_url: "${slow.url}/v1", price: { input: 1000, output: 1000 } }
  - { id: r1, provider: sim, sim: { latency_ms: 5, answers: ["Paris"] } }
  - { id: r2, provider: sim, sim: { latency_ms: 5, answers: ["Paris"] } }
  - { id: p1, provider: sim, price: { input: 1, output: 1 }, sim: { latency_ms: 5, answers: ["42"] } }
  - { id: p2, provider: sim, price: { input: 1, output: 1 }, sim: { latency_ms: 5, answers: ["42"] } }
  - { id: forty-one, provider: sim, sim: { latency_ms: 5, answers: ["41"] } }
  - { id: broken, provider: sim, sim: { latency_ms: 5, error_rate: 1 } }
  - { id: town, provider: sim, sim: { latency_ms: 5, answers: ['{"town": "Paris"}'] } }
  - { id: prose, provider: sim, sim: { latency_ms: 5, answers: ["Paris, I would say."] } }
routes:
  - { id: default, strategy: fallback, targets: [r1, r2] }
  - { id: backup, strategy: fallback, targets: [r2, r1] }
auth: { mode: keys }
spend: { flush_ms: 5 }
`,
    { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN }
  )
  anyKey = await newKey([])
})
afterAll(async () => {
  await gateway?.close()
  await Promise.all([fake?.close(), slow?.close(), textOnly?.close()])
})

/** A virtual key allowed `models` (none: any), made through the admin API. */
const newKey = async (models: ReadonlyArray<string>, limits: Record<string, unknown> = {}): Promise<string> => {
  const response = await fetch(`${gateway.url}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "consensus-test", ...(models.length === 0 ? {} : { models }), ...limits })
  })
  expect(response.status).toBe(201)
  return ((await response.json()) as { key: string }).key
}

const post = async (path: string, key: string, body: Record<string, unknown>) => {
  const response = await fetch(`${gateway.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) as any }
}

const consensus = (body: Record<string, unknown>, key = anyKey) => post("/v1/consensus", key, { prompt: "What is 6 times 7?", ...body })

const chat = (body: Record<string, unknown>, key = anyKey) =>
  post("/v1/chat/completions", key, { model: "consensus", messages: [{ role: "user", content: "What is the capital of France?" }], ...body })

const client = (key = anyKey) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 })

/** Quorum's own fields in a chat request, which the SDK's types do not know. */
const withQuorum = <T extends object>(params: T, quorum: Record<string, unknown>): T => ({ ...params, ...quorum })

const byModel = (report: any, model: string) => report.candidates.find((c: any) => c.model === model)

const WEATHER_TOOL = {
  type: "function" as const,
  function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }
}

describe("a fan-out Quorum picks for a key", () => {
  it("runs on a key that allows only a route, on /v1/consensus and as model consensus", async () => {
    // The README's example key: a route and a budget (which used to end in an empty 500).
    const key = await newKey(["default"], { budget_usd: 50, budget_period: "month" })
    const direct = await consensus({ prompt: "Capital of France?" }, key)
    expect(direct.status).toBe(200)
    expect(direct.body.candidates.map((c: any) => c.model)).toEqual(["default"])
    expect(direct.body.answer).toMatchObject({ content: "Paris", model: "default" })
    expect(direct.body.fallback).toEqual({ mode: "single", model: "default", reason: "the caller's key allows only one model or route to fan out to" })

    const completion = await client(key).chat.completions.create({ model: "consensus", messages: [{ role: "user", content: "Capital of France?" }] })
    expect(validateCompletion(completion)).toEqual([])
    expect(completion.choices[0]!.message.content).toBe("Paris")
  })

  it("lets routes vote like models, each with its first target's weight", async () => {
    const key = await newKey(["default", "backup"])
    const { body, status } = await consensus({ prompt: "Capital of France?", early_stop: false }, key)
    expect(status).toBe(200)
    expect(body.candidates.map((c: any) => c.model).sort()).toEqual(["backup", "default"])
    expect(body.consensus).toMatchObject({ reached: true, agreement: 1 })
  })

  it("does not call one model twice, through a route and by its own name", async () => {
    const key = await newKey(["default", "r1"])
    const { body } = await consensus({ prompt: "Capital of France?" }, key)
    expect(body.candidates.map((c: any) => c.model)).toEqual(["r1"])
  })

  it("answers 403 naming why when the key allows nothing a consensus can call", async () => {
    const key = await newKey(["consensus"])
    const refused = await consensus({}, key)
    expect(refused.status).toBe(403)
    expect(validateError(refused.body)).toEqual([])
    expect(refused.body.error.code).toBe("model_not_allowed")
    expect(refused.body.error.message).toContain("no model or route that a consensus can fan out to")
    expect(refused.body.error.message).toContain("consensus")
    expect((await chat({}, key)).status).toBe(403)
  })

  it("picks routes and models by weight, alternating providers, one per primary deployment", () => {
    const fleet = {
      deployments: new Map([
        ["a", { id: "a", provider: "openai", voteWeight: 2 }],
        ["b", { id: "b", provider: "anthropic", voteWeight: 1.5 }],
        ["c", { id: "c", provider: "openai", voteWeight: 1 }]
      ]),
      routes: new Map([
        ["via-a", { strategy: "fallback" as const, targets: [{ deployment: "a", weight: 1 }, { deployment: "c", weight: 1 }] }],
        ["mostly-c", { strategy: "loadbalance" as const, targets: [{ deployment: "a", weight: 1 }, { deployment: "c", weight: 3 }] }]
      ])
    }
    expect(pickModels(fleet, 3)).toEqual(["a", "b", "c"])
    expect(pickModels(fleet, 3, ["via-a", "mostly-c", "b"])).toEqual(["via-a", "b", "mostly-c"])
    expect(pickModels(fleet, 3, ["via-a", "a"])).toEqual(["a"])
    expect(pickModels(fleet, 3, ["consensus"])).toEqual([])
  })
})

describe("consensus fields in a chat completion", () => {
  it("are honoured, and none of Quorum's fields reaches an upstream", async () => {
    fake.reset()
    const { body, status } = await chat({
      models: ["o1", "o2"],
      strategy: "vote",
      evaluators: [{ name: "answer_match" }],
      max_cost_usd: 1,
      early_stop: false,
      min_agreement: 1,
      timeout_ms: 10_000,
      temperature: 0.2
    })
    expect(status).toBe(200)
    expect(body.consensus.candidates.map((c: any) => c.model).sort()).toEqual(["o1", "o2"])
    expect(Object.keys(body.consensus.candidates[0].scores)).toEqual(["answer_match"])
    expect(body.consensus).toMatchObject({ reached: true, strategy: "vote" })
    expect(fake.received).toHaveLength(2)
    for (const received of fake.received) {
      expect(received.body.temperature).toBe(0.2)
      for (const field of QUORUM_ONLY) expect(received.body).not.toHaveProperty(field)
    }
  })

  it("override a preset's settings, which are their defaults", async () => {
    const preset = await chat({ model: "consensus/pair", early_stop: false })
    expect(preset.body.consensus.candidates.map((c: any) => c.model).sort()).toEqual(["o1", "o2"])
    const overridden = await chat({ model: "consensus/pair", fanout: 2 })
    expect(overridden.status).toBe(200)
    expect(overridden.body.consensus.candidates).toHaveLength(2)
    // min_agreement 0.9 from the preset still applies: a 1–1 split is no consensus.
    const split = await chat({ model: "consensus/pair", models: ["p1", "forty-one"], early_stop: false })
    expect(split.body.consensus.candidates.map((c: any) => c.model)).toEqual(["p1", "forty-one"])
    expect(split.body.consensus.reached).toBe(false)
  })

  it("are checked as on /v1/consensus", async () => {
    const bad = await chat({ fanout: 0 })
    expect(bad.status).toBe(400)
    expect(validateError(bad.body)).toEqual([])
    expect(bad.body.error.param).toBe("fanout")
  })

  it("are not forwarded from /v1/consensus either, with the chat envelope's own fields", async () => {
    fake.reset()
    const { status } = await consensus({ models: ["o1", "o2"], model: "consensus", stream: true, stream_options: { include_usage: true }, seed: 3, early_stop: false })
    expect(status).toBe(200)
    expect(fake.received).toHaveLength(2)
    for (const received of fake.received) {
      expect(received.body).toMatchObject({ seed: 3, stream: false })
      expect(["o1", "o2"]).toContain(received.body.model)
      for (const field of QUORUM_ONLY) expect(received.body).not.toHaveProperty(field)
    }
  })
})

describe("tool calls under consensus", () => {
  const weather = [{ role: "user" as const, content: "What is the weather in Paris?" }]

  it("group by function and canonical arguments, outvote a text answer, and come back as tool_calls", async () => {
    const completion = await client().chat.completions.create(
      withQuorum({ model: "consensus", messages: weather, tools: [WEATHER_TOOL] }, { models: ["o1", "chatty", "o2"], early_stop: false })
    )
    expect(validateCompletion(completion)).toEqual([])
    const choice = completion.choices[0]!
    expect(choice.finish_reason).toBe("tool_calls")
    expect(choice.message.content).toBeNull()
    expect(choice.message.tool_calls).toHaveLength(1)
    const call = choice.message.tool_calls![0]!
    expect(call.type === "function" && call.function.name).toBe("get_weather")
    expect(call.type === "function" && JSON.parse(call.function.arguments)).toEqual({ city: "Paris" })
    const report = (completion as unknown as { consensus: any }).consensus
    expect(report.agreement).toBeCloseTo(2 / 3)
    expect(report.reached).toBe(true)
    expect(report.supporting_models.sort()).toEqual(["o1", "o2"])
    expect(report.candidates.find((c: any) => c.model === "chatty")).toMatchObject({ status: "ok", content: "It is sunny in Paris." })
  })

  it("never group a tool call with a text answer", async () => {
    const { body } = await consensus({ prompt: undefined, messages: weather, tools: [WEATHER_TOOL], models: ["o1", "chatty"], early_stop: false })
    expect(body.consensus).toMatchObject({ reached: false, agreement: 0.5 })
    expect(byModel(body, "o1").tool_calls[0].function.name).toBe("get_weather")
    expect(byModel(body, "o1").content).toBeNull()
  })

  it("stream the winning tool calls", async () => {
    const stream = await client().chat.completions.create(
      withQuorum({ model: "consensus", messages: weather, tools: [WEATHER_TOOL], stream: true as const }, { models: ["o1", "o2"] })
    )
    const chunks = []
    for await (const c of stream) chunks.push(c)
    for (const c of chunks) expect(validateChunk(c)).toEqual([])
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    expect(calls.map((c) => c.function?.name)).toEqual(["get_weather"])
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("tool_calls")
  })
})

describe("the report", () => {
  it("does not call a 1–1 split a consensus", async () => {
    const { body } = await consensus({ models: ["p1", "forty-one"], early_stop: false })
    expect(body.consensus).toMatchObject({ reached: false, agreement: 0.5 })
    expect(body.consensus).not.toHaveProperty("confidence")
  })

  it("reports no agreement for a single answer", async () => {
    const { body, status } = await consensus({ models: ["p1", "broken"] })
    expect(status).toBe(200)
    expect(body.consensus).toMatchObject({ reached: false, agreement: null })
    expect(body.fallback).toEqual({ reason: "only one model gave a usable answer", mode: "single", model: "p1" })
  })

  it("answers 502 no_valid_answer, with each model's reason, when every answer fails the JSON schema", async () => {
    const schema = { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
    const response_format = { type: "json_schema", json_schema: { name: "city", schema } }
    const refused = await consensus({ models: ["town", "prose"], response_format })
    expect(refused.status).toBe(502)
    expect(validateError(refused.body)).toEqual([])
    expect(refused.body.error.code).toBe("no_valid_answer")
    expect(refused.body.error.message).toContain("town: failed json_schema (the answer must have required property 'city')")
    expect(refused.body.error.message).toContain("prose: failed json_schema (not valid JSON)")
    expect(refused.headers.get("x-quorum-cost-usd")).toBe("0.000000")
    const asChat = await client().chat.completions.create(
      withQuorum({ model: "consensus", messages: [{ role: "user" as const, content: "Capital of France?" }], response_format: { type: "json_schema" as const, json_schema: { name: "city", schema } } }, { models: ["town", "prose"] })
    ).catch((e: unknown) => e)
    expect(asChat).toBeInstanceOf(OpenAI.APIError)
    expect((asChat as InstanceType<typeof OpenAI.APIError>).status).toBe(502)
  })

  it("costs what the header says, cancelled calls included, in decimal strings", async () => {
    const { body, headers, status, text } = await consensus({ models: ["p1", "p2", "sluggish"], max_tokens: 10 })
    expect(status).toBe(200)
    expect(body.consensus.early_stopped).toBe(true)
    const cancelled = byModel(body, "sluggish")
    expect(cancelled.status).toBe("cancelled")
    // Billed on an estimate of its prompt, as the ledger bills it.
    expect(Number(cancelled.cost_usd)).toBeGreaterThan(0)
    expect(body.cost_usd).toBe(headers.get("x-quorum-cost-usd"))
    const micros = (usd: string) => Math.round(Number(usd) * 1e6)
    expect(body.candidates.reduce((sum: number, c: any) => sum + micros(c.cost_usd), 0)).toBe(micros(body.cost_usd))
    // Below a ten-thousandth of a dollar, still a plain decimal: "0.000020", never 2e-05.
    const cheap = byModel(body, "p1").cost_usd
    expect(cheap).toMatch(/^0\.0000\d\d$/)
    expect(text).toContain(`"cost_usd":"${cheap}"`)
    expect(text).not.toMatch(/"cost_usd":[^"]/)
  })

  it("gives the same cost in the chat completion's report as in its header", async () => {
    const response = await chat({ models: ["p1", "p2"], max_tokens: 10 })
    expect(response.body.consensus.cost_usd).toMatch(/^0\.0000\d\d$/)
    expect(response.body.consensus.cost_usd).toBe(response.headers.get("x-quorum-cost-usd"))
  })
})

describe("a defect in a route", () => {
  it("answers 500 in OpenAI's shape with the request id, and logs the cause", async () => {
    const logged: Array<string> = []
    const logger = Logger.make(({ annotations, cause, message }) =>
      logged.push(`${String(message)} ${JSON.stringify(Object.fromEntries(annotations))} ${Cause.pretty(cause)}`))
    const response = await Effect.runPromise(
      answeringDefects("/v1/models", Effect.sync((): HttpServerResponse.HttpServerResponse => {
        throw new TypeError("Cannot read properties of undefined (reading 'id')")
      })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    )
    const web = HttpServerResponse.toWeb(response)
    expect(web.status).toBe(500)
    const body = (await web.json()) as any
    expect(validateError(body)).toEqual([])
    expect(body.error).toMatchObject({ type: "server_error", code: "internal_error", param: null })
    const requestId = web.headers.get("x-request-id")!
    expect(body.error.message).toContain(requestId)
    expect(body.error.message).not.toContain("Cannot read")
    expect(logged.join("\n")).toContain("Cannot read properties of undefined")
    expect(logged.join("\n")).toContain(requestId)
  })
})
