/**
 * Upstream faults and what the client sees: each scripted on a loopback fake that speaks
 * the provider's wire format, through a real gateway.
 */
import { spawn } from "node:child_process"
import { connect } from "node:net"
import OpenAI, { APIError } from "openai"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { ANTHROPIC_KEY, startAnthropicFake } from "./fakes/anthropic-fake"
import type { FakeServer } from "./fakes/fake-server"
import { GEMINI_KEY, startGeminiFake } from "./fakes/gemini-fake"
import { OPENAI_KEY, startOpenAIFake } from "./fakes/openai-fake"
import { eventually, type RunningGateway, startGateway } from "./support/gateway"
import { validateChunk, validateError } from "./support/openai-schemas"

let a: FakeServer
let b: FakeServer
let claude: FakeServer
let gem: FakeServer
let gateway: RunningGateway | undefined

const ADMIN = "qa-faults-admin-key-0123456789"
const env = { OPENAI_API_KEY: OPENAI_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY, GEMINI_API_KEY: GEMINI_KEY, QUORUM_ADMIN_KEY: ADMIN }

/** This worker's count of calls in flight to a deployment (GET /admin/health). */
const inFlight = async (model: string): Promise<number> => {
  const res = await fetch(`${gateway!.url}/admin/health`, { headers: { authorization: `Bearer ${ADMIN}` } })
  const body = (await res.json()) as { data: Array<{ model: string; in_flight: number }> }
  return body.data.find((d) => d.model === model)?.in_flight ?? -1
}

beforeAll(async () => {
  ;[a, b, claude, gem] = await Promise.all([startOpenAIFake(), startOpenAIFake(), startAnthropicFake(), startGeminiFake()])
})
afterEach(async () => {
  await gateway?.close()
  gateway = undefined
  for (const fake of [a, b, claude, gem]) fake.reset()
})
afterAll(async () => {
  await Promise.all([a, b, claude, gem].map((f) => f.close()))
})

/** A gateway over the fakes; `extra` is YAML added under `defaults`. */
const start = async (defaults: string, routes = "") => {
  gateway = await startGateway(
    `
defaults:
${defaults}
models:
  - { id: a, provider: openai, base_url: "${a.url}/v1" }
  - { id: b, provider: openai, base_url: "${b.url}/v1" }
  - { id: claude, provider: anthropic, base_url: "${claude.url}" }
  - { id: gem, provider: gemini, base_url: "${gem.url}" }
routes:
  - { id: a-then-b, targets: [a, b] }
${routes}
`,
    env
  )
  return gateway
}

const fastRetries = `
  retry: { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 2000, budget_ms: 10000 }
  timeouts: { total_ms: 400, first_token_ms: 300, idle_ms: 200 }`

const chat = async (model: string, extra: Record<string, unknown> = {}, signal?: AbortSignal) => {
  const response = await fetch(`${gateway!.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }], ...extra }),
    ...(signal === undefined ? {} : { signal })
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

const errorOf = (text: string) => {
  const body = JSON.parse(text)
  expect(validateError(body)).toEqual([])
  return body.error as { message: string; type: string; code: string | null; param: string | null }
}

/** The SSE data lines of a response body. */
const events = (text: string) =>
  text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice("data: ".length))

describe("429 with retry-after", () => {
  it("waits as long as the upstream asked, then retries the same deployment", async () => {
    await start(fastRetries)
    a.script({ kind: "status", status: 429, headers: { "retry-after": "1" }, body: { error: { message: "Rate limit reached", type: "requests", param: null, code: "rate_limit_exceeded" } } })
    const started = Date.now()
    const res = await chat("a")
    expect(res.status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
    expect(a.received).toHaveLength(2)
    expect(res.headers.get("x-quorum-attempts")).toBe("2")
  })

  it("falls back at once when the wait asked for is longer than it would wait", async () => {
    await start(fastRetries)
    a.script({ kind: "status", status: 429, headers: { "retry-after": "30" }, body: { error: { message: "Rate limit reached", type: "requests", param: null, code: null } } })
    const started = Date.now()
    const res = await chat("a-then-b")
    expect(res.status).toBe(200)
    expect(res.headers.get("x-quorum-deployment")).toBe("b")
    expect(a.received).toHaveLength(1)
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it("answers 429 with the upstream's reason and retry-after when nothing else can serve", async () => {
    await start(fastRetries)
    a.script({ kind: "status", status: 429, headers: { "retry-after": "30" }, body: { error: { message: "Rate limit reached for gpt-4o", type: "requests", param: null, code: null } } })
    const res = await chat("a")
    expect(res.status).toBe(429)
    expect(res.headers.get("retry-after")).toBe("30")
    const error = errorOf(res.text)
    expect(error.message).toContain("Rate limit reached for gpt-4o")
    expect(error.code).toBe("rate_limit_exceeded")
  })
})

describe("500", () => {
  it("is retried with backoff on the same deployment", async () => {
    await start(fastRetries)
    const boom = { kind: "status" as const, status: 500, body: { error: { message: "boom", type: "server_error", param: null, code: null } } }
    a.script(boom, boom)
    const res = await chat("a")
    expect(res.status).toBe(200)
    expect(a.received).toHaveLength(3)
    expect(res.headers.get("x-quorum-attempts")).toBe("3")
  })

  it("falls back to the next target once retries are spent, and answers 502 when all fail", async () => {
    await start(fastRetries.replace("max_attempts: 3", "max_attempts: 2"))
    const boom = { kind: "status" as const, status: 500, body: { error: { message: "boom", type: "server_error", param: null, code: null } } }
    a.script(boom, boom)
    const ok = await chat("a-then-b")
    expect(ok.status).toBe(200)
    expect(ok.headers.get("x-quorum-deployment")).toBe("b")
    expect(a.received).toHaveLength(2)

    a.script(boom, boom)
    b.script(boom, { ...boom, body: { error: { message: "b is down", type: "server_error", param: null, code: null } } })
    const failed = await chat("a-then-b")
    expect(failed.status).toBe(502)
    expect(errorOf(failed.text).message).toContain("b is down")
  })

  it("is not retried when the upstream says the request itself is wrong (400)", async () => {
    await start(fastRetries)
    a.script({ kind: "status", status: 400, body: { error: { message: "context_length_exceeded: too long", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } } })
    const res = await chat("a-then-b")
    expect(res.status).toBe(400)
    expect(errorOf(res.text).message).toContain("context_length_exceeded")
    expect(a.received).toHaveLength(1)
    expect(b.received).toHaveLength(0)
  })
})

describe("a hang", () => {
  it("times out, aborts the hung call, and retries", async () => {
    await start(fastRetries)
    a.script({ kind: "hang" })
    const res = await chat("a")
    expect(res.status).toBe(200)
    expect(a.received).toHaveLength(2)
    expect(await eventually(() => a.aborted() === 1)).toBe(true)
  })

  it("answers 504 when every attempt hangs", async () => {
    await start(fastRetries.replace("max_attempts: 3", "max_attempts: 2"))
    a.script({ kind: "hang" }, { kind: "hang" })
    const res = await chat("a")
    expect(res.status).toBe(504)
    expect(errorOf(res.text).code).toBe("upstream_timeout")
    expect(await eventually(() => a.aborted() === 2)).toBe(true)
  })

  it("before a stream's first token falls back to the next target", async () => {
    await start(fastRetries.replace("max_attempts: 3", "max_attempts: 1"))
    a.script({ kind: "slow-start", ms: 1_000 })
    const res = await chat("a-then-b", { stream: true })
    expect(res.status).toBe(200)
    expect(res.headers.get("x-quorum-deployment")).toBe("b")
    expect(events(res.text).at(-1)).toBe("[DONE]")
  })
})

describe("deadlines", () => {
  const paced = `
  retry: { max_attempts: 1, budget_ms: 60000 }
  timeouts: { total_ms: 60000, first_token_ms: 200, min_tokens_per_second: 100 }`

  it("give a non-stream call the time its output needs: a hung call with max_tokens falls back in first_token_ms + max_tokens at min_tokens_per_second", async () => {
    await start(paced)
    a.script({ kind: "hang" })
    const res = await chat("a-then-b", { max_tokens: 20 })
    expect(res.status).toBe(200)
    expect(res.headers.get("x-quorum-deployment")).toBe("b")
    expect(await eventually(() => a.aborted() === 1)).toBe(true)
  })

  it("name what bounded the call when every target hangs", async () => {
    await start(paced)
    a.script({ kind: "hang" })
    const res = await chat("a", { max_tokens: 20 })
    expect(res.status).toBe(504)
    expect(errorOf(res.text).message).toContain("no response within 400 ms (first_token_ms + 20 output tokens at min_tokens_per_second)")
  })

  it("cut a running non-stream call when the request's retry budget runs out", async () => {
    await start(`
  retry: { max_attempts: 3, base_delay_ms: 10, budget_ms: 300 }
  timeouts: { total_ms: 60000 }`)
    a.script({ kind: "hang" })
    const res = await chat("a")
    expect(res.status).toBe(504)
    expect(errorOf(res.text).message).toContain("(retry.budget_ms)")
    expect(a.received).toHaveLength(1)
    expect(await eventually(() => a.aborted() === 1)).toBe(true)
  })

  it("cut a stream waiting for its first chunk when the budget runs out", async () => {
    await start(`
  retry: { max_attempts: 1, budget_ms: 300 }
  timeouts: { total_ms: 60000, first_token_ms: 60000 }`)
    a.script({ kind: "slow-start", ms: 5_000 })
    const res = await chat("a", { stream: true })
    expect(res.status).toBe(504)
    expect(errorOf(res.text).message).toContain("no first token within")
    expect(errorOf(res.text).message).toContain("(retry.budget_ms)")
  })
})

describe("malformed JSON", () => {
  it("is retried like a server error", async () => {
    await start(fastRetries)
    a.script({ kind: "malformed" })
    const res = await chat("a")
    expect(res.status).toBe(200)
    expect(a.received).toHaveLength(2)
  })

  it("answers 502 naming the problem when it persists", async () => {
    await start(fastRetries)
    a.script({ kind: "malformed" }, { kind: "malformed" }, { kind: "malformed" })
    const res = await chat("a")
    expect(res.status).toBe(502)
    expect(errorOf(res.text).message).toContain("malformed JSON")
  })
})

describe.each([
  { model: "a", fake: () => a },
  { model: "claude", fake: () => claude },
  { model: "gem", fake: () => gem }
])("a stream cut midway ($model)", ({ model, fake }) => {
  it("ends with an error event and no [DONE]", async () => {
    await start(fastRetries)
    fake().script({ kind: "cut", afterEvents: 1 })
    const res = await chat(model, { stream: true })
    expect(res.status).toBe(200)
    const data = events(res.text)
    expect(data).not.toContain("[DONE]")
    const last = JSON.parse(data.at(-1)!)
    expect(validateError(last)).toEqual([])
    expect(last.error.type).toBe("upstream_error")
    for (const chunk of data.slice(0, -1)) expect(validateChunk(JSON.parse(chunk))).toEqual([])
    expect(fake().received).toHaveLength(1)
  })

  it("makes the OpenAI SDK throw rather than end quietly", async () => {
    await start(fastRetries)
    fake().script({ kind: "cut", afterEvents: 1 })
    const client = new OpenAI({ baseURL: `${gateway!.url}/v1`, apiKey: "x", maxRetries: 0 })
    const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: "user", content: "hello" }] })
    const consume = async () => {
      for await (const _ of stream) void _
    }
    await expect(consume()).rejects.toBeInstanceOf(APIError)
  })

  it("is retried when cut before its first chunk", async () => {
    await start(fastRetries)
    fake().script({ kind: "cut", afterEvents: 0 })
    const res = await chat(model, { stream: true })
    expect(res.status).toBe(200)
    expect(events(res.text).at(-1)).toBe("[DONE]")
    expect(fake().received).toHaveLength(2)
  })
})

describe("a stream gone silent", () => {
  it("ends with an idle-timeout error event and aborts the upstream", async () => {
    // idle_ms is checked on undici's timer wheel, to about half a second.
    await start(`
  timeouts: { total_ms: 10000, idle_ms: 200 }`)
    a.script({ kind: "stall", afterEvents: 2 })
    const res = await chat("a", { stream: true })
    const last = JSON.parse(events(res.text).at(-1)!)
    expect(last.error.code).toBe("upstream_timeout")
    expect(last.error.message).toContain("idle")
    expect(await eventually(() => a.aborted() === 1)).toBe(true)
  })
})

describe.each([
  { model: "a", fake: () => a },
  { model: "claude", fake: () => claude }
])("a stream that outlasts total_ms ($model)", ({ model, fake }) => {
  it("ends with a total-timeout error event although chunks keep coming", async () => {
    await start(`
  timeouts: { total_ms: 300, first_token_ms: 250, idle_ms: 5000 }`)
    fake().script({ kind: "dribble", gapMs: 120 })
    const res = await chat(model, { stream: true })
    const data = events(res.text)
    expect(data.length).toBeGreaterThan(1)
    const last = JSON.parse(data.at(-1)!)
    expect(last.error.code).toBe("upstream_timeout")
    expect(last.error.message).toContain("total_ms")
    expect(await eventually(() => fake().aborted() === 1)).toBe(true)
  })
})

describe("a connection that is never accepted", () => {
  it("times out after connect_ms and falls back", async () => {
    // A socket that listens but never accepts: once its backlog is full, Linux drops
    // further SYNs and connect() hangs. (Node always accepts, so python3 holds it.)
    const holder = spawn("python3", ["-c", [
      "import socket, time",
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
      "print(s.getsockname()[1], flush=True); time.sleep(60)"
    ].join("\n")])
    try {
      const port = await new Promise<number>((resolve) => holder.stdout.once("data", (d: Buffer) => resolve(Number(d.toString()))))
      const fillers = Array.from({ length: 4 }, () => connect(port, "127.0.0.1").on("error", () => {}))
      await new Promise((r) => setTimeout(r, 300))
      gateway = await startGateway(
        `
defaults:
  timeouts: { connect_ms: 300 }
  retry: { max_attempts: 1 }
models:
  - { id: dead, provider: vllm, base_url: "http://127.0.0.1:${port}/v1" }
  - { id: b, provider: openai, base_url: "${b.url}/v1" }
routes:
  - { id: dead-then-b, targets: [dead, b] }
`,
        env
      )
      const alone = await chat("dead")
      expect(alone.status).toBe(504)
      expect(errorOf(alone.text).message).toContain("connect_ms")
      const routed = await chat("dead-then-b")
      expect(routed.status).toBe(200)
      expect(routed.headers.get("x-quorum-deployment")).toBe("b")
      for (const socket of fillers) socket.destroy()
    } finally {
      holder.kill()
    }
  })
})

describe("a client that leaves", () => {
  it("cancels a pending upstream call", async () => {
    await start(`
  timeouts: { total_ms: 30000 }`)
    a.script({ kind: "hang" }, { kind: "hang" })
    const controller = new AbortController()
    // A second call stays in flight throughout: the abandoned one must be counted out exactly once.
    const staying = new AbortController()
    const stays = chat("a", {}, staying.signal).catch((e: unknown) => e)
    const pending = chat("a", {}, controller.signal).catch((e: unknown) => e)
    await eventually(() => a.received.length === 2)
    expect(await inFlight("a")).toBe(2)
    controller.abort()
    await pending
    expect(await eventually(() => a.aborted() === 1)).toBe(true)
    while ((await inFlight("a")) === 2) await new Promise((r) => setTimeout(r, 10))
    expect(await inFlight("a")).toBe(1)
    staying.abort()
    await stays
  })

  it("cancels a stream in progress", async () => {
    await start(`
  timeouts: { total_ms: 30000, idle_ms: 30000 }`)
    a.script({ kind: "stall", afterEvents: 2 })
    const controller = new AbortController()
    const response = await fetch(`${gateway!.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "a", stream: true, messages: [{ role: "user", content: "hello" }] }),
      signal: controller.signal
    })
    const reader = response.body!.getReader()
    await reader.read()
    controller.abort()
    expect(await eventually(() => a.aborted() === 1)).toBe(true)
  })
})

describe("provider keys", () => {
  it("never reach the client, even when the upstream echoes one", async () => {
    gateway = await startGateway(
      `
models:
  - { id: a, provider: openai, base_url: "${a.url}/v1", api_key_env: WRONG_KEY }
`,
      { WRONG_KEY: "sk-proj-wrongKEYwrongKEY12345" }
    )
    const res = await chat("a")
    expect(res.status).toBe(502)
    expect(a.received[0]!.headers.authorization).toBe("Bearer sk-proj-wrongKEYwrongKEY12345")
    expect(res.text).not.toContain("wrongKEY")
    expect(errorOf(res.text).message).toContain("Incorrect API key provided")
  })
})

describe("the circuit breaker", () => {
  it("skips a failing deployment while it cools down, then probes it back", async () => {
    await start(`
  retry: { max_attempts: 1, base_delay_ms: 1 }
  circuit: { failure_threshold: 2, cooldown_ms: 1000 }`)
    const boom = { kind: "status" as const, status: 500, body: { error: { message: "boom", type: "server_error", param: null, code: null } } }
    a.script(boom, boom)
    for (let i = 0; i < 2; i++) expect((await chat("a-then-b")).headers.get("x-quorum-deployment")).toBe("b")
    // The cooldown is a time window by definition: the checks below must land inside it (a
    // second is ample on a busy machine), and the probe only once it has surely passed.
    const opened = Date.now()
    expect(a.received).toHaveLength(2)

    const cooling = await chat("a-then-b")
    expect(cooling.headers.get("x-quorum-deployment")).toBe("b")
    expect(a.received).toHaveLength(2)

    const alone = await chat("a")
    expect(alone.status).toBe(503)
    expect(errorOf(alone.text).code).toBe("upstream_unavailable")
    expect(Number(alone.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)

    await new Promise((r) => setTimeout(r, Math.max(0, opened + 1_050 - Date.now())))
    const probed = await chat("a-then-b")
    expect(probed.headers.get("x-quorum-deployment")).toBe("a")
    expect(a.received).toHaveLength(3)
  })
})
