/**
 * Two gateway processes (the built dist/, as npm start runs it) on one PostgreSQL and one
 * Redis, as docker-compose.yml runs them: a key's rate limit holds across both, a circuit
 * one opens is open on the other, and an answer one cached is a hit on the other.
 */
import { Redis } from "ioredis"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { type RunningRedis, startRedis } from "./support/redis"
import { type SpawnedGateway, spawnGateway } from "./support/spawned"
import { createKey } from "./support/gateway"

const ADMIN = "admin-key-for-replicas"
let postgres: RunningPostgres
let redis: RunningRedis
let a: SpawnedGateway
let b: SpawnedGateway

const CONFIG = `
defaults:
  retry: { max_attempts: 1 }
  circuit: { failure_threshold: 2, cooldown_ms: 600000 }
models:
  - { id: fast, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, answers: ["Paris"] } }
  - { id: flaky, provider: sim, price: { input: 1, output: 2 }, sim: { latency_ms: 1, error_rate: 1, answers: ["x"] } }
auth: { mode: keys }
cache: { ttl_s: 600 }
spend: { flush_ms: 5 }
`

beforeAll(async () => {
  ;[postgres, redis] = await Promise.all([startPostgres(), startRedis()])
  const dir = mkdtempSync(join(tmpdir(), "quorum-replicas-"))
  const path = join(dir, "quorum.yaml")
  writeFileSync(path, CONFIG)
  const env = { QUORUM_DATABASE_URL: postgres.database("replicas"), QUORUM_REDIS_URL: redis.url, QUORUM_ADMIN_KEY: ADMIN, QUORUM_DATA_DIR: dir }
  // One after the other: the first migrates the database.
  a = await spawnGateway(path, env)
  b = await spawnGateway(path, env)
}, 120_000)
afterAll(async () => {
  await Promise.all([a?.kill(), b?.kill()])
  await Promise.all([redis?.stop(), postgres?.stop()])
})

const newKey = (spec: Record<string, unknown>) => createKey(a.url, ADMIN, { name: "replicas", ...spec })

const chat = (gateway: SpawnedGateway, key: string, model: string, content: string) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, temperature: 0, messages: [{ role: "user", content }] })
  })

const circuitOf = async (gateway: SpawnedGateway, model: string) => {
  const res = await fetch(`${gateway.url}/admin/health`, { headers: { authorization: `Bearer ${ADMIN}` } })
  const report = (await res.json()) as { data: Array<{ model: string; circuit: string }> }
  return report.data.find((d) => d.model === model)?.circuit
}

describe("two replicas on one PostgreSQL and one Redis", () => {
  it("hold a key's rate limit across both", async () => {
    const key = await newKey({ rpm: 4 })
    const statuses = []
    for (const [i, gateway] of [a, b, a, b, a, b].entries()) statuses.push((await chat(gateway, key, "fast", `limit ${i}`)).status)
    expect(statuses.filter((s) => s === 200)).toHaveLength(4)
    expect(statuses.slice(4)).toEqual([429, 429])
  })

  it("share a circuit: one replica opens it, the other skips the model too", async () => {
    const key = await newKey({})
    expect((await chat(a, key, "flaky", "fail 1")).status).toBe(502)
    expect((await chat(a, key, "flaky", "fail 2")).status).toBe(502)
    expect(await circuitOf(a, "flaky")).toBe("open")
    // The verdict travels by Redis's pub/sub: b shows it as soon as the message is in.
    while ((await circuitOf(b, "flaky")) !== "open") await new Promise((r) => setTimeout(r, 10))
    const skipped = await chat(b, key, "flaky", "fail 3")
    expect(skipped.status).toBe(503)
    expect(((await skipped.json()) as { error: { code: string } }).error.code).toBe("upstream_unavailable")
  })

  it("share the response cache: an answer one replica fetched is a hit on the other", async () => {
    const key = await newKey({})
    const client = new Redis(redis.url)
    const cached = async () => (await client.keys("quorum:cache:*")).length
    const before = await cached()
    const first = await chat(a, key, "fast", "What is the capital of France? (replicas)")
    expect(first.headers.get("x-quorum-cache")).toBe("miss")
    try {
      // The answer is written to Redis off the request's path: wait until it is there.
      while ((await cached()) === before) await new Promise((r) => setTimeout(r, 10))
    } finally {
      client.disconnect()
    }
    const again = await chat(b, key, "fast", "What is the capital of France? (replicas)")
    expect(again.headers.get("x-quorum-cache")).toBe("hit (exact)")
    expect(await again.json()).toEqual(await first.json())
  })
})
