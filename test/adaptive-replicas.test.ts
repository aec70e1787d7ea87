/**
 * A learned route served by two gateway processes (the built dist/, as npm start runs it)
 * on one database, SQLite file or PostgreSQL: both fold the ledger into the shared beliefs
 * every second, and each ledger row is folded once, never by both.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { type SpawnedGateway, spawnGateway } from "./support/spawned"

const CONFIG = `
defaults:
  retry: { max_attempts: 1 }
spend: { flush_ms: 5 }
models:
  - { id: small, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, answers: ["small"] } }
  - { id: large, provider: sim, price: { input: 5, output: 10 }, sim: { latency_ms: 1, answers: ["large"] } }
routes:
  - { id: learn, strategy: adaptive, targets: [small, large], adaptive: { exploration: 0.2 } }
`

interface Beliefs {
  readonly folded_through_ms: number
  readonly data: ReadonlyArray<{ target: string; calls: number; feedback: number }>
}

const beliefs = async (gateway: SpawnedGateway): Promise<Beliefs> => (await fetch(`${gateway.url}/v1/routes/learn/beliefs`)).json() as Promise<Beliefs>

const chat = async (gateway: SpawnedGateway, i: number) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "learn", messages: [{ role: "user", content: `question ${i}` }], max_tokens: 20 })
  })
  expect(response.status).toBe(200)
  await response.json()
  return response.headers.get("x-request-id")!
}

/** The completed calls in the beliefs once the watermark has passed `after` (every row that ended before it is folded). */
const foldedCalls = async (gateway: SpawnedGateway, after: number): Promise<number> => {
  const until = Date.now() + 60_000
  for (;;) {
    const now = await beliefs(gateway)
    if (now.folded_through_ms > after) return now.data.reduce((sum, d) => sum + d.calls, 0)
    if (Date.now() > until) throw new Error(`the ledger was not folded past ${after}: ${JSON.stringify(now)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

let postgres: RunningPostgres | undefined
let running: Array<SpawnedGateway> = []
afterAll(async () => {
  await Promise.all(running.map((g) => g.kill()))
  await postgres?.stop()
})

const start = async (database: "sqlite" | "postgres") => {
  const dir = mkdtempSync(join(tmpdir(), "quorum-adaptive-replicas-"))
  const path = join(dir, "quorum.yaml")
  writeFileSync(path, CONFIG)
  let env: Record<string, string> = { QUORUM_DATA_DIR: dir }
  if (database === "postgres") env = { ...env, QUORUM_DATABASE_URL: (postgres ??= await startPostgres()).database("adaptive") }
  // One after the other: the first migrates the database.
  const a = await spawnGateway(path, env)
  running.push(a)
  const b = await spawnGateway(path, env)
  running.push(b)
  return [a, b] as const
}

describe.each(["sqlite", "postgres"] as const)("two gateway processes on one %s database", (database) => {
  it("fold each ledger row into the shared beliefs once", async () => {
    const [a, b] = await start(database)
    const calls = 60
    for (let i = 0; i < calls; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => chat((i + j) % 2 === 0 ? a : b, i + j)))
    }
    expect(await foldedCalls(a, Date.now())).toBe(calls)
    // Both kept folding meanwhile: one more call, once past it, is one more, not a second count of any.
    await chat(b, calls)
    expect(await foldedCalls(b, Date.now())).toBe(calls + 1)
    expect(await foldedCalls(a, Date.now())).toBe(calls + 1)
    // A label taken by the other replica, once.
    const answer = await chat(a, calls + 1)
    const label = () =>
      fetch(`${b.url}/v1/feedback`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: answer, correct: false }) })
    expect((await label()).status).toBe(200)
    expect((await label()).status).toBe(409)
    expect((await beliefs(a)).data.reduce((sum, d) => sum + d.feedback, 0)).toBe(1)
    await Promise.all([a.kill(), b.kill()])
    running = []
  }, 180_000)
})
