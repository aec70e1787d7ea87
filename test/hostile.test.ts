/**
 * Hostile input (issue 11), each failure a single request through a real gateway to fake
 * upstreams that count what they receive: deep nesting is a 400 naming the limit, never an
 * empty 500; no client can open a model's circuit for others; invalid values are refused
 * at the edge on chat and consensus alike, so nothing invalid reaches an upstream.
 */
import { Cause, Effect, Exit, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { GatewayConfig } from "../src/config/gateway-config"
import type { ChatCompletionRequest } from "../src/protocol/chat-request"
import { Upstreams } from "../src/providers/upstreams"
import { CircuitBreakers } from "../src/routing/circuit-breaker"
import { Router } from "../src/routing/router"
import { ANTHROPIC_KEY, startAnthropicFake } from "./fakes/anthropic-fake"
import type { FakeServer } from "./fakes/fake-server"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { resolveTestConfig, type RunningGateway, startGateway } from "./support/gateway"
import { validateChatRequest, validateError } from "./support/openai-schemas"

let a: FakeServer
let b: FakeServer
let claude: FakeServer
let gateway: RunningGateway

const env = { OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY }

const models = () => `
models:
  - { id: a, provider: openai, base_url: "${a.url}/v1" }
  - { id: b, provider: openai, base_url: "${b.url}/v1" }
  - { id: claude, provider: anthropic, base_url: "${claude.url}" }
`

beforeAll(async () => {
  ;[a, b, claude] = await Promise.all([startOpenAIFake(), startOpenAIFake(), startAnthropicFake()])
  // The default circuit (5 failures in a row open it) and retries: what production runs.
  gateway = await startGateway(models(), env)
})
afterAll(async () => {
  await gateway.close()
  await Promise.all([a, b, claude].map((f) => f.close()))
})

const received = () => a.received.length + b.received.length + claude.received.length

/** Nested `depth` levels by text alone: building it as a value and stringifying would itself overflow. */
const nested = (depth: number, open: string, close: string, core = "1") => open.repeat(depth) + core + close.repeat(depth)
const deepObject = (depth: number) => nested(depth, "{\"a\":", "}")
const deepArray = (depth: number) => nested(depth, "[", "]")

const post = async (gw: RunningGateway, path: string, text: string, contentType = "application/json") => {
  const response = await fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": contentType }, body: text })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

const errorOf = (answer: { headers: Headers; text: string }) => {
  expect(answer.headers.get("content-type")).toContain("application/json")
  const body = JSON.parse(answer.text)
  expect(validateError(body)).toEqual([])
  return body.error as { message: string; type: string; code: string | null; param: string | null }
}

const valid = async (gw: RunningGateway, model: string) =>
  post(gw, "/v1/chat/completions", JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] }))

describe("deep nesting is a 400 in OpenAI's shape naming the depth limit, never an empty 500", () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ["messages content", "/v1/chat/completions", `{"model":"a","messages":[{"role":"user","content":${deepArray(10_000)}}]}`],
    ["messages", "/v1/chat/completions", `{"model":"a","messages":${deepArray(10_000)}}`],
    ["a consensus prompt", "/v1/consensus", `{"models":["a","b"],"prompt":${deepArray(10_000)}}`],
    [
      "a response_format schema",
      "/v1/chat/completions",
      `{"model":"a","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deepObject(10_000)}}}}`
    ],
    ["a pass-through field", "/v1/chat/completions", `{"model":"a","messages":[{"role":"user","content":"hi"}],"extra":${deepObject(10_000)}}`],
    ["a consensus sampling field", "/v1/consensus", `{"models":["a","b"],"prompt":"hi","extra":${deepObject(10_000)}}`]
  ]
  for (const [where, path, text] of cases) {
    it(`in ${where}`, async () => {
      const before = received()
      const answer = await post(gateway, path, text)
      expect(answer.status).toBe(400)
      const error = errorOf(answer)
      expect(error.type).toBe("invalid_request_error")
      expect(error.code).toBe("max_depth_exceeded")
      expect(error.message).toContain("server.limits.max_depth")
      expect(error.message).toContain("64")
      expect(received()).toBe(before)
    })
  }

  it("a body nested a million levels deep is refused the same way", async () => {
    const answer = await post(gateway, "/v1/chat/completions", `{"model":"a","messages":${deepArray(1_000_000)}}`)
    expect(answer.status).toBe(400)
    expect(errorOf(answer).code).toBe("max_depth_exceeded")
  })
})

describe("no client can take a model offline for others", () => {
  it("20 requests with a pass-through field 10,000 levels deep are 400s, and the model still answers (no 503)", async () => {
    const before = received()
    for (let i = 0; i < 20; i++) {
      const answer = await post(gateway, "/v1/chat/completions", `{"model":"a","messages":[{"role":"user","content":"hi"}],"extra":${deepObject(10_000)}}`)
      expect(answer.status).toBe(400)
      expect(errorOf(answer).param).toBe("extra")
    }
    expect(received()).toBe(before)
    const answer = await valid(gateway, "a")
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.text).choices[0].message.content).toBe("Echo: hello")
  })

  for (const status of [400, 403, 404, 422]) {
    it(`20 requests the upstream refuses with a ${status} for their own content leave the model's circuit closed`, async () => {
      const refusal = { kind: "status" as const, status, body: { error: { message: "No such File object: file-nope", type: "invalid_request_error", param: null, code: null } } }
      a.script(...Array.from({ length: 20 }, () => refusal))
      const file = JSON.stringify({ model: "a", messages: [{ role: "user", content: [{ type: "file", file: { file_id: "file-nope" } }] }] })
      for (let i = 0; i < 20; i++) {
        const answer = await post(gateway, "/v1/chat/completions", file)
        expect(answer.status).toBeGreaterThanOrEqual(400)
        expect(errorOf(answer).message).toContain("file-nope")
      }
      const answer = await valid(gateway, "a")
      expect(answer.status).toBe(200)
    })
  }

  describe("a request that fails on our side before it is sent is a 500 with a request id, and no circuit counts it", () => {
    // An operator who allows deep bodies: 10,000 levels pass the edge, and serializing the
    // body for the upstream overflows the stack, in the openai SDK (model a) and in Quorum's
    // own transport (claude), before anything is sent.
    let deep: RunningGateway
    beforeAll(async () => {
      deep = await startGateway(`server: { limits: { max_depth: 20000 } }\n${models()}`, env)
    })
    afterAll(() => deep.close())

    const bodies: ReadonlyArray<readonly [string, string]> = [
      ["a (openai SDK)", `{"model":"a","messages":[{"role":"user","content":"hi"}],"extra":${deepObject(10_000)}}`],
      [
        "claude (Quorum's transport)",
        `{"model":"claude","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":${deepObject(10_000)}}}}]}`
      ]
    ]
    for (const [model, text] of bodies) {
      it(model, async () => {
        const id = model.split(" ")[0]!
        const before = received()
        const logged = vi.spyOn(console, "log")
        try {
          for (let i = 0; i < 20; i++) {
            logged.mockClear()
            const answer = await post(deep, "/v1/chat/completions", text)
            expect(answer.status).toBe(500)
            const error = errorOf(answer)
            expect(error.type).toBe("server_error")
            expect(error.code).toBe("internal_error")
            const requestId = answer.headers.get("x-request-id")!
            expect(requestId).toMatch(/^req/)
            expect(error.message).toContain(requestId)
            expect(error.message).not.toContain("cannot reach the upstream")
            // Logged once, under the request id, with its cause.
            const lines = logged.mock.calls.map((args) => args.map(String).join(" ")).filter((line) => line.includes(requestId))
            expect(lines).toHaveLength(1)
            expect(lines[0]).toContain("Maximum call stack size exceeded")
          }
        } finally {
          logged.mockRestore()
        }
        // Nothing was sent, and the model's circuit is as closed as before.
        expect(received()).toBe(before)
        const answer = await valid(deep, id)
        expect(answer.status).toBe(200)
        expect(received()).toBe(before + 1)
      })
    }
  })
})

describe("invalid values are refused at the edge, naming the field, and never forwarded", () => {
  const base = { model: "a", messages: [{ role: "user", content: "hi" }] }
  const chatCases: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
    ["logit_bias", { logit_bias: "x" }],
    ["logit_bias", { logit_bias: 5 }],
    ["logit_bias", { logit_bias: [1] }],
    ["logit_bias", { logit_bias: { "50256": 101 } }],
    ["logit_bias", { logit_bias: { token: 1 } }],
    ["stop", { stop: Array.from({ length: 50 }, (_, i) => `s${i}`) }],
    ["stop", { stop: [] }],
    ["temperature", { temperature: 5 }],
    ["n", { n: 129 }],
    ["top_logprobs", { top_logprobs: 21 }],
    ["seed", { seed: 1.5 }],
    ["messages", { messages: [{ role: "user", content: [] }] }]
  ]
  for (const [param, patch] of chatCases) {
    it(`chat ${JSON.stringify(patch).slice(0, 60)} → 400 naming ${param}`, async () => {
      const before = received()
      const answer = await post(gateway, "/v1/chat/completions", JSON.stringify({ ...base, ...patch }))
      expect(answer.status).toBe(400)
      const error = errorOf(answer)
      expect(error.param?.startsWith(param)).toBe(true)
      expect(error.message).toContain(param)
      expect(received()).toBe(before)
    })
  }

  const consensusCases: ReadonlyArray<readonly [string, unknown]> = [
    ["temperature", 5],
    ["temperature", "x"],
    ["max_tokens", -1],
    ["max_tokens", 1.5],
    ["logit_bias", "x"],
    ["stop", ["1", "2", "3", "4", "5"]]
  ]
  for (const [field, value] of consensusCases) {
    it(`consensus ${field}: ${JSON.stringify(value)} → 400 naming ${field}, as chat does`, async () => {
      const before = received()
      const answer = await post(gateway, "/v1/consensus", JSON.stringify({ models: ["a", "b"], prompt: "hi", [field]: value }))
      expect(answer.status).toBe(400)
      const error = errorOf(answer)
      expect(error.param).toBe(field)
      expect(error.message).toContain(field)
      expect(received()).toBe(before)
      const chat = await post(gateway, "/v1/chat/completions", JSON.stringify({ ...base, [field]: value }))
      expect(chat.status).toBe(400)
      expect(errorOf(chat).param).toBe(field)
    })
  }

  it("valid sampling fields still reach every model of a consensus, and what they receive is a valid OpenAI request", async () => {
    a.reset()
    b.reset()
    const sampling = { temperature: 0.5, max_tokens: 20, stop: ["\n\n"], logit_bias: { "50256": -100 }, seed: 7, some_future_param: { x: 1 } }
    const answer = await post(gateway, "/v1/consensus", JSON.stringify({ models: ["a", "b"], prompt: "hi", early_stop: false, ...sampling }))
    expect(answer.status).toBe(200)
    for (const fake of [a, b]) {
      expect(fake.received).toHaveLength(1)
      expect(fake.received[0]!.body).toMatchObject(sampling)
      expect(validateChatRequest(fake.received[0]!.body)).toEqual([])
    }
  })
})

describe("configured limits (server.limits) are 400s naming the limit", () => {
  let small: RunningGateway
  beforeAll(async () => {
    small = await startGateway(
      `server: { limits: { max_depth: 8, max_messages: 3, max_content_parts: 2, max_tools: 1, max_string_chars: 2000 } }\n${models()}`,
      env
    )
  })
  afterAll(() => small.close())

  const user = { role: "user", content: "hi" }
  const tool = { type: "function", function: { name: "f" } }
  const cases: ReadonlyArray<readonly [string, string, Record<string, unknown>]> = [
    ["max_messages", "messages", { messages: [user, user, user, user] }],
    ["max_content_parts", "messages[0].content", { messages: [{ role: "user", content: [1, 2, 3].map((i) => ({ type: "text", text: String(i) })) }] }],
    ["max_tools", "tools", { messages: [user], tools: [tool, tool] }],
    ["max_string_chars", "messages", { messages: [{ role: "user", content: "x".repeat(2001) }] }],
    ["max_depth", "extra", { messages: [user], extra: { a: { a: { a: { a: { a: { a: { a: { a: { a: 1 } } } } } } } } } }]
  ]
  for (const [limit, param, patch] of cases) {
    it(limit, async () => {
      const before = received()
      for (const path of ["/v1/chat/completions", "/v1/consensus"]) {
        const body = path === "/v1/consensus" ? { models: ["a", "b"], ...patch } : { model: "a", ...patch }
        const answer = await post(small, path, JSON.stringify(body))
        expect(answer.status).toBe(400)
        const error = errorOf(answer)
        expect(error.code).toBe(`${limit}_exceeded`)
        expect(error.param).toBe(param)
        expect(error.message).toContain(`server.limits.${limit}`)
      }
      expect(received()).toBe(before)
    })
  }

  it("a body within every limit answers", async () => {
    const answer = await valid(small, "a")
    expect(answer.status).toBe(200)
  })
})

describe("the router, given a request its transport cannot serialize", () => {
  // A value JSON cannot hold (a BigInt): code that builds a request is free to make one, and
  // both the openai SDK and Quorum's own transport fail on it before anything is sent.
  const unsendable = (model: string) =>
    ({ model, messages: [{ role: "user", content: "hi" }], tools: [{ type: "function", function: { name: "f", parameters: { type: "object", max: 1n } } }] }) as unknown as ChatCompletionRequest

  const run = <A>(body: (router: Router, breakers: CircuitBreakers) => Effect.Effect<A, unknown>) =>
    Effect.runPromise(
      Effect.gen(function*() {
        return yield* body(yield* Router, yield* CircuitBreakers)
      }).pipe(
        Effect.provide(
          Router.DefaultWithoutDependencies.pipe(
            Layer.provideMerge(Layer.mergeAll(Upstreams.Default, CircuitBreakers.Default)),
            Layer.provideMerge(Layer.effect(GatewayConfig, Effect.promise(() => resolveTestConfig(`defaults: { circuit: { failure_threshold: 2, cooldown_ms: 60000 } }\n${models()}`, env))))
          )
        )
      )
    )

  for (const model of ["a", "claude"]) {
    it(`${model}: a defect naming the cause, never an upstream failure, and never counted; an open circuit's probe is given back`, async () => {
      const before = received()
      await run((router, breakers) =>
        Effect.gen(function*() {
          for (let i = 0; i < 5; i++) {
            const exit = yield* Effect.exit(router.complete(unsendable(model)))
            expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
            if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain("could not be sent")
          }
          expect(breakers.admit(model, Date.now())).toBe("closed")
          // Open the circuit with failures whose cooldown is already over: the next call is its probe.
          breakers.failed(model, Date.now() - 120_000)
          breakers.failed(model, Date.now() - 120_000)
          yield* Effect.exit(router.complete(unsendable(model)))
          // The probe was ours to lose, not the upstream's: the next request probes again.
          const answered = yield* router.complete({ model, messages: [{ role: "user", content: "hello" }] })
          expect(answered.deployment.id).toBe(model)
          expect(breakers.admit(model, Date.now())).toBe("closed")
        }))
      expect(received()).toBe(before + 1)
    })
  }
})
