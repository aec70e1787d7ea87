/**
 * GET /metrics on a real gateway: what requests, tokens, cost, upstream errors, retries and
 * shed load look like after traffic, and the sum over a two-worker node:cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type RunningGateway, startGateway } from "./support/gateway"
import { spawnGateway } from "./support/spawned"

const YAML = `
models:
  - { id: fast, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, answers: ["Paris"] } }
  - { id: flaky, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, error_rate: 1, answers: ["x"] } }
  - { id: twin, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, answers: ["Paris"] } }
routes:
  - { id: main, strategy: fallback, targets: [flaky, fast] }
`

const chat = (url: string, model: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Capital of France?" }] })
  })

const scrape = async (url: string) => {
  const response = await fetch(`${url}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("text/plain")
  return response.text()
}

describe("/metrics", () => {
  let gateway: RunningGateway
  beforeAll(async () => {
    gateway = await startGateway(YAML)
  })
  afterAll(() => gateway?.close())

  it("counts requests, tokens, cost, upstream failures, retries and fallbacks", async () => {
    for (let i = 0; i < 3; i++) expect((await chat(gateway.url, "main")).status).toBe(200)
    expect((await chat(gateway.url, "nope")).status).toBe(404)
    const text = await scrape(gateway.url)
    expect(text).toContain('quorum_requests_total{endpoint="/v1/chat/completions",model="main",key="none",status="200"} 3')
    expect(text).toContain('quorum_requests_total{endpoint="/v1/chat/completions",model="nope",key="none",status="404"} 1')
    expect(text).toMatch(/quorum_tokens_total\{model="fast",provider="sim",kind="completion"\} \d+/)
    expect(text).toMatch(/quorum_upstream_errors_total\{model="flaky",provider="sim",kind="[a-z_]+"\} [1-9]/)
    expect(text).toMatch(/quorum_retries_total\{model="flaky"\} [1-9]/)
    expect(text).toMatch(/quorum_fallbacks_total\{route="main"\} [1-9]/)
    expect(text).toMatch(/quorum_request_duration_seconds_count\{endpoint="\/v1\/chat\/completions",model="main"\} 3/)
    expect(text).toContain("quorum_in_flight_requests 0")
  })

  it("shows circuit states, streams' time to first token, and how consensus requests were decided", async () => {
    // flaky fails every call: after failure_threshold (5) in a row its circuit opens.
    for (let i = 0; i < 3; i++) await chat(gateway.url, "main")
    const stream = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "fast", stream: true, messages: [{ role: "user", content: "Capital of France?" }] })
    })
    expect(stream.status).toBe(200)
    await stream.text()
    const consensus = await fetch(`${gateway.url}/v1/consensus`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ models: ["fast", "twin"], messages: [{ role: "user", content: "Capital of France?" }], task: "capitals" })
    })
    expect(consensus.status).toBe(200)
    const text = await scrape(gateway.url)
    expect(text).toContain('quorum_circuit_state{model="flaky"} 2')
    expect(text).toContain('quorum_circuit_state{model="fast"} 0')
    expect(text).toContain('quorum_time_to_first_token_seconds_count{model="fast"} 1')
    expect(text).toContain('quorum_consensus_decisions_total{task="capitals",decision="agreed"} 1')
    expect(text).toContain('quorum_consensus_calls_count{task="capitals"} 1')
    expect(text).toMatch(/quorum_consensus_waves_sum\{task="capitals"\} [1-9]/)
  })
})

describe("/metrics across workers", () => {
  it("sums every worker's counts in the scrape one of them answers", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-metrics-"))
    const path = join(dir, "config.yaml")
    writeFileSync(path, YAML)
    const gateway = await spawnGateway(path, { QUORUM_WORKERS: "2", QUORUM_DATA_DIR: dir })
    try {
      // New connections each time, so node:cluster spreads them over both workers.
      const N = 20
      for (let i = 0; i < N; i++) {
        const response = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", connection: "close" },
          body: JSON.stringify({ model: "fast", messages: [{ role: "user", content: "hi" }] })
        })
        expect(response.status).toBe(200)
      }
      const text = await scrape(gateway.url)
      expect(text).toContain(`quorum_requests_total{endpoint="/v1/chat/completions",model="fast",key="none",status="200"} ${N}`)
    } finally {
      await gateway.kill()
    }
  }, 120_000)
})
