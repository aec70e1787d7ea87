/**
 * Metrics on their own: what the registry exposes, and a real node:cluster of two workers
 * whose scrape, answered by one worker, sums both (gauges by their own rule).
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { makeMetrics } from "../src/telemetry/metrics"

describe("metrics", () => {
  it("exposes what was recorded, by label", async () => {
    const metrics = makeMetrics()
    metrics.requests.inc({ endpoint: "/v1/chat/completions", model: "gpt", key: "key_1", status: "200" })
    metrics.requests.inc({ endpoint: "/v1/chat/completions", model: "gpt", key: "key_1", status: "200" })
    metrics.duration.observe({ endpoint: "/v1/chat/completions", model: "gpt" }, 0.3)
    metrics.cost.inc({ model: "gpt", provider: "openai", key: "key_1" }, 0.0042)
    const text = await metrics.registry.metrics()
    expect(text).toContain('quorum_requests_total{endpoint="/v1/chat/completions",model="gpt",key="key_1",status="200"} 2')
    expect(text).toContain('quorum_request_duration_seconds_bucket{le="0.5",endpoint="/v1/chat/completions",model="gpt"} 1')
    expect(text).toContain('quorum_cost_usd_total{model="gpt",provider="openai",key="key_1"} 0.0042')
    // Two gateways in one process keep their own counts.
    expect(await makeMetrics().registry.metrics()).not.toContain("key_1")
  })

  it("sums the workers of a cluster in the scrape one worker answers", async () => {
    const fixture = fileURLToPath(new URL("./fixtures/telemetry/metrics-cluster.ts", import.meta.url))
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", fixture], { timeout: 60_000 })
    expect(stdout).toContain('quorum_requests_total{endpoint="/v1/chat/completions",model="m",key="k",status="200"} 3')
    // A circuit is as bad as the worst worker sees it.
    expect(stdout).toContain('quorum_circuit_state{model="m"} 2')
  })
})
