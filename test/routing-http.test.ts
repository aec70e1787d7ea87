/**
 * Route strategies and per-request limits over HTTP, on a real gateway with simulated
 * models: the cheapest target first, conditional rules on what a request is, and targets
 * left out by a request's max_cost_usd / max_latency_ms, with a 400 naming why when none fits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { resolveTestConfig, type RunningGateway, startGateway } from "./support/gateway"

const MODELS = `
models:
  - { id: cheap, provider: sim, price: { input: 0.1, output: 0.1 }, sim: { latency_ms: 1, answers: ["cheap"] } }
  - { id: dear, provider: sim, price: { input: 10, output: 30 }, sim: { latency_ms: 1, answers: ["dear"] } }
  - { id: vision, provider: sim, price: { input: 1, output: 1 }, sim: { latency_ms: 1, answers: ["vision"] } }
  - { id: slow, provider: sim, price: { input: 0.1, output: 0.1 }, sim: { latency_ms: 150, answers: ["cheap"] } }
`

let gateway: RunningGateway
beforeAll(async () => {
  gateway = await startGateway(`${MODELS}
routes:
  - { id: by-price, strategy: cheapest, targets: [dear, cheap] }
  - id: smart
    strategy: conditional
    targets: [dear]
    rules:
      - { when: { images: true }, to: vision }
      - { when: { metadata: { tier: free } }, to: by-price }
  - { id: ordered, targets: [dear, cheap] }
`)
})
afterAll(() => gateway?.close())

const chat = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ messages: [{ role: "user", content: "hello" }], max_tokens: 100, ...body })
  })
  return { status: response.status, deployment: response.headers.get("x-quorum-deployment"), body: (await response.json()) as { error?: { message: string; param: string | null; code: string | null } } }
}

describe("route strategies", () => {
  it("cheapest tries the target on which the request costs least first", async () => {
    expect((await chat({ model: "by-price" })).deployment).toBe("cheap")
  })

  it("conditional hands a request to the first rule it matches, another route's strategy included", async () => {
    const image = [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] }]
    expect((await chat({ model: "smart", messages: image })).deployment).toBe("vision")
    expect((await chat({ model: "smart", metadata: { tier: "free" } })).deployment).toBe("cheap")
    expect((await chat({ model: "smart" })).deployment).toBe("dear")
  })

  it("names the rule a config gets wrong, and routes that hand requests around in a circle", async () => {
    await expect(resolveTestConfig(`${MODELS}\nroutes:\n  - { id: r, strategy: conditional, targets: [cheap], rules: [{ to: nowhere }] }\n`)).rejects.toThrow(/routes\[0\]\.rules\[0\]\.to/)
    await expect(resolveTestConfig(`${MODELS}\nroutes:\n  - { id: x, strategy: conditional, targets: [cheap], rules: [{ to: y }] }\n  - { id: y, strategy: conditional, targets: [cheap], rules: [{ to: x }] }\n`)).rejects.toThrow(/in a circle.*x → y → x/)
    await expect(resolveTestConfig(`${MODELS}\nroutes:\n  - { id: r, strategy: cheapest, targets: [cheap], rules: [{ to: dear }] }\n`)).rejects.toThrow(/routes\[0\]\.rules/)
  })
})

describe("per-request limits", () => {
  it("leave out a target whose worst-case cost is over max_cost_usd, from the body or a header, and never forward the field", async () => {
    // dear: 100 output tokens at $30 / Mtok is $0.003 at most; cheap: $0.00001.
    expect((await chat({ model: "ordered" })).deployment).toBe("dear")
    expect((await chat({ model: "ordered", quorum: { max_cost_usd: 0.001 } })).deployment).toBe("cheap")
    expect((await chat({ model: "ordered" }, { "x-quorum-max-cost-usd": "0.001" })).deployment).toBe("cheap")
  })

  it("answer 400 naming which limit left out which model when none fits, and a malformed header by name", async () => {
    const none = await chat({ model: "ordered", quorum: { max_cost_usd: 0.000001 } })
    expect(none.status).toBe(400)
    expect(none.body.error).toMatchObject({ code: "no_target_within_limits", param: "quorum" })
    expect(none.body.error!.message).toMatch(/dear: worst-case cost \$0\.003\d* exceeds max_cost_usd/)
    expect(none.body.error!.message).toMatch(/cheap: worst-case cost/)
    const bad = await chat({ model: "ordered" }, { "x-quorum-max-latency-ms": "soon" })
    expect(bad.status).toBe(400)
    expect(bad.body.error!.param).toBe("x-quorum-max-latency-ms")
  })

  it("hold a consensus fan-out too: models expected slower than max_latency_ms left out, the worst case kept within max_cost_usd", async () => {
    type Report = { consensus?: { candidates: ReadonlyArray<{ model: string; status: string; error?: string | null }> } }
    const candidates = (body: unknown) => (body as Report).consensus?.candidates ?? []
    // The gateway learns each model's latency from the calls it makes.
    for (let i = 0; i < 3; i++) {
      await chat({ model: "slow" })
      await chat({ model: "cheap" })
    }
    const quick = await chat({ model: "consensus", models: ["cheap", "slow"], quorum: { max_latency_ms: 100 } })
    expect(quick.status).toBe(200)
    expect(candidates(quick.body).find((c) => c.model === "slow")).toMatchObject({ status: "skipped", error: expect.stringMatching(/recent p90 latency \d+ ms exceeds max_latency_ms 100/) })
    expect(candidates(quick.body).find((c) => c.model === "cheap")?.status).toBe("ok")
    // Without the limit both are called.
    const both = await chat({ model: "consensus", models: ["cheap", "slow"] })
    expect(candidates(both.body).filter((c) => c.status === "ok").map((c) => c.model).sort()).toEqual(["cheap", "slow"])
    // dear's worst case ($0.003) does not fit; cheap's does. The header holds /v1/consensus the same way.
    const thrifty = await chat({ model: "consensus", models: ["cheap", "dear"] }, { "x-quorum-max-cost-usd": "0.001" })
    expect(thrifty.status).toBe(200)
    expect(candidates(thrifty.body).find((c) => c.model === "dear")?.status).toBe("skipped")
    const direct = await fetch(`${gateway.url}/v1/consensus`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-quorum-max-latency-ms": "100" },
      body: JSON.stringify({ prompt: "hello", models: ["slow", "cheap"] })
    })
    const report = (await direct.json()) as { candidates: ReadonlyArray<{ model: string; status: string }> }
    expect(direct.status).toBe(200)
    expect(report.candidates.find((c) => c.model === "slow")?.status).toBe("skipped")
  })

  it("answer a consensus no model of which fits with a 400 naming each", async () => {
    for (let i = 0; i < 3; i++) await chat({ model: "slow" })
    const none = await chat({ model: "consensus", models: ["slow"], quorum: { max_latency_ms: 10 } })
    expect(none.status).toBe(400)
    expect(none.body.error).toMatchObject({ param: "quorum.max_latency_ms" })
    expect(none.body.error!.message).toMatch(/slow: recent p90 latency \d+ ms exceeds max_latency_ms 10/)
  })
})
