/**
 * The spend database going away under a running gateway: requests that need it (a key's
 * admission) are refused in OpenAI's shape, requests that do not are served, ledger rows
 * wait and are written once the database is back, and nothing leaks a connection URL.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningGateway, startGateway } from "./support/gateway"
import { validateError } from "./support/openai-schemas"
import { type RunningPostgres, startPostgres } from "./support/postgres"

const ADMIN = "admin-key-for-outage-test"
let pg: RunningPostgres
let gateway: RunningGateway
let databaseUrl: string

beforeAll(async () => {
  pg = await startPostgres()
  databaseUrl = pg.database("outage")
  gateway = await startGateway(
    `
models:
  - { id: m, provider: sim, price: { input: 1, output: 1 }, sim: { latency_ms: 5, answers: ["Paris"] } }
spend: { flush_ms: 5 }
`,
    { QUORUM_DATABASE_URL: databaseUrl, QUORUM_ADMIN_KEY: ADMIN }
  )
})
afterAll(async () => {
  await gateway?.close()
  await pg?.stop()
})

const chat = async (key?: string) => {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Capital of France?" }] })
  })
  return { status: response.status, id: response.headers.get("x-request-id"), body: (await response.json()) as any }
}
const ledger = () => fetch(`${gateway.url}/admin/ledger`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<any>)

describe("when the spend database is down", () => {
  it("refuses keyed requests with 503, serves the others, and writes their rows once it is back", async () => {
    const created = await fetch(`${gateway.url}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ name: "outage", budget_usd: 1 })
    }).then((r) => r.json() as Promise<any>)
    expect((await chat(created.key)).status).toBe(200)

    await pg.pause()
    try {
      const keyed = await chat(created.key)
      expect(keyed.status).toBe(503)
      expect(validateError(keyed.body)).toEqual([])
      expect(keyed.body.error.code).toBe("spend_store_unavailable")
      expect(keyed.body.error.message).not.toContain(databaseUrl)
      expect(keyed.body.error.message).not.toContain("postgres://")

      const open = await chat()
      expect(open.status).toBe(200)
      // Its rows wait: the writer fails and keeps them.
      await expect.poll(async () => {
        const status = await ledger()
        return status.failed_batches > 0 && status.pending > 0
      }, { timeout: 10_000, interval: 100 }).toBe(true)
    } finally {
      await pg.resume()
    }
    // The writer retries (at most 5 s apart) and the rows arrive.
    await expect.poll(async () => (await ledger()).pending, { timeout: 15_000, interval: 200 }).toBe(0)
    expect((await chat(created.key)).status).toBe(200)
    await expect.poll(async () => (await ledger()).pending, { timeout: 5_000, interval: 50 }).toBe(0)
    const report = await fetch(`${gateway.url}/admin/spend?group_by=`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.json() as Promise<any>)
    // Before the outage, the open request during it, the 503 (no attempt, refused) and the one after.
    expect(report.data[0]).toMatchObject({ requests: 4, attempts: 3, by_status: { "200": 3, "503": 1 }, failed: 1 })
  }, 60_000)
})
