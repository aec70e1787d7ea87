/**
 * npm run fuzz: 10,000 generated and mutated bodies (test/support/fuzz.ts) against a real
 * gateway over fake upstreams. Exits non-zero on any 5xx, dropped connection, invalid
 * request received upstream, or model that no longer answers afterwards.
 *
 *   npm run fuzz [-- --runs 10000 --seed 20261203 --concurrency 4]
 */
import { runFuzz } from "../test/support/fuzz"

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}

const runs = arg("runs", 10_000)
const seed = arg("seed", 20261203)
const concurrency = arg("concurrency", 4)

const report = await runFuzz({ runs, seed, concurrency })
const byStatus = Object.entries(report.statuses).sort(([x], [y]) => Number(x) - Number(y)).map(([s, n]) => `${s}: ${n}`).join(", ")
console.log(`fuzz: ${report.sent} bodies (seed ${seed}, concurrency ${concurrency}) in ${report.seconds.toFixed(1)} s`)
console.log(`answers by status: ${byStatus}`)
console.log(`requests received by the fake upstreams: ${report.upstreamRequests} (every one checked against OpenAI's CreateChatCompletionRequest)`)
console.log(`problems: ${report.problems.length}`)
for (const problem of report.problems.slice(0, 20)) console.log(`  - ${problem}`)
process.exit(report.problems.length === 0 ? 0 : 1)
