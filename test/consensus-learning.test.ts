/**
 * Consensus that learns from outcomes, end to end over loopback: the decision (heaviest
 * group, abstentions), POST /v1/feedback, GET /v1/reliability, the modes (cascade waves,
 * hedging, full), exploration, and learned policies surviving a restart.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { chooseMode } from "../src/consensus/mode"
import { OPENAI_KEY } from "./fakes/openai-fake"
import { eventually, type RunningGateway, startGateway } from "./support/gateway"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { type ScriptedOpenAI, startScriptedOpenAI } from "./support/scripted-openai"

const ADMIN = "admin-secret-for-learning-tests-0123"

const models = (upstream: string, spec: ReadonlyArray<readonly [string, number]>) =>
  spec.map(([id, weight]) => `  - { id: ${id}, provider: openai, base_url: "${upstream}", weight: ${weight}, retry: { max_attempts: 1 } }`).join("\n")

const yamlFor = (upstream: string, extra = "") => `
defaults:
  retry: { max_attempts: 1 }
consensus:
  max_fanout: 5
  hedge_ms: 60000
  learning: { min_labels: 4, explore: 0 }
  presets:
    - { id: quiz, models: [top, mid, low] }
    - { id: panel, models: [mid, low] }
spend: { flush_ms: 5 }
models:
${models(upstream, [["top", 3], ["mid", 2], ["low", 1], ["e1", 1], ["e2", 1], ["e3", 1]])}
${extra}`

let up: ScriptedOpenAI
let gateway: RunningGateway

const post = async (g: RunningGateway, path: string, body: unknown, key?: string) => {
  const response = await fetch(`${g.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: (await response.json()) as any }
}
const get = async (g: RunningGateway, path: string, key?: string) => {
  const response = await fetch(`${g.url}${path}`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } })
  return { status: response.status, body: (await response.json()) as any }
}

beforeAll(async () => {
  up = await startScriptedOpenAI()
  gateway = await startGateway(yamlFor(up.url), { OPENAI_API_KEY: OPENAI_KEY })
})
afterAll(async () => {
  await gateway?.close()
  await up?.close()
})

const script = (answers: Record<string, string | { content: string | null; finish_reason?: "length"; refusal?: string }>) => {
  up.reset()
  for (const [model, reply] of Object.entries(answers)) up.script(model, reply)
}

describe("decision", () => {
  it("answers with the heaviest group even below min_agreement, and says it was not reached", async () => {
    script({ top: "A", mid: "B", low: "C" })
    const { body, status } = await post(gateway, "/v1/consensus", { prompt: "Which?", models: ["low", "mid", "top"], mode: "full", min_agreement: 0.6 })
    expect(status).toBe(200)
    expect(body.answer.model).toBe("top")
    expect(body.answer.content).toBe("A")
    expect(body.consensus.reached).toBe(false)
    expect(body.consensus.agreement).toBeCloseTo(3 / 6)
  })

  it("ties go to the group of the more reliable model", async () => {
    script({ top: "A", e1: "B", e2: "B", low: "B" })
    const { body } = await post(gateway, "/v1/consensus", { prompt: "Which?", models: ["e1", "e2", "low", "top"], mode: "full" })
    expect(body.answer.model).toBe("top")
  })

  it("a reply with no final answer, a refusal or one cut at max_tokens abstains and leaves the vote to the others", async () => {
    script({
      top: "The answer is 42.",
      mid: { content: "I keep going and going about the question without ever getting to a final result, sadly for everyone involved." },
      low: { content: "41", finish_reason: "length" },
      e1: { content: null, refusal: "I can't help with that." },
      e2: "41"
    })
    const { body } = await post(gateway, "/v1/consensus", { prompt: "6 x 7?", models: ["top", "mid", "low", "e1", "e2"], mode: "full" })
    const by = (m: string) => body.candidates.find((c: any) => c.model === m)
    expect(by("mid").abstained).toMatch(/no final answer/)
    expect(by("low").abstained).toMatch(/length/)
    // A refusal with no text is a failed candidate: it casts no vote either.
    expect(by("e1").status).toBe("error")
    expect(by("top").abstained).toBeUndefined()
    // Only top (3) and e2 (1) voted: the strategy stays a vote, not free-text similarity.
    expect(body.consensus.strategy).toBe("vote")
    expect(body.answer.content).toBe("The answer is 42.")
    expect(body.consensus.agreement).toBeCloseTo(3 / 4)
    expect(body.consensus.reached).toBe(true)
  })
})

describe("feedback", () => {
  it("labels a consensus by its label or by `correct`, and says how many candidates it judged", async () => {
    script({ top: "The answer is 18.", mid: "18", low: "17" })
    const first = await post(gateway, "/v1/consensus", { prompt: "9 + 9?", models: ["top", "mid", "low"], mode: "full", task: "fb" })
    expect(first.status).toBe(200)
    const labelled = await post(gateway, "/v1/feedback", { id: first.body.id, label: "18" })
    expect(labelled).toEqual({ status: 200, body: { id: first.body.id, recorded: true, candidates_labelled: 3 } })
    const judged = await post(gateway, "/v1/feedback", { id: first.body.id, correct: true })
    expect(judged.status).toBe(200)
    // A JSON value as label.
    const json = await post(gateway, "/v1/feedback", { id: first.body.id, label: 17 })
    expect(json.status).toBe(200)
  })

  it("labels a chat completion with model consensus", async () => {
    script({ top: "C", mid: "C", low: "B" })
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.url}/v1` })
    const completion = await client.chat.completions.create({ model: "consensus/quiz", messages: [{ role: "user", content: "Pick one" }] })
    expect(completion.choices[0]!.message.content).toBe("C")
    const labelled = await post(gateway, "/v1/feedback", { id: completion.id, label: "The answer is (c)" })
    expect(labelled.status).toBe(200)
    expect(labelled.body.candidates_labelled).toBeGreaterThanOrEqual(2)
  })

  it("answers 404 for an unknown id and 400 naming the bad field", async () => {
    const unknown = await post(gateway, "/v1/feedback", { id: "consensus-nope", label: "A" })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.param).toBe("id")
    const noId = await post(gateway, "/v1/feedback", { label: "A" })
    expect(noId.status).toBe(400)
    expect(noId.body.error.param).toBe("id")
    const both = await post(gateway, "/v1/feedback", { id: "x", label: "A", correct: true })
    expect(both.status).toBe(400)
    expect(both.body.error.param).toBe("correct")
    const neither = await post(gateway, "/v1/feedback", { id: "x" })
    expect(neither.status).toBe(400)
    const empty = await post(gateway, "/v1/feedback", { id: "x", label: "  " })
    expect(empty.body.error.param).toBe("label")
    const wrongType = await post(gateway, "/v1/feedback", { id: "x", correct: "yes" })
    expect(wrongType.status).toBe(400)
    expect(wrongType.body.error.param).toBe("correct")
  })
})

describe("modes", () => {
  it("cascade calls the fewest most reliable models whose agreement settles the answer", async () => {
    script({ top: "42", mid: "42", low: "42" })
    const { body } = await post(gateway, "/v1/consensus", { prompt: "6 x 7?", models: ["low", "mid", "top"], mode: "cascade" })
    expect(Object.fromEntries(up.calls)).toEqual({ top: 1, mid: 1 })
    expect(body.consensus.waves).toHaveLength(1)
    expect(body.consensus.waves[0].models).toEqual(["top", "mid"])
    expect(body.consensus.mode).toBe("cascade")
    expect(body.consensus.reached).toBe(true)
  })

  it("cascade escalates while the first wave disagrees", async () => {
    script({ top: "42", mid: "41", low: "42" })
    const { body } = await post(gateway, "/v1/consensus", { prompt: "6 x 7?", models: ["low", "mid", "top"], mode: "cascade" })
    expect(Object.fromEntries(up.calls)).toEqual({ top: 1, mid: 1, low: 1 })
    expect(body.consensus.waves.map((w: any) => w.models)).toEqual([["top", "mid"], ["low"]])
    expect(body.consensus.waves[1].reason).toMatch(/^open/)
    expect(body.answer.content).toBe("42")
  })

  it("a wave not settled within hedge_ms is hedged by the next", async () => {
    const hedging = await startGateway(yamlFor(up.url).replace("hedge_ms: 60000", "hedge_ms: 20"), { OPENAI_API_KEY: OPENAI_KEY })
    try {
      script({ top: "42", mid: "42", low: "42" })
      // mid never answers on its own: only the hedge (low, agreeing with top) can settle the request.
      up.hold("mid")
      const { body } = await post(hedging, "/v1/consensus", { prompt: "6 x 7?", models: ["low", "mid", "top"], mode: "cascade" })
      expect(Object.fromEntries(up.calls)).toEqual({ top: 1, mid: 1, low: 1 })
      expect(body.consensus.waves.map((w: any) => w.models)).toEqual([["top", "mid"], ["low"]])
      expect(body.consensus.waves[1].reason).toMatch(/^hedge/)
      expect(body.answer.content).toBe("42")
      // top (3) and low (1) outweigh mid (2): its call is cancelled, aborted upstream, and billed.
      expect(body.consensus.early_stopped).toBe(true)
      const mid = body.candidates.find((c: any) => c.model === "mid")
      expect(mid.status).toBe("cancelled")
      expect(mid.cost_usd).toBeDefined()
      expect(await eventually(() => up.aborted.get("mid") === 1)).toBe(true)
    } finally {
      up.release("mid")
      await hedging.close()
    }
  })

  it("full waits for every model where parallel stops early", async () => {
    script({ top: "42", mid: "42", low: "42", e1: "42", e2: "42" })
    const { body } = await post(gateway, "/v1/consensus", { prompt: "6 x 7?", models: ["top", "mid", "low", "e1", "e2"], mode: "full" })
    expect(body.consensus.early_stopped).toBe(false)
    expect(body.candidates.every((c: any) => c.status === "ok")).toBe(true)
    expect([...up.calls.values()].reduce((a, b) => a + b, 0)).toBe(5)
    expect(body.consensus.waves).toEqual([{ models: ["top", "mid", "low", "e1", "e2"], reason: expect.stringMatching(/^full/) }])
  })

  it("task and mode never reach an upstream", async () => {
    script({ top: "1", mid: "1" })
    const { status } = await post(gateway, "/v1/consensus", { prompt: "?", models: ["top", "mid"], task: "t", mode: "parallel", temperature: 0 })
    expect(status).toBe(200)
    expect(up.bodies.get("top")).toMatchObject({ temperature: 0 })
    expect(up.bodies.get("top")).not.toHaveProperty("task")
    expect(up.bodies.get("top")).not.toHaveProperty("mode")
    script({ top: "C", mid: "C", low: "C" })
    const client = new OpenAI({ apiKey: "unused", baseURL: `${gateway.url}/v1` })
    await client.chat.completions.create({ model: "consensus/quiz", messages: [{ role: "user", content: "Pick" }], task: "quiz-2", mode: "full" } as never)
    for (const m of ["top", "mid", "low"]) {
      expect(up.bodies.get(m)).not.toHaveProperty("task")
      expect(up.bodies.get(m)).not.toHaveProperty("mode")
    }
  })
})

describe("exploration", () => {
  /** mulberry32: a seeded source, so the share is a fixed fact of the seed, not a flaky count. */
  const seeded = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  it("runs `full` on the configured share of requests that name no mode", () => {
    const random = seeded(7)
    const draws = Array.from({ length: 20_000 }, () => chooseMode(undefined, true, 0.05, random))
    const share = draws.filter((d) => d.mode === "full").length / draws.length
    expect(share).toBeGreaterThan(0.045)
    expect(share).toBeLessThan(0.055)
    expect(draws.filter((d) => d.mode === "full").every((d) => d.explored)).toBe(true)
    expect(draws.filter((d) => d.mode !== "full").every((d) => d.mode === "cascade")).toBe(true)
  })

  it("never overrides a mode the caller asked for; a share of 0, or a task not learned yet, never explores", () => {
    const random = seeded(1)
    expect(Array.from({ length: 1_000 }, () => chooseMode("parallel", true, 1, random).mode).every((m) => m === "parallel")).toBe(true)
    expect(Array.from({ length: 1_000 }, () => chooseMode(undefined, true, 0, random).mode).every((m) => m === "cascade")).toBe(true)
    // Before a task is learned its requests run parallel, which calls every model anyway.
    expect(Array.from({ length: 1_000 }, () => chooseMode(undefined, false, 1, random).mode).every((m) => m === "parallel")).toBe(true)
  })
})

describe("reliability before any label", () => {
  it("lists the models the task would call, with the weights config gives them", async () => {
    const panel = await get(gateway, "/v1/reliability?task=panel")
    expect(panel.status).toBe(200)
    expect(panel.body).toMatchObject({ rule: "config", labels: 0, learned_from: 0, answer_kinds: null })
    expect(panel.body.data.map((m: any) => [m.model, m.labelled, m.accuracy, m.config_weight, m.learned_weight, m.weight])).toEqual([
      ["low", 0, null, 1, null, 1],
      ["mid", 0, null, 2, null, 2]
    ])
    // A task that is no preset: Quorum's default pick (max_fanout 5 allows the default 3), heaviest first.
    const other = await get(gateway, "/v1/reliability?task=never-seen")
    expect(other.body.data.map((m: any) => m.model).sort()).toEqual(["low", "mid", "top"].sort())
  })
})

describe("learning", () => {
  let pg: RunningPostgres | undefined
  afterAll(async () => {
    await pg?.stop()
  })
  const databases: ReadonlyArray<readonly [string, () => Promise<Record<string, string>>]> = [
    ["SQLite", async () => ({ QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-learning-")) })],
    ["PostgreSQL", async () => {
      pg ??= await startPostgres()
      return { QUORUM_DATABASE_URL: pg.database("learning") }
    }]
  ]

  it.each(databases)("learns a task's weights from labels, reports them, and keeps them across a restart (%s)", async (_, database) => {
    const env = { OPENAI_API_KEY: OPENAI_KEY, ...(await database()) }
    let g = await startGateway(yamlFor(up.url), env)
    try {
      const before = await get(g, "/v1/reliability?task=maths")
      expect(before.status).toBe(200)
      expect(before.body.rule).toBe("config")
      // e1 is always right; e2 and e3 agree on the same wrong answer.
      script({ e1: "7", e2: "8", e3: "8" })
      for (let i = 0; i < 6; i++) {
        const run = await post(g, "/v1/consensus", { prompt: `item ${i}`, models: ["e1", "e2", "e3"], mode: "full", task: "maths" })
        // Under equal config weights the correlated pair outvotes e1 (from the 4th label on, the policy may be learned).
        if (i < 4) expect(run.body.answer.content).toBe("8")
        expect((await post(g, "/v1/feedback", { id: run.body.id, label: "7" })).status).toBe(200)
      }
      let report = await get(g, "/v1/reliability?task=maths")
      for (let i = 0; report.body.rule !== "learned" && i < 200; i++) {
        await new Promise((r) => setTimeout(r, 25))
        report = await get(g, "/v1/reliability?task=maths")
      }
      expect(report.body.rule).toBe("learned")
      for (let i = 0; report.body.learned_from !== 6 && i < 200; i++) {
        await new Promise((r) => setTimeout(r, 25))
        report = await get(g, "/v1/reliability?task=maths")
      }
      expect(report.body.learned_from).toBe(6)
      const e1 = report.body.data.find((m: any) => m.model === "e1")
      expect(e1).toMatchObject({ labelled: 6, answered: 6, correct: 6, accuracy: 1, abstention_rate: 0 })
      expect(report.body.data.find((m: any) => m.model === "e2").correct).toBe(0)
      await g.close()
      g = await startGateway(yamlFor(up.url), env)
      const after = await get(g, "/v1/reliability?task=maths")
      expect(after.body.rule).toBe("learned")
      expect(after.body.data.find((m: any) => m.model === "e1").learned_weight).toBe(e1.learned_weight)
      // Learned: cascade by default, and e1 now outweighs the pair.
      script({ e1: "7", e2: "8", e3: "8" })
      const run = await post(g, "/v1/consensus", { prompt: "next", models: ["e1", "e2", "e3"], task: "maths" })
      expect(run.body.consensus.mode).toBe("cascade")
      expect(run.body.consensus.rule).toBe("learned")
      expect(run.body.answer.content).toBe("7")
      // The labels taught that this task's right answers are numbers: a lone reply in prose is
      // no answer, even with no other reply beside it; the cascade asks the next model instead.
      expect(after.body.answer_kinds).toEqual(["number"])
      script({ e1: "I am not sure what this comes to.", e2: "8", e3: "8" })
      const unsure = await post(g, "/v1/consensus", { prompt: "unsure", models: ["e1", "e2", "e3"], task: "maths" })
      expect(unsure.body.consensus.mode).toBe("cascade")
      const e1Run = unsure.body.candidates.find((c: any) => c.model === "e1")
      expect(e1Run.abstained).toMatch(/kind this task's right answers take \(number\)/)
      expect(unsure.body.answer.content).toBe("8")
      expect((up.calls.get("e2") ?? 0) + (up.calls.get("e3") ?? 0)).toBeGreaterThan(0)
      // When no model answers in kind, the task's form has changed: they vote as before.
      script({ e1: "I am not sure.", e2: "I am not sure.", e3: "no idea" })
      const none = await post(g, "/v1/consensus", { prompt: "none", models: ["e1", "e2", "e3"], task: "maths" })
      expect(none.status).toBe(200)
      expect(none.body.answer.content).toBe("I am not sure.")
    } finally {
      await g.close()
    }
  }, 60_000)
})

describe("keys", () => {
  let keyed: RunningGateway
  beforeAll(async () => {
    keyed = await startGateway(yamlFor(up.url, "auth: { mode: keys }"), { OPENAI_API_KEY: OPENAI_KEY, QUORUM_ADMIN_KEY: ADMIN })
  })
  afterAll(async () => {
    await keyed?.close()
  })
  const newKey = async () => (await post(keyed, "/admin/keys", { name: "learning" }, ADMIN)).body.key as string

  it("only the key that made the request, or the admin key, may label it", async () => {
    const [mine, theirs] = [await newKey(), await newKey()]
    script({ top: "A", mid: "A" })
    const run = await post(keyed, "/v1/consensus", { prompt: "?", models: ["top", "mid"] }, mine)
    expect(run.status).toBe(200)
    expect((await post(keyed, "/v1/feedback", { id: run.body.id, label: "A" }, theirs)).status).toBe(404)
    expect((await post(keyed, "/v1/feedback", { id: run.body.id, label: "A" })).status).toBe(401)
    expect((await post(keyed, "/v1/feedback", { id: run.body.id, label: "A" }, mine)).status).toBe(200)
    expect((await post(keyed, "/v1/feedback", { id: run.body.id, correct: false }, ADMIN)).status).toBe(200)
  })

  it("reliability needs the admin key where keys are required", async () => {
    expect((await get(keyed, "/v1/reliability?task=default", await newKey())).status).toBe(401)
    expect((await get(keyed, "/v1/reliability?task=default")).status).toBe(401)
    const admin = await get(keyed, "/v1/reliability?task=default", ADMIN)
    expect(admin.status).toBe(200)
    expect(admin.body.object).toBe("reliability")
  })
})
