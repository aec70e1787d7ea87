/**
 * npm run bench:admission — the spend store's admission alone, on SQLite and on
 * PostgreSQL (a local server the bench starts): the latency of one admission (the
 * transaction that checks a key's limits and reserves its worst case), and how many
 * admissions per second one key sustains when they all contend for its row.
 *
 * Options (env): N=2000 CONCURRENCY=64
 */
import { Effect, Exit } from "effect"
import { hashKey } from "../src/billing/keys"
import { startPostgres } from "../test/support/postgres"
import { openStore, postgresSetting, sqliteSetting } from "../test/support/spend"

const N = Number(process.env.N ?? 2000)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64)

const percentile = (sorted: Array<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const main = async () => {
  const postgres = await startPostgres()
  console.log(`# bench:admission  ${N} admissions per case, concurrency ${CONCURRENCY}; node ${process.version}`)
  console.log("\n| database | key | one at a time p50 / p99 (ms) | contended: admissions/s | contended p50 / p99 (ms) |\n|---|---|---|---|---|")
  for (const [name, setting] of [["SQLite", sqliteSetting()], ["PostgreSQL", postgresSetting(postgres.database("admission"))]] as const) {
    const { close, store } = await openStore(setting)
    for (const [label, spec] of [
      ["no limits", {}],
      ["budget + rpm + tpm", { budget_usd: 1_000_000, rpm: 100_000_000, tpm: 1_000_000_000 }]
    ] as const) {
      const { secret } = await Effect.runPromise(store.createKey({ name: label, ...spec }, Date.now()))
      // A request's key is hashed once, when it is identified; admission is given the hash.
      const hash = hashKey(secret)
      const admit = async () => {
        const t0 = performance.now()
        const exit = await Effect.runPromiseExit(store.admit({ hash, models: ["m"], options: [{ micros: 100, tokens: 100 }], ttlMs: 60_000, now: Date.now() }))
        if (Exit.isFailure(exit)) throw new Error(`admission failed: ${exit.cause.toString()}`)
        return performance.now() - t0
      }
      for (let i = 0; i < 200; i++) await admit()
      const alone: Array<number> = []
      for (let i = 0; i < N / 4; i++) alone.push(await admit())
      const contended: Array<number> = []
      const t0 = performance.now()
      let next = 0
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < N) contended.push(await admit())
      }))
      const seconds = (performance.now() - t0) / 1000
      alone.sort((a, b) => a - b)
      contended.sort((a, b) => a - b)
      console.log(`| ${name} | ${label} | ${percentile(alone, 50).toFixed(2)} / ${percentile(alone, 99).toFixed(2)} | ${(N / seconds).toFixed(0)} | ${percentile(contended, 50).toFixed(1)} / ${percentile(contended, 99).toFixed(1)} |`)
    }
    await close()
  }
  await postgres.stop()
}

main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
