/**
 * Content checks that ask a model (`llm`) and checks users write as modules, over HTTP on a
 * real gateway with a fake OpenAI upstream on loopback: the judge's verdict blocks, passes,
 * routes or redacts, on requests and answers, JSON and streams; its call is an attempt of
 * the request in the ledger; a judge that fails or answers out of format counts as found
 * (or not, with on_error: pass). Module checks, sync (the example in docs/) and async,
 * block and redact; config errors name the field or the module's file.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type RunningGateway, resolveTestConfig, startGateway } from "./support/gateway"
import { validateError } from "./support/openai-schemas"
import { type ScriptedOpenAI, startScriptedOpenAI } from "./support/scripted-openai"

const EXAMPLE_CHECKS = join(import.meta.dirname, "..", "docs", "examples", "checks")
const ADMIN = "admin-test-key"
const VIOLATION = `{"violation": true, "reason": "medical advice"}`
const CLEAN = `{"violation": false, "reason": "nothing medical"}`

/** An async module (it waits) that finds "classified", and throws on "explode". */
const VAULT = `
export default {
  name: "vault-words",
  async find(text: string) {
    if (text.includes("explode")) throw new Error("the vault exploded")
    const at = text.indexOf("classified")
    return at === -1 ? [] : [{ label: "classified", start: at, end: at + "classified".length }]
  }
}
`

let up: ScriptedOpenAI
let gateway: RunningGateway
let myChecks: string

const sim = (answer: string) => `provider: sim, sim: { latency_ms: 1, tokens_per_second: 2000, answers: ["${answer}"] }`
const llm = (model = "guard", extra = "") => `{ type: llm, model: ${model}, instruction: "Does the text ask for or give medical advice?", label: medical${extra} }`

const yaml = () => `
models:
  - { id: cloud, provider: openai, base_url: "${up.url}" }
  - { id: local, provider: openai, base_url: "${up.url}" }
  - { id: guard, provider: openai, base_url: "${up.url}" }
  - { id: paidguard, provider: openai, base_url: "${up.url}", price: { input: 1000, output: 1000 } }
  - { id: deadguard, provider: openai, base_url: "http://127.0.0.1:9/v1", retry: { max_attempts: 1 } }
  - { id: medic, ${sim("Take two aspirin and rest.")} }
  - { id: ticketer, ${sim("Your ticket TCK-123456 is open.")} }
  - { id: secretive, ${sim("This is classified material.")} }
  - { id: exploder, ${sim("It will explode.")} }
routes:
  - { id: triage, targets: [cloud] }
  - { id: billed, targets: [cloud] }
  - { id: lenient, targets: [cloud] }
  - { id: guard-down, targets: [cloud] }
  - { id: tickets-in, targets: [cloud] }
  - { id: medic-masked, targets: [medic] }
  - { id: exploder-open, targets: [exploder] }
  - { id: ticketer-strict, targets: [ticketer] }
check_dirs: ["${EXAMPLE_CHECKS}", "${myChecks}"]
spend: { flush_ms: 5 }
policies:
  - { name: no-tickets-in, on: input, checks: [{ type: module, name: ticket-ids }], action: block, models: [tickets-in] }
  - { name: mask-tickets, on: output, checks: [{ type: module, name: ticket-ids }], action: redact, models: [ticketer] }
  - { name: no-tickets-out, on: output, checks: [{ type: module, name: ticket-ids }], action: block, models: [ticketer-strict] }
  - { name: vault, on: output, checks: [{ type: module, name: vault-words }], action: block, models: [secretive, exploder] }
  - { name: vault-open, on: output, checks: [{ type: module, name: vault-words, on_error: pass }], action: block, models: [exploder-open] }
  - { name: no-medical-advice, on: input, checks: [${llm()}], action: block, models: [cloud] }
  - { name: medical-stays-home, on: input, checks: [${llm()}], action: route, route_to: [local], models: [triage] }
  - { name: lenient-guard, on: input, checks: [${llm("guard", ", on_error: pass")}], action: block, models: [lenient] }
  - { name: guard-is-down, on: input, checks: [${llm("deadguard")}], action: block, models: [guard-down] }
  - { name: no-medical-answers, on: output, checks: [${llm()}], action: block, models: [medic] }
  - { name: mask-medical-answers, on: output, checks: [${llm()}], action: redact, models: [medic-masked] }
  - { name: no-medical-consensus, on: input, checks: [${llm()}], action: block, models: [consensus] }
  - { name: paid-judge, on: input, checks: [${llm("paidguard")}], action: block, models: [billed] }
`

beforeAll(async () => {
  myChecks = mkdtempSync(join(tmpdir(), "quorum-checks-"))
  writeFileSync(join(myChecks, "vault.ts"), VAULT)
  up = await startScriptedOpenAI()
  up.script("cloud", "cloud answer")
  up.script("local", "local answer")
  gateway = await startGateway(yaml(), { OPENAI_API_KEY: "sk-test", QUORUM_ADMIN_KEY: ADMIN })
})
afterAll(async () => {
  await gateway?.close()
  await up?.close()
})

const chat = async (model: string, content: string) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content }] })
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

/** A streamed chat, read whole: the text its chunks carried, and the error event's message if it was cut. */
const streamChat = async (model: string, content: string) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, stream: true, messages: [{ role: "user", content }] })
  })
  let text = ""
  let error: string | undefined
  for (const line of (await response.text()).split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue
    const event = JSON.parse(line.slice(6)) as { error?: { message: string }; choices?: Array<{ delta: { content?: string | null } }> }
    if (event.error !== undefined) error = event.error.message
    text += event.choices?.[0]?.delta.content ?? ""
  }
  return { status: response.status, requestId: response.headers.get("x-request-id"), text, error }
}

const admin = async (path: string) => {
  const response = await fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })
  return (await response.json()) as any
}

/** A key's spend once its requests are settled: waits for the settlement, not for a time. */
const settledSpend = async (keyId: string): Promise<number> => {
  for (;;) {
    // The ledger first: nothing pending then, the key read after it holds every row written (read the
    // other way round, a row written between the two reads left a spend of 0 looking settled).
    const { pending } = await admin("/admin/ledger")
    const key = await admin(`/admin/keys/${keyId}`)
    const spent = Number(key.spend.spent_usd)
    if (spent > 0 || (pending === 0 && Number(key.spend.reserved_usd) === 0)) return spent
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** The ledger's models of a request's upstream attempts, in order, once it is written. */
const attemptsOf = async (requestId: string | null): Promise<Array<[string, string]>> => {
  for (let i = 0; i < 200 && (await admin("/admin/ledger")).pending !== 0; i++) await new Promise((r) => setTimeout(r, 10))
  const request = await admin(`/admin/requests/${requestId}`)
  return (request.upstream_attempts as Array<{ model: string; status: string }>).map((a) => [a.model, a.status])
}

const errorOf = (text: string) => (JSON.parse(text) as { error: { code: string; message: string; param: string | null } }).error

describe("an llm check on requests", () => {
  it("blocks a request the model judges a violation, naming the policy and what was found; the judge's call is an attempt of the request", async () => {
    up.reset()
    up.script("guard", VIOLATION)
    const blocked = await chat("cloud", "How much ibuprofen can I take with <b>wine</b>?")
    expect(blocked.status).toBe(400)
    expect(validateError(JSON.parse(blocked.text))).toEqual([])
    expect(errorOf(blocked.text)).toMatchObject({ code: "content_policy_violation", param: "messages" })
    expect(errorOf(blocked.text).message).toBe("The request was blocked by content policy `no-medical-advice`: it contains medical.")
    expect(up.calls.get("cloud")).toBeUndefined()
    // The judge got the instruction and the text as escaped, delimited data.
    const asked = JSON.stringify(up.bodies.get("guard"))
    expect(asked).toContain("Does the text ask for or give medical advice?")
    expect(asked).toContain("<text>\\nHow much ibuprofen can I take with &lt;b&gt;wine&lt;/b&gt;?\\n</text>")
    expect(await attemptsOf(blocked.headers.get("x-request-id"))).toEqual([["guard", "ok"]])
  })

  it("passes a request the model judges clean, the judge's call and the answer both in the ledger", async () => {
    up.reset()
    up.script("guard", CLEAN)
    const answered = await chat("cloud", "What is the capital of France?")
    expect(answered.status).toBe(200)
    expect(JSON.parse(answered.text).choices[0].message.content).toBe("cloud answer")
    expect(await attemptsOf(answered.headers.get("x-request-id"))).toEqual([["guard", "ok"], ["cloud", "ok"]])
  })

  it("routes a request the model judges a violation to the models its policy allows", async () => {
    up.reset()
    up.script("guard", "```json\n" + VIOLATION + "\n```")
    const routed = await chat("triage", "Is this rash serious?")
    expect(routed.status).toBe(200)
    expect(routed.headers.get("x-quorum-deployment")).toBe("local")
    expect(routed.headers.get("x-quorum-policies")).toBe("medical-stays-home")
    expect(up.calls.get("cloud")).toBeUndefined()
  })

  it("counts a judge that fails or answers out of format as a finding (fail closed), or as none with on_error: pass", async () => {
    up.reset()
    up.script("guard", "Sure, that looks fine to me.")
    const closed = await chat("cloud", "Hello there")
    expect(closed.status).toBe(400)
    expect(errorOf(closed.text).message).toContain("`no-medical-advice`: it contains medical (unverified: guard did not reply with {\"violation\": true|false})")
    const open = await chat("lenient", "Hello there")
    expect(open.status).toBe(200)
    expect(up.calls.get("cloud")).toBe(1)

    const down = await chat("guard-down", "Hello there")
    expect(down.status).toBe(400)
    expect(errorOf(down.text).message).toMatch(/`guard-is-down`: it contains medical \(unverified: deadguard failed \(/)
    expect(await attemptsOf(down.headers.get("x-request-id"))).toEqual([["deadguard", "error"]])
  })
})

/** A key with a budget, and a request for the `billed` route (a paid judge's policy) made with it. */
const budgetedKey = async (budgetUsd: number) => {
  const created = await fetch(`${gateway.url}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "billed", budget_usd: budgetUsd })
  }).then((r) => r.json() as Promise<{ id: string; key: string }>)
  const ask = () =>
    fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${created.key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "billed", messages: [{ role: "user", content: "Can I double my insulin?" }] })
    })
  return { id: created.id, ask }
}

describe("a judge's cost", () => {
  it("is charged to the caller's key even when the judge refuses the request", async () => {
    up.reset()
    up.script("paidguard", VIOLATION)
    const key = await budgetedKey(100)
    const response = await key.ask()
    expect(response.status).toBe(400)
    const cost = Number(response.headers.get("x-quorum-cost-usd"))
    // 15 tokens at $1,000 a million: the judge's call, the only one made.
    expect(cost).toBeCloseTo(0.015, 6)
    expect(await settledSpend(key.id)).toBeCloseTo(cost, 6)
  })
})

describe("a judge and the key's budget", () => {
  it("refuses a key out of budget before its judge is asked: the key pays for no judge it cannot afford", async () => {
    up.reset()
    up.script("paidguard", VIOLATION)
    const key = await budgetedKey(0.01)
    // The first is admitted (its target costs nothing), judged and refused: its judge's $0.015 spends the budget.
    expect((await key.ask()).status).toBe(400)
    expect(up.calls.get("paidguard")).toBe(1)
    expect(await settledSpend(key.id)).toBeGreaterThan(0.01)
    const refused = await key.ask()
    expect(refused.status).toBe(429)
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("insufficient_quota")
    expect(up.calls.get("paidguard")).toBe(1)
  })
})

describe("a judge and the request's own limits", () => {
  it("asks the judge whatever the client's max_cost_usd: a client limit neither blocks by mistake nor skips the check", async () => {
    up.reset()
    up.script("paidguard", CLEAN)
    // Far below the judge's worst case: were it held to it, the judge could not be asked (unverified, so blocked).
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-quorum-max-cost-usd": "0.000001" },
      body: JSON.stringify({ model: "billed", messages: [{ role: "user", content: "What is the capital of France?" }] })
    })
    expect(response.status).toBe(200)
    expect(up.calls.get("paidguard")).toBe(1)
  })
})

describe("an llm check on a consensus request", () => {
  const consensus = (prompt: string) =>
    fetch(`${gateway.url}/v1/consensus`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ models: ["cloud", "local"], prompt }) })

  it("blocks it before the fan-out, or lets it fan out, the judge's call an attempt of the request", async () => {
    up.reset()
    up.script("guard", VIOLATION)
    const blocked = await consensus("Which antibiotic should I take?")
    expect(blocked.status).toBe(400)
    expect(((await blocked.json()) as { error: { message: string } }).error.message).toContain("`no-medical-consensus`")
    expect(up.calls.get("cloud")).toBeUndefined()
    expect(up.calls.get("local")).toBeUndefined()

    up.script("guard", CLEAN)
    const answered = await consensus("What is the capital of France?")
    expect(answered.status).toBe(200)
    const attempts = await attemptsOf(answered.headers.get("x-request-id"))
    expect(attempts[0]).toEqual(["guard", "ok"])
    expect(attempts.slice(1).map(([model]) => model).sort()).toEqual(["cloud", "local"])
  })
})

describe("an llm check on answers", () => {
  it("withholds a JSON answer the model judges a violation, and lets a clean one through", async () => {
    up.script("guard", VIOLATION)
    const withheld = await chat("medic", "I have a headache")
    expect(withheld.status).toBe(400)
    expect(errorOf(withheld.text).message).toBe("The answer was withheld by content policy `no-medical-answers`: it contained medical.")
    expect(withheld.text).not.toContain("aspirin")
    // The judge read the answer.
    expect(JSON.stringify(up.bodies.get("guard"))).toContain("Take two aspirin and rest.")

    up.script("guard", CLEAN)
    const passed = await chat("medic", "I have a headache")
    expect(JSON.parse(passed.text).choices[0].message.content).toBe("Take two aspirin and rest.")
  })

  it("holds a stream's text until the judge has read it all: cut with an error event before any of it is sent, or sent whole", async () => {
    up.script("guard", VIOLATION)
    const cut = await streamChat("medic", "I have a headache")
    expect(cut.status).toBe(200)
    expect(cut.error).toContain("`no-medical-answers`")
    expect(cut.text).toBe("")
    // The judge's call is the stream's attempt too (medic's own ends ok or cancelled, as the cut finds it).
    const attempts = await attemptsOf(cut.requestId)
    expect(attempts.map(([model]) => model)).toEqual(["medic", "guard"])
    expect(attempts[1]).toEqual(["guard", "ok"])

    up.script("guard", CLEAN)
    const whole = await streamChat("medic", "I have a headache")
    expect(whole.error).toBeUndefined()
    expect(whole.text).toBe("Take two aspirin and rest.")
  })

  it("redacts the whole answer the model judges a violation, as JSON and as a stream", async () => {
    up.script("guard", VIOLATION)
    expect(JSON.parse((await chat("medic-masked", "headache?")).text).choices[0].message.content).toBe("[REDACTED:medical]")
    const streamed = await streamChat("medic-masked", "headache?")
    expect(streamed.error).toBeUndefined()
    expect(streamed.text).toBe("[REDACTED:medical]")
  })
})

describe("check modules", () => {
  it("the example module (sync) blocks a request, and redacts or withholds an answer, as JSON and as a stream", async () => {
    up.reset()
    const blocked = await chat("tickets-in", "What about TCK-0042?")
    expect(blocked.status).toBe(400)
    expect(errorOf(blocked.text).message).toBe("The request was blocked by content policy `no-tickets-in`: it contains ticket_id.")
    expect(up.calls.size).toBe(0)
    expect((await chat("tickets-in", "What about my order?")).status).toBe(200)

    expect(JSON.parse((await chat("ticketer", "status?")).text).choices[0].message.content).toBe("Your ticket [REDACTED:ticket_id] is open.")
    expect((await streamChat("ticketer", "status?")).text).toBe("Your ticket [REDACTED:ticket_id] is open.")

    const withheld = await chat("ticketer-strict", "status?")
    expect(withheld.status).toBe(400)
    expect(errorOf(withheld.text).message).toBe("The answer was withheld by content policy `no-tickets-out`: it contained ticket_id.")
    const cut = await streamChat("ticketer-strict", "status?")
    expect(cut.error).toContain("`no-tickets-out`")
    expect(cut.text).not.toContain("TCK-123456")
  })

  it("an async module blocks an answer, as JSON and as a stream (cut before anything is sent)", async () => {
    const withheld = await chat("secretive", "tell me")
    expect(withheld.status).toBe(400)
    expect(errorOf(withheld.text).message).toBe("The answer was withheld by content policy `vault`: it contained classified.")
    const cut = await streamChat("secretive", "tell me")
    expect(cut.error).toContain("`vault`")
    expect(cut.text).toBe("")
  })

  it("a module that throws counts as found (fail closed), or as nothing with on_error: pass", async () => {
    const closed = await chat("exploder", "what now?")
    expect(closed.status).toBe(400)
    expect(errorOf(closed.text).message).toContain("vault-words (unverified: check module vault-words: find failed)")
    // The module's own message is neither shown nor logged: it may quote the text.
    expect(closed.text).not.toContain("exploded")
    const open = await chat("exploder-open", "what now?")
    expect(open.status).toBe(200)
    expect(JSON.parse(open.text).choices[0].message.content).toBe("It will explode.")
  })
})

describe("check configuration", () => {
  const withPolicy = (check: string, extra = "") =>
    `models:\n  - { id: m, provider: sim }\n${extra}policies:\n  - { name: p, checks: [${check}], action: block }\n`

  it("names an llm check's model the config does not have", async () => {
    await expect(resolveTestConfig(withPolicy(llm("nope")))).rejects.toThrow(/test\.yaml: policies\[0\]\.checks\[0\]\.model: "nope" is not a model or route id/)
  })

  it("names a module no checks folder has", async () => {
    await expect(resolveTestConfig(withPolicy("{ type: module, name: ticket-ids }"))).rejects.toThrow(
      /policies\[0\]\.checks\[0\]\.name: no check module is named "ticket-ids" \(no module was loaded: set check_dirs or QUORUM_CHECKS_DIR\)/
    )
    // QUORUM_CHECKS_DIR is a checks folder too.
    await expect(resolveTestConfig(withPolicy("{ type: module, name: nothing-here }"), { QUORUM_CHECKS_DIR: EXAMPLE_CHECKS })).rejects.toThrow(/no check module is named "nothing-here" \(loaded: ticket-ids\)/)
    await expect(resolveTestConfig(withPolicy("{ type: module, name: ticket-ids }"), { QUORUM_CHECKS_DIR: EXAMPLE_CHECKS })).resolves.toBeDefined()
  })

  it("names a module's file and what is wrong with it: its shape, its import, a name taken twice", async () => {
    const folder = (files: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), "quorum-bad-checks-"))
      for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
      return dir
    }
    const shape = folder({ "shapeless.ts": `export default { name: "shapeless" }\n` })
    await expect(resolveTestConfig(withPolicy("{ type: regex, pattern: x }", `check_dirs: ["${shape}"]\n`))).rejects.toThrow(
      new RegExp(`${join(shape, "shapeless.ts")}: the module must export a check \\(\\{ name, find, maxSpan\\? \\}\\) as default or as \`check\`; find: `)
    )
    const broken = folder({ "broken.ts": `throw new Error("cannot start")\n` })
    await expect(resolveTestConfig(withPolicy("{ type: regex, pattern: x }", `check_dirs: ["${broken}"]\n`))).rejects.toThrow(
      new RegExp(`${join(broken, "broken.ts")}: cannot load the module \\(cannot start\\)`)
    )
    const twice = folder({ "ticket-ids-again.ts": `export const check = { name: "ticket-ids", find: () => [] }\n` })
    await expect(resolveTestConfig(withPolicy("{ type: regex, pattern: x }", `check_dirs: ["${EXAMPLE_CHECKS}", "${twice}"]\n`))).rejects.toThrow(
      /ticket-ids-again\.ts: a check module named "ticket-ids" is already loaded from .*ticket-ids\.ts/
    )
  })
})
