/**
 * npm run bench:ledger — what writing the ledger costs per request on SQLite, by batch
 * size: one request row and one attempt row each (a plain non-stream call without a key),
 * written through the spend store as the ledger's writer writes them, one transaction per
 * batch. Under load a batch holds what arrived in `flush_ms` (~100 rows at 4,000 req/s);
 * at one connection, one row.
 *
 * Options (env): ROWS=5000 SIZES=1,10,100 ROUNDS=3
 */
import { Effect } from "effect"
import { answeredEntry, openStore, sqliteSetting } from "../test/support/spend"

const ROWS = Number(process.env.ROWS ?? 5000)
const SIZES = (process.env.SIZES ?? "1,10,100").split(",").map(Number)
const ROUNDS = Number(process.env.ROUNDS ?? 3)

const median = (values: Array<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN

const main = async () => {
  const { store, close } = await openStore(sqliteSetting())
  console.log(`# bench:ledger  ${ROWS} requests per round, ${ROUNDS} rounds; node ${process.version}`)
  console.log("\n| batch size | CPU µs per request (median) | wall µs per request (median) |\n|---|---|---|")
  for (const size of SIZES) {
    const cpu: Array<number> = []
    const wall: Array<number> = []
    for (let round = 0; round < ROUNDS; round++) {
      const batches = Array.from({ length: Math.ceil(ROWS / size) }, () => Array.from({ length: size }, answeredEntry))
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      for (const batch of batches) await Effect.runPromise(store.writeBatch(batch))
      const used = process.cpuUsage(c0)
      const n = batches.length * size
      cpu.push((used.user + used.system) / n)
      wall.push(((performance.now() - t0) * 1000) / n)
    }
    console.log(`| ${size} | ${median(cpu).toFixed(1)} | ${median(wall).toFixed(1)} |`)
  }
  await close()
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
