/**
 * Content policies over HTTP on a real gateway: a blocked request never reaches an
 * upstream and gets a 400 naming the policy; a redacted one reaches it redacted; a routed
 * one goes only where its policy allows; an answer is withheld or redacted, as JSON and as
 * a stream (cut with an error event before the finding is sent). Config errors name the field.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import OpenAI from "openai"
import { type RunningGateway, resolveTestConfig, startGateway } from "./support/gateway"
import { validateError } from "./support/openai-schemas"
import { type ScriptedOpenAI, startScriptedOpenAI } from "./support/scripted-openai"

const CARD = "4111 1111 1111 1111"

let up: ScriptedOpenAI
let gateway: RunningGateway

const yaml = () => `
models:
  - { id: cloud, provider: openai, base_url: "${up.url}/v1" }
  - { id: local, provider: openai, base_url: "${up.url}/v1" }
  - { id: leaky, provider: sim, sim: { latency_ms: 1, tokens_per_second: 1000, answers: ["Your card ${CARD} is on file."] } }
  - { id: chatty, provider: sim, sim: { latency_ms: 1, tokens_per_second: 1000, answers: ["Write to jane@example.com for help."] } }
policies:
  - { name: no-secrets, on: input, checks: [{ type: pii, kinds: [secret] }], action: block }
  - { name: mask-email, on: both, checks: [{ type: pii, kinds: [email] }], action: redact }
  - { name: pii-stays-home, on: input, checks: [{ type: pii, kinds: [phone], default_country: US }], action: route, route_to: [local] }
  - { name: no-cards-out, on: output, checks: [{ type: pii, kinds: [card] }], action: block }
  - { name: support-only, on: input, checks: [{ type: blocklist, words: [refund] }], action: block, models: [support] }
routes:
  - { id: support, targets: [cloud] }
`

beforeAll(async () => {
  up = await startScriptedOpenAI()
  up.script("cloud", "cloud answer")
  up.script("local", "local answer")
  gateway = await startGateway(yaml(), { OPENAI_API_KEY: "sk-test" })
})
afterAll(async () => {
  await gateway?.close()
  await up?.close()
})

const chat = async (model: string, content: string, stream = false) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content }] })
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

describe("input policies", () => {
  it("block a request before any upstream sees it, naming the policy and not the text", async () => {
    up.reset()
    const secret = `sk-proj-${"Ab9".repeat(12)}`
    const blocked = await chat("cloud", `use my key ${secret}`)
    expect(blocked.status).toBe(400)
    const body = JSON.parse(blocked.text)
    expect(validateError(body)).toEqual([])
    expect(body.error).toMatchObject({ code: "content_policy_violation", param: "messages" })
    expect(body.error.message).toContain("`no-secrets`")
    expect(blocked.text).not.toContain(secret)
    expect(up.calls.get("cloud")).toBeUndefined()
  })

  it("redact what reaches the upstream, and say which policy applied", async () => {
    const answered = await chat("cloud", "Mail jane.doe@example.com the report")
    expect(answered.status).toBe(200)
    expect(answered.headers.get("x-quorum-policies")).toBe("mask-email")
    expect(JSON.stringify(up.bodies.get("cloud"))).toContain("Mail [REDACTED:email] the report")
    expect(JSON.stringify(up.bodies.get("cloud"))).not.toContain("jane.doe")
  })

  it("route a request with a phone number only to the models allowed to see it", async () => {
    up.reset()
    const answered = await chat("cloud", "Call me at (415) 555-0132")
    expect(answered.status).toBe(200)
    expect(JSON.parse(answered.text).choices[0].message.content).toBe("local answer")
    expect(answered.headers.get("x-quorum-deployment")).toBe("local")
    expect(up.calls.get("cloud")).toBeUndefined()
  })
})

describe("input policies on a consensus", () => {
  const consensus = (body: Record<string, unknown>) =>
    fetch(`${gateway.url}/v1/consensus`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ models: ["cloud", "local"], ...body }) })

  it("block, redact and refuse to fan out what a routing policy holds back", async () => {
    up.reset()
    const blocked = await consensus({ prompt: `my key is sk-proj-${"Ab9".repeat(12)}` })
    expect(blocked.status).toBe(400)
    expect(((await blocked.json()) as { error: { code: string } }).error.code).toBe("content_policy_violation")
    expect(up.calls.size).toBe(0)

    const redacted = await consensus({ messages: [{ role: "user", content: "Mail jane.doe@example.com please" }] })
    expect(redacted.status).toBe(200)
    expect(JSON.stringify(up.bodies.get("cloud"))).toContain("Mail [REDACTED:email] please")
    expect(JSON.stringify(up.bodies.get("local"))).not.toContain("jane.doe")

    up.reset()
    const held = await consensus({ prompt: "Call me at (415) 555-0132" })
    expect(held.status).toBe(400)
    expect(((await held.json()) as { error: { message: string } }).error.message).toContain("`pii-stays-home`")
    expect(up.calls.size).toBe(0)
  })
})

describe("a policy attached to a route", () => {
  it("applies to requests for that route only", async () => {
    const blocked = await chat("support", "I want a refund")
    expect(blocked.status).toBe(400)
    expect(blocked.text).toContain("`support-only`")
    const elsewhere = await chat("cloud", "I want a refund")
    expect(elsewhere.status).toBe(200)
  })

  it("names a model it is attached to that the config does not have", async () => {
    await expect(resolveTestConfig(`
models:
  - { id: m, provider: sim }
policies:
  - { name: p, checks: [{ type: blocklist, words: [x] }], action: block, models: [nope] }
`)).rejects.toThrow(/policies\[0\]\.models\[0\]/)
  })
})

describe("output policies", () => {
  it("withhold a JSON answer a blocking policy fires on", async () => {
    const withheld = await chat("leaky", "Is my card on file?")
    expect(withheld.status).toBe(400)
    expect(JSON.parse(withheld.text).error).toMatchObject({ code: "content_policy_violation" })
    expect(withheld.text).toContain("`no-cards-out`")
    expect(withheld.text).not.toContain("4111")
  })

  it("apply to a consensus: the answer redacted or withheld, and every candidate's text too", async () => {
    const post = (body: unknown) =>
      fetch(`${gateway.url}/v1/consensus`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    // chatty twice agree, so theirs is the answer; leaky's candidate text holds a card number.
    const redacted = await post({ models: ["chatty", "chatty", "leaky"], early_stop: false, messages: [{ role: "user", content: "Who do I write to?" }] })
    const text = await redacted.text()
    expect(redacted.status).toBe(200)
    expect(text).not.toContain("jane@example.com")
    expect(text).not.toContain("4111")
    const report = JSON.parse(text) as { answer: { content: string }; candidates: Array<{ model: string; content?: string }> }
    expect(report.answer.content).toBe("Write to [REDACTED:email] for help.")
    expect(report.candidates.find((c) => c.model === "leaky")!.content).toBe("[withheld by content policy no-cards-out]")
    expect(report.candidates.filter((c) => c.model === "chatty").map((c) => c.content)).toEqual(["Write to [REDACTED:email] for help.", "Write to [REDACTED:email] for help."])
    const viaChat = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "consensus", models: ["leaky", "leaky"], messages: [{ role: "user", content: "Is my card on file?" }] })
    })
    expect(viaChat.status).toBe(400)
    const withheld = await viaChat.text()
    expect(withheld).toContain("`no-cards-out`")
    expect(withheld).not.toContain("4111")
  })

  it("redact a JSON answer", async () => {
    const answered = await chat("chatty", "Who do I write to?")
    expect(JSON.parse(answered.text).choices[0].message.content).toBe("Write to [REDACTED:email] for help.")
  })

  it("cut a stream with an error event before the finding is sent, and redact streamed text", async () => {
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.url}/v1`, maxRetries: 0 })
    let received = ""
    const stream = await client.chat.completions.create({ model: "leaky", stream: true, messages: [{ role: "user", content: "card?" }] })
    await expect((async () => {
      for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? ""
    })()).rejects.toThrow(/no-cards-out/)
    expect(received).not.toContain("4111")

    let redacted = ""
    for await (const chunk of await client.chat.completions.create({ model: "chatty", stream: true, messages: [{ role: "user", content: "who?" }] })) {
      redacted += chunk.choices[0]?.delta.content ?? ""
    }
    expect(redacted).toBe("Write to [REDACTED:email] for help.")
  })
})

describe("policy configuration", () => {
  it("names the field that is wrong", async () => {
    const bad = (policies: string) => resolveTestConfig(`models:\n  - { id: m, provider: sim }\npolicies:\n${policies}`)
    await expect(bad(`  - { name: p, checks: [{ type: regex, pattern: "([" }], action: block }`)).rejects.toThrow(/policies\[0\]\.checks\[0\]\.pattern: not a valid regular expression/)
    await expect(bad(`  - { name: p, checks: [{ type: pii }], action: route, route_to: [nowhere] }`)).rejects.toThrow(/policies\[0\]\.route_to\[0\]: "nowhere" is not a model or route id/)
    await expect(bad(`  - { name: p, checks: [{ type: pii }], action: route }`)).rejects.toThrow(/policies\[0\]\.route_to: action route needs/)
  })
})
