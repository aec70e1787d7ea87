/**
 * Budgets and the ledger across processes, as they run in production: node:cluster
 * workers sharing a SQLite file, replicas sharing PostgreSQL, and a gateway killed with
 * SIGKILL in the middle of its load.
 */
import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { chatBound } from "../src/billing/worst-case"
import { type FakeServer, json, startFake } from "./fakes/fake-server"
import { OPENAI_KEY } from "./fakes/openai-fake"
import { resolveTestConfig } from "./support/gateway"
import { type RunningPostgres, startPostgres } from "./support/postgres"
import { openStore, postgresSetting, sqliteSetting } from "./support/spend"
import { spawnGateway, type SpawnedGateway } from "./support/spawned"

const ADMIN = "admin-key-for-process-tests"
const MESSAGES = [{ role: "user" as const, content: "What is the capital of France?" }]

let pg: RunningPostgres
beforeAll(async () => {
  pg = await startPostgres()
})
afterAll(async () => {
  await pg?.stop()
})

/** `paid` is a simulated model, or, given an upstream, an OpenAI-compatible one at that URL. */
const configFile = (latencyMs: number, upstream?: string, ttlMs = 3000, held?: string) => {
  const paid = upstream === undefined
    ? `provider: sim, sim: { latency_ms: ${latencyMs}, answers: ["Paris"] }`
    : `provider: openai, base_url: "${upstream}/v1"`
  // \`held\`: an upstream that answers only when the test says, so that calls are surely in flight at a kill.
  const yaml = `
models:
  - { id: paid, ${paid}, price: { input: 1000, output: 1000 }, max_output_tokens: 50 }
${held === undefined ? "" : `  - { id: held, provider: openai, base_url: "${held}/v1", price: { input: 1000, output: 1000 }, max_output_tokens: 50 }`}
auth: { mode: keys }
spend: { flush_ms: 10, reservation_ttl_ms: ${ttlMs} }
`
  const path = join(mkdtempSync(join(tmpdir(), "quorum-config-")), "quorum.yaml")
  writeFileSync(path, yaml)
  return { path, yaml }
}

/** Where each test's gateways keep their ledger: a fresh SQLite folder, or a fresh PostgreSQL database. */
let dbCount = 0
const databases = [
  ["SQLite", () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-data-"))
    return { env: { QUORUM_DATA_DIR: dir }, setting: { ...sqliteSetting(), path: join(dir, "quorum.db") } }
  }],
  ["PostgreSQL", () => {
    const url = pg.database(`processes_${++dbCount}`)
    return { env: { QUORUM_DATABASE_URL: url }, setting: postgresSetting(url) }
  }]
] as const

const admin = async (gateway: SpawnedGateway, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return (await response.json()) as any
}

const chat = (gateway: SpawnedGateway, key: string, signal?: AbortSignal, model = "paid") =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    ...(signal === undefined ? {} : { signal }),
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model, max_tokens: 10, messages: MESSAGES })
  }).then(async (response) => ({ status: response.status, cost: response.headers.get("x-quorum-cost-usd"), body: (await response.json()) as any }))

const micros = (usd: string | null) => Math.round(Number(usd) * 1e6)

/**
 * An OpenAI-compatible upstream that holds every call until `total` requests have been
 * decided (each reached it or was refused): admitted calls then cannot settle, and free
 * budget, while the race is still on.
 */
const heldUpstream = async (total: number) => {
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  let refused = 0
  const check = () => {
    if (server.received.length + refused >= total) release()
  }
  const server: FakeServer = await startFake(async ({ received, res }) => {
    check()
    await released
    json(res, 200, {
      id: "chatcmpl-held", object: "chat.completion", created: 1_700_000_000, model: received.body.model,
      choices: [{ index: 0, message: { role: "assistant", content: "Paris", refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 14, completion_tokens: 1, total_tokens: 15 }
    })
  })
  return {
    server,
    release,
    refused: () => {
      refused++
      check()
    }
  }
}

describe.each(databases)("budgets across processes on %s", (name, database) => {
  it("admits exactly what the budget fits out of 200 concurrent requests, over every worker or replica, and reserves nothing after", async () => {
    const { env } = database()
    const upstream = await heldUpstream(200)
    const { path, yaml } = configFile(0, upstream.server.url)
    const worst = chatBound(await resolveTestConfig(yaml, { OPENAI_API_KEY: OPENAI_KEY }), { model: "paid", max_tokens: 10, messages: MESSAGES }).option.micros
    const settings = { ...env, QUORUM_ADMIN_KEY: ADMIN, OPENAI_API_KEY: OPENAI_KEY }
    // SQLite: one gateway whose two node:cluster workers share the file. PostgreSQL: two replicas.
    const gateways = name === "SQLite"
      ? [await spawnGateway(path, { ...settings, QUORUM_WORKERS: "2" })]
      : await Promise.all([spawnGateway(path, settings), spawnGateway(path, settings)])
    try {
      const created = await admin(gateways[0]!, "POST", "/admin/keys", { name: "race", budget_usd: (worst * 100) / 1e6 })
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) =>
        chat(gateways[i % gateways.length]!, created.key).then((result) => {
          if (result.status !== 200) upstream.refused()
          return result
        })))
      const admitted = results.filter((r) => r.status === 200)
      const refused = results.filter((r) => r.status !== 200)
      expect(admitted).toHaveLength(100)
      expect(upstream.server.received).toHaveLength(100)
      expect(new Set(refused.map((r) => `${r.status} ${r.body.error.code}`))).toEqual(new Set(["429 insufficient_quota"]))
      const spent = admitted.reduce((sum, r) => sum + micros(r.cost), 0)
      expect(spent).toBeGreaterThan(0)
      await expect.poll(async () => (await admin(gateways[gateways.length - 1]!, "GET", `/admin/keys/${created.id}`)).spend, { timeout: 5_000 })
        .toMatchObject({ reserved_usd: "0.000000", spent_usd: (spent / 1e6).toFixed(6) })
      const pids = new Set<number>()
      for (let i = 0; i < 20; i++) for (const g of gateways) pids.add((await admin(g, "GET", "/admin/ledger")).pid)
      expect(pids.size).toBeGreaterThanOrEqual(2)
    } finally {
      upstream.release()
      await Promise.all(gateways.map((g) => g.kill()))
      await upstream.server.close()
    }
  }, 120_000)

  it("charges what a worker or replica killed under load had not written, from its living sibling, within seconds", async () => {
    const { env, setting } = database()
    const held = await heldUpstream(Number.POSITIVE_INFINITY)
    const { path } = configFile(30, undefined, 600_000, held.server.url)
    const settings = { ...env, QUORUM_ADMIN_KEY: ADMIN, OPENAI_API_KEY: OPENAI_KEY }
    // SQLite: one gateway, two node:cluster workers, one of them killed. PostgreSQL: two replicas, one killed.
    const gateways = name === "SQLite"
      ? [await spawnGateway(path, { ...settings, QUORUM_WORKERS: "2" })]
      : await Promise.all([spawnGateway(path, settings), spawnGateway(path, settings)])
    try {
      const created = await admin(gateways[0]!, "POST", "/admin/keys", { name: "worker", budget_usd: 1_000 })
      let running = true
      let answered = 0
      let answeredMicros = 0
      const load = Array.from({ length: 24 }, async (_, i) => {
        while (running) {
          // A connection node:cluster's primary hands to a worker as it is killed is never answered: bounded, it counts as failed.
        const result = await chat(gateways[i % gateways.length]!, created.key, AbortSignal.timeout(15_000)).catch(() => undefined)
          if (result?.status === 200) {
            answered++
            answeredMicros += micros(result.cost)
          }
        }
      })
      // Calls surely in flight at the kill: held upstream, on the replica killed, or (node:cluster hands connections round
      // robin) on both workers.
      const holding = Array.from({ length: 6 }, () => chat(gateways[0]!, created.key, AbortSignal.timeout(60_000), "held").catch(() => undefined))
      try {
        await expect.poll(() => held.server.received.length, { timeout: 20_000 }).toBe(6)
        // Under load, with rows written: then the one answering this is killed (a worker's pid, or a replica's process group).
        let status = await admin(gateways[0]!, "GET", "/admin/ledger")
        while (status.written < 20) status = await admin(gateways[0]!, "GET", "/admin/ledger")
        if (name === "SQLite") process.kill(status.pid, "SIGKILL")
        else await gateways[0]!.kill()
      } finally {
        running = false
        held.release()
        await Promise.all([...load, ...holding])
      }
      const survivor = gateways[gateways.length - 1]!
      const { close, sql } = await openStore(setting)
      try {
        const count = async (query: Effect.Effect<ReadonlyArray<{ readonly n: unknown }>, unknown>) => Number((await Effect.runPromise(query))[0]!.n)
        // The sibling, still serving, charges the dead one's reservations once its lease lapses.
        await expect.poll(() => count(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`), { timeout: 20_000, interval: 250 }).toBe(0)
        expect(await count(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_requests WHERE status = 0`)).toBeGreaterThan(0)
        const ledger = await count(sql<{ n: unknown }>`SELECT COALESCE(SUM(cost_micros), 0) AS n FROM quorum_requests WHERE key_id = ${created.id}`)
        const settled = await count(sql<{ n: unknown }>`SELECT COALESCE(SUM(spent_micros), 0) AS n FROM quorum_key_spend WHERE key_id = ${created.id}`)
        expect(settled).toBe(ledger)
        expect(ledger).toBeGreaterThanOrEqual(answeredMicros)
        expect(await count(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_requests WHERE key_id = ${created.id}`)).toBeGreaterThanOrEqual(answered)
      } finally {
        await close()
      }
      expect((await admin(survivor, "GET", `/admin/keys/${created.id}`)).spend.reserved_usd).toBe("0.000000")
      expect((await chat(survivor, created.key)).status).toBe(200)
    } finally {
      held.release()
      await Promise.all(gateways.map((g) => g.kill()))
      await held.server.close()
    }
  }, 120_000)

  it("loses no acknowledged ledger row to kill -9 under load, stays consistent, and charges what the dead process answered within seconds", async () => {
    const { env, setting } = database()
    const held = await heldUpstream(Number.POSITIVE_INFINITY)
    // Reservations live ten minutes: what frees the dead process's ones below is its lapsed lease, not their expiry.
    const { path } = configFile(30, undefined, 600_000, held.server.url)
    const settings = { ...env, QUORUM_ADMIN_KEY: ADMIN, OPENAI_API_KEY: OPENAI_KEY }
    let gateway = await spawnGateway(path, settings)
    const created = await admin(gateway, "POST", "/admin/keys", { name: "crash", budget_usd: 1_000 })
    let running = true
    // What clients were answered: every one must end up paid for.
    let answered = 0
    let answeredMicros = 0
    const load = Array.from({ length: 24 }, async () => {
      while (running) {
        const result = await chat(gateway, created.key).catch(() => undefined)
        if (result?.status === 200) {
          answered++
          answeredMicros += micros(result.cost)
        }
      }
    })
    let acknowledged = 0
    // Calls surely in flight at the kill, besides the load's.
    const holding = Array.from({ length: 3 }, () => chat(gateway, created.key, undefined, "held").catch(() => undefined))
    try {
      await expect.poll(() => held.server.received.length, { timeout: 20_000 }).toBe(3)
      const until = Date.now() + 1_500
      while (Date.now() < until || acknowledged === 0) acknowledged = (await admin(gateway, "GET", "/admin/ledger")).written
      // The last count this process reported as written, then no chance to flush anything more.
      await gateway.kill()
    } finally {
      running = false
      held.release()
      await Promise.all([...load, ...holding])
      await held.server.close()
    }
    expect(acknowledged).toBeGreaterThan(20)

    const count = async (db: SqlClient.SqlClient, query: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<{ readonly n: unknown }>, unknown>) =>
      Number((await Effect.runPromise(query(db)))[0]!.n)
    const ledgerOf = (db: SqlClient.SqlClient) =>
      count(db, (sql) => sql<{ n: unknown }>`SELECT COALESCE(SUM(cost_micros), 0) AS n FROM quorum_requests WHERE key_id = ${created.id}`)
    const settledOf = (db: SqlClient.SqlClient) =>
      count(db, (sql) => sql<{ n: unknown }>`SELECT COALESCE(SUM(spent_micros), 0) AS n FROM quorum_key_spend WHERE key_id = ${created.id}`)
    let left: number
    let written: number
    {
      const { close, sql: db } = await openStore(setting)
      try {
        written = await count(db, (sql) => sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_requests`)
        expect(written).toBeGreaterThanOrEqual(acknowledged)
        // Whole batches only: every request has all its attempts, and the key's spend is exactly its requests' cost.
        expect(await count(db, (sql) => sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_requests r
          WHERE r.attempts <> (SELECT COUNT(*) FROM quorum_attempts a WHERE a.request_id = r.id)`)).toBe(0)
        const ledger = await ledgerOf(db)
        expect(await settledOf(db)).toBe(ledger)
        expect(ledger).toBeGreaterThan(0)
        // The requests in flight or answered but not yet written at the kill left their reservations behind.
        left = await count(db, (sql) => sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)
        expect(left).toBeGreaterThan(0)
      } finally {
        await close()
      }
    }

    // A new process on the same database charges the dead one's reservations once its lease lapses: seconds, not their expiry.
    gateway = await spawnGateway(path, settings)
    try {
      await expect.poll(async () => (await admin(gateway, "GET", `/admin/keys/${created.id}`)).spend.reserved_usd, { timeout: 20_000, interval: 250 }).toBe("0.000000")
      const { close, sql: db } = await openStore(setting)
      try {
        expect(await count(db, (sql) => sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_reservations`)).toBe(0)
        // One ledger row per reservation left, saying so; every answer a client got is in the ledger, as itself or as a charge.
        expect(await count(db, (sql) => sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM quorum_requests WHERE status = 0 AND error LIKE 'reconciled:%'`)).toBe(left)
        expect(written + left).toBeGreaterThanOrEqual(answered)
        // The key's spend is still exactly its ledger, and covers at least what the clients were told they were charged.
        const ledger = await ledgerOf(db)
        expect(await settledOf(db)).toBe(ledger)
        expect(ledger).toBeGreaterThanOrEqual(answeredMicros)
        expect(await count(db, (sql) => sql<{ n: unknown }>`SELECT COALESCE(SUM(reserved_micros), 0) AS n FROM quorum_key_spend`)).toBe(0)
      } finally {
        await close()
      }
      expect((await chat(gateway, created.key)).status).toBe(200)
    } finally {
      await gateway.kill()
    }
  }, 120_000)
})
