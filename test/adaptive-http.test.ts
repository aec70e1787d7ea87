/**
 * A learned route (strategy: adaptive) over HTTP, on a real gateway with three fake
 * upstreams on loopback: it settles on the target whose answers are labelled good, follows
 * a change of which one that is, explores within its bound; labels are the asking key's
 * (or the admin's) and count once; the beliefs endpoint shows what it learned, ledger
 * outcomes included; a wrong adaptive block stops the config naming the route.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { seededRandom } from "../src/providers/sim/seed"
import { OPENAI_KEY } from "./fakes/openai-fake"
import { createKey, resolveTestConfig, type RunningGateway, startGateway } from "./support/gateway"
import { type ScriptedOpenAI, startScriptedOpenAI } from "./support/scripted-openai"

const ADMIN = "admin-secret-for-adaptive-tests-0123"
const TARGETS = ["alpha", "beta", "gamma"] as const

interface Beliefs {
  readonly exploration: { readonly bound: number; readonly recent_share: number; readonly window: number }
  readonly folded_through_ms: number
  readonly data: ReadonlyArray<{ target: string; mean_quality: number; calls: number; feedback: number; mean_cost_usd: number | null; mean_latency_ms: number | null; score: number }>
}
interface ErrorBody {
  readonly error: { readonly message: string; readonly code: string | null; readonly param: string | null }
}

const yamlFor = (upstream: string) => `
auth: { mode: keys }
defaults:
  retry: { max_attempts: 1 }
spend: { flush_ms: 5 }
models:
${TARGETS.map((id, i) => `  - { id: ${id}, provider: openai, base_url: "${upstream}", price: { input: ${i + 1}, output: ${2 * (i + 1)} } }`).join("\n")}
routes:
  - id: learn
    strategy: adaptive
    targets: [alpha, beta, gamma]
    adaptive: { exploration: 0.1, memory: 30 }
  - { id: fixed, targets: [alpha, beta] }
`

let up: ScriptedOpenAI
let gateway: RunningGateway
let keyA: string
let keyB: string

beforeAll(async () => {
  up = await startScriptedOpenAI()
  for (const t of TARGETS) up.script(t, `answer from ${t}`)
  gateway = await startGateway(yamlFor(up.url), { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN })
  keyA = await createKey(gateway.url, ADMIN, { name: "a" })
  keyB = await createKey(gateway.url, ADMIN, { name: "b", models: ["fixed"] })
})
afterAll(async () => {
  await gateway?.close()
  await up?.close()
})

const chat = async (model: string, key: string) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }], max_tokens: 50 })
  })
  expect(response.status).toBe(200)
  await response.json()
  return { id: response.headers.get("x-request-id")!, deployment: response.headers.get("x-quorum-deployment")! }
}

const feedback = async (body: Record<string, unknown>, key: string) => {
  const response = await fetch(`${gateway.url}/v1/feedback`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> & Partial<ErrorBody> }
}

const beliefs = async (route: string, key: string = ADMIN) => {
  const response = await fetch(`${gateway.url}/v1/routes/${route}/beliefs`, { headers: { authorization: `Bearer ${key}` } })
  return { status: response.status, body: (await response.json()) as Beliefs & Partial<ErrorBody> }
}

const share = (picks: ReadonlyArray<string>, target: string) => picks.filter((p) => p === target).length / picks.length

/**
 * Calls the route and labels every answer, good with probability 0.9 from `good` and 0.2
 * from the others (seeded), until the last 40 picks went to `good` at least 85% of the
 * time; the picks made.
 */
const learnUntilSettled = async (good: string, random: () => number, most = 1_500) => {
  const picks: Array<string> = []
  while (picks.length < most) {
    const { id, deployment } = await chat("learn", keyA)
    picks.push(deployment)
    const labelled = await feedback({ id, correct: random() < (deployment === good ? 0.9 : 0.2) }, keyA)
    expect(labelled.status).toBe(200)
    if (picks.length >= 40 && share(picks.slice(-40), good) >= 0.85) return picks
  }
  throw new Error(`did not settle on ${good} in ${most} calls: last 40 ${picks.slice(-40).join(",")}`)
}

describe("a learned route", () => {
  it("settles on the target labelled best, follows a change, and explores within its bound", async () => {
    const random = seededRandom(7)
    await learnUntilSettled("beta", random)
    const settled = await beliefs("learn")
    const byTarget = new Map(settled.body.data.map((d) => [d.target, d]))
    expect(byTarget.get("beta")!.mean_quality).toBeGreaterThan(byTarget.get("alpha")!.mean_quality)
    expect(byTarget.get("beta")!.mean_quality).toBeGreaterThan(byTarget.get("gamma")!.mean_quality)

    // Once settled, at most the exploration bound (10% over 30 calls, plus one call's rounding) goes elsewhere.
    const after: Array<string> = []
    for (let i = 0; i < 150; i++) {
      const { id, deployment } = await chat("learn", keyA)
      after.push(deployment)
      await feedback({ id, correct: random() < (deployment === "beta" ? 0.9 : 0.2) }, keyA)
    }
    expect(1 - share(after, "beta")).toBeLessThanOrEqual(0.2)
    const { exploration } = (await beliefs("learn")).body
    expect(exploration.bound).toBe(0.1)
    expect(exploration.recent_share).toBeLessThanOrEqual(0.1 + 1 / exploration.window + 1e-9)

    // gamma becomes the good one: the route follows.
    await learnUntilSettled("gamma", random)
  }, 180_000)

  it("folds completed calls from the ledger into the beliefs: calls, cost and latency per target", async () => {
    const before = (await beliefs("learn")).body
    const asked = Date.now()
    const target = (await chat("learn", keyA)).deployment
    // Every row that ended before folded_through_ms is in: wait for the watermark to pass this call.
    let now = before
    for (const until = Date.now() + 60_000; now.folded_through_ms <= asked + 1_000 && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 100))
      now = (await beliefs("learn")).body
    }
    expect(now.folded_through_ms).toBeGreaterThan(asked)
    const calls = (b: Beliefs) => b.data.reduce((sum, d) => sum + d.calls, 0)
    expect(calls(now)).toBeGreaterThan(calls(before))
    const row = now.data.find((d) => d.target === target)!
    expect(row.calls).toBeGreaterThan(0)
    expect(row.mean_cost_usd).toBeGreaterThan(0)
    expect(row.mean_latency_ms).toBeGreaterThan(0)
  }, 90_000)
})

describe("feedback for a routed answer", () => {
  it("is the asking key's or the admin's, counts once, and only for a learned route", async () => {
    const { id, deployment } = await chat("learn", keyA)
    const other = await feedback({ id, correct: true }, keyB)
    expect(other.status).toBe(404)
    expect(other.body.error!.code).toBe("request_not_found")
    const before = (await beliefs("learn")).body.data.find((d) => d.target === deployment)!.feedback
    const admin = await feedback({ id, score: 0.5 }, ADMIN)
    expect(admin).toEqual({ status: 200, body: { id, recorded: true, route: "learn", target: deployment } })
    expect((await beliefs("learn")).body.data.find((d) => d.target === deployment)!.feedback).toBe(before + 1)
    const again = await feedback({ id, correct: false }, keyA)
    expect(again.status).toBe(409)
    expect(again.body.error!.code).toBe("already_labelled")

    const fixed = await chat("fixed", keyB)
    const notLearned = await feedback({ id: fixed.id, correct: true }, keyB)
    expect(notLearned.status).toBe(400)
    expect(notLearned.body.error!.code).toBe("route_not_learned")
    const withLabel = await feedback({ id, label: "A" }, keyA)
    expect(withLabel.status).toBe(400)
    expect(withLabel.body.error!.param).toBe("label")
    const unknown = await feedback({ id: "req-000000000000000000000000", correct: true }, ADMIN)
    expect(unknown.status).toBe(404)
  })
})

describe("the beliefs endpoint", () => {
  it("is for the admin key or a key that may use the route, and only for learned routes", async () => {
    expect((await beliefs("learn", keyA)).status).toBe(200)
    const hidden = await beliefs("learn", keyB)
    expect(hidden.status).toBe(404)
    expect(hidden.body.error!.message).toMatch(/No route `learn`/)
    const fixed = await beliefs("fixed")
    expect(fixed.status).toBe(404)
    expect(fixed.body.error!.message).toMatch(/not adaptive/)
    const anonymous = await fetch(`${gateway.url}/v1/routes/learn/beliefs`)
    expect(anonymous.status).toBe(401)
  })
})

describe("an adaptive route's config", () => {
  const models = `
models:
  - { id: a, provider: sim }
  - { id: b, provider: sim }
`
  it("names the route a wrong adaptive block belongs to", async () => {
    await expect(resolveTestConfig(`${models}routes:\n  - { id: r, targets: [a, b], adaptive: { exploration: 0.2 } }\n`))
      .rejects.toThrow(/routes\[0\]\.adaptive: route `r`: an adaptive block is for strategy: adaptive, not fallback/)
    await expect(resolveTestConfig(`${models}routes:\n  - { id: r, strategy: adaptive, targets: [a, b], adaptive: { weights: { quality: 0 } } }\n`))
      .rejects.toThrow(/routes\[0\]\.adaptive\.weights: route `r`: give at least one weight above 0/)
    await expect(resolveTestConfig(`${models}routes:\n  - { id: r, strategy: adaptive, targets: [a, b], adaptive: { exploration: 2 } }\n`))
      .rejects.toThrow(/routes\[0\]\.adaptive\.exploration/)
    const ok = await resolveTestConfig(`${models}routes:\n  - { id: r, strategy: adaptive, targets: [a, b] }\n`)
    expect(ok.routes.get("r")!.adaptive).toEqual({ weights: { quality: 1, cost: 0, latency: 0 }, exploration: 0.1, memory: 200 })
  })
})
