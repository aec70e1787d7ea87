/**
 * npm run bench:overhead — what the gateway adds to a request.
 *
 * A fixed-latency OpenAI-compatible upstream (its own process) is called directly and
 * through the gateway (its own process, node:cluster workers), alternately in phases
 * (ABAB), at a fixed open-loop rate. Latency is measured from each request's scheduled
 * send time, so a stalled generator or server cannot hide its queueing (no coordinated
 * omission). Streams are compared by time to first token. A minimal pass-through proxy
 * (bench/minimal-proxy.ts) runs in the same rounds as the floor any Node gateway has here.
 *
 * Quorum runs in four set-ups, to show what spend tracking costs: without the ledger
 * (spend.ledger: false, no key), with the ledger (no key), and with a virtual key
 * (budget, request and token limits: one admission transaction per request) and the
 * ledger, on SQLite and on PostgreSQL (a local server the bench starts).
 *
 * Options (env): RATE=1000 SECONDS=10 ROUNDS=2 LATENCY_MS=20 WORKERS=2
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Pool } from "undici"
import { freePort } from "../test/support/free-port"
import { startPostgres } from "../test/support/postgres"

const RATE = Number(process.env.RATE ?? 1000)
const SECONDS = Number(process.env.SECONDS ?? 10)
const ROUNDS = Number(process.env.ROUNDS ?? 2)
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 20)
const WORKERS = Number(process.env.WORKERS ?? 2)
const STREAM_RATE = Number(process.env.STREAM_RATE ?? 200)

const children: Array<ChildProcess> = []
const cleanup = () => {
  for (const child of children) {
    if (child.pid === undefined || child.exitCode !== null) continue
    try {
      process.kill(-child.pid, "SIGTERM")
    } catch {
      // Already gone.
    }
  }
}
process.on("exit", cleanup)
process.on("SIGINT", () => process.exit(130))

const start = (args: Array<string>, env: Record<string, string>, ready: RegExp) =>
  new Promise<{ child: ChildProcess; match: RegExpMatchArray }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { env: { ...process.env, ...env }, detached: true })
    children.push(child)
    let out = ""
    const onData = (d: Buffer) => {
      out += d.toString()
      const match = out.match(ready)
      if (match !== null) resolve({ child, match })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}: ${out}`)))
  })

const ADMIN = "bench-admin-key"
const headers: Record<string, Record<string, string>> = {}

const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "What is the capital of France?" }], max_tokens: 50 })
const streamBody = JSON.stringify({ model: "bench", stream: true, messages: [{ role: "user", content: "What is the capital of France?" }] })

interface Result {
  readonly latencies: Array<number>
  errors: number
}

/** Open loop: request i is due at t0 + i/rate, whatever happened to the ones before. */
const phase = async (pool: Pool, path: string, rate: number, seconds: number, stream: boolean, extra: Record<string, string> = {}): Promise<Result> => {
  const total = Math.round(rate * seconds)
  const result: Result = { latencies: [], errors: 0 }
  const pending: Array<Promise<void>> = []
  const t0 = performance.now() + 5
  let next = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      while (next < total && t0 + (next * 1000) / rate <= now) {
        const due = t0 + (next * 1000) / rate
        next++
        pending.push(
          pool.request({ path, method: "POST", headers: { "content-type": "application/json", ...extra }, body: stream ? streamBody : body })
            .then(async (res) => {
              if (stream) {
                // Time to first token: the first body bytes.
                let first = true
                for await (const _ of res.body) {
                  if (first) {
                    result.latencies.push(performance.now() - due)
                    first = false
                  }
                }
              } else {
                await res.body.text()
                result.latencies.push(performance.now() - due)
              }
              if (res.statusCode !== 200) result.errors++
            })
            .catch(() => void result.errors++)
        )
      }
      if (next < total) setImmediate(tick)
      else resolve()
    }
    tick()
  })
  await Promise.all(pending)
  return result
}

const percentile = (sorted: Array<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
const summary = (latencies: Array<number>) => {
  const sorted = [...latencies].sort((a, b) => a - b)
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN, n: sorted.length }
}
const ms = (n: number) => n.toFixed(2)

/** CPU seconds used by a process (user + system), from /proc. */
const cpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}
const childrenOf = (pid: number): Array<number> => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

const QUORUM_SETUPS = [
  { name: "Quorum, no ledger", spend: "{ ledger: false }", key: false, postgres: false },
  { name: "Quorum, ledger", spend: "{}", key: false, postgres: false },
  { name: "Quorum, key + ledger, SQLite", spend: "{}", key: true, postgres: false },
  { name: "Quorum, key + ledger, PostgreSQL", spend: "{}", key: true, postgres: true }
] as const

const main = async () => {
  const upstreamPort = await freePort()
  await start(["bench/fixed-upstream.ts"], { PORT: String(upstreamPort), LATENCY_MS: String(LATENCY_MS) }, /^\d+\n/m)
  const postgres = await startPostgres()
  process.on("exit", () => void postgres.stop())

  const pools: Record<string, Pool> = { direct: new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64 }) }
  const gatewayPids: Record<string, number> = {}
  for (const [i, setup] of QUORUM_SETUPS.entries()) {
    const dir = mkdtempSync(join(tmpdir(), "quorum-bench-"))
    const config = join(dir, "bench.yaml")
    writeFileSync(config, [
      "models:",
      `  - { id: bench, provider: vllm, base_url: "http://127.0.0.1:${upstreamPort}/v1", price: { input: 0.15, output: 0.6 } }`,
      `auth: { mode: ${setup.key ? "keys" : "open"} }`,
      `spend: ${setup.spend}`
    ].join("\n"))
    const port = await freePort()
    const gateway = await start(["src/main.ts", "--config", config], {
      PORT: String(port),
      QUORUM_WORKERS: String(WORKERS),
      QUORUM_ADMIN_KEY: ADMIN,
      QUORUM_DATA_DIR: dir,
      ...(setup.postgres ? { QUORUM_DATABASE_URL: postgres.database(`bench_${i}`) } : {})
    }, /listening/)
    gatewayPids[setup.name] = gateway.child.pid!
    pools[setup.name] = new Pool(`http://127.0.0.1:${port}`, { connections: 64 })
    if (setup.key) {
      // Every limit on, none reached: each request runs the whole admission.
      const created = await fetch(`http://127.0.0.1:${port}/admin/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "bench", budget_usd: 1_000_000, rpm: 10_000_000, tpm: 1_000_000_000 })
      }).then((r) => r.json() as Promise<{ key: string }>)
      headers[setup.name] = { authorization: `Bearer ${created.key}` }
    }
  }
  const proxyPort = await freePort()
  await start(["bench/minimal-proxy.ts"], { PORT: String(proxyPort), UPSTREAM_PORT: String(upstreamPort) }, /^\d+\n/m)
  pools.proxy = new Pool(`http://127.0.0.1:${proxyPort}`, { connections: 64 })
  const names = Object.keys(pools)

  console.log(`# bench:overhead  rate=${RATE}/s  ${SECONDS}s x ${ROUNDS} rounds per target  upstream latency=${LATENCY_MS} ms  gateway workers=${WORKERS}`)
  console.log(`node ${process.version}, ${(await import("node:os")).cpus().length} cores`)

  // Warm-up: JIT, connection pools.
  for (const name of names) await phase(pools[name]!, "/v1/chat/completions", RATE, 2, false, headers[name])

  const results: Record<string, Array<number>> = Object.fromEntries(names.map((n) => [n, []]))
  const streams: Record<string, Array<number>> = Object.fromEntries(names.map((n) => [n, []]))
  const errors: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]))
  const cpu: Record<string, number> = {}
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      const workers = gatewayPids[name] === undefined ? [] : childrenOf(gatewayPids[name]!)
      const before = workers.map(cpuSeconds)
      const r = await phase(pools[name]!, "/v1/chat/completions", RATE, SECONDS, false, headers[name])
      if (workers.length > 0) cpu[name] = (cpu[name] ?? 0) + workers.reduce((sum, pid, k) => sum + cpuSeconds(pid) - before[k]!, 0)
      results[name]!.push(...r.latencies)
      errors[name]! += r.errors
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      const r = await phase(pools[name]!, "/v1/chat/completions", STREAM_RATE, SECONDS / 2, true, headers[name])
      streams[name]!.push(...r.latencies)
      errors[name]! += r.errors
    }
  }

  const row = (label: string, s: ReturnType<typeof summary>, d: ReturnType<typeof summary>) =>
    `| ${label} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${ms(s.max)} | ${label === "direct" ? "" : `${ms(s.p50 - d.p50)} / ${ms(s.p99 - d.p99)}`} |`
  const table = (title: string, data: Record<string, Array<number>>) => {
    const d = summary(data.direct!)
    console.log(`\n| ${title} | requests | p50 | p90 | p99 | max | added p50 / p99 |\n|---|---|---|---|---|---|---|`)
    for (const name of names) console.log(row(name === "proxy" ? "minimal proxy (reference)" : name, summary(data[name]!), d))
  }
  table(`non-stream at ${RATE}/s, ms`, results)
  table(`stream at ${STREAM_RATE}/s, time to first token, ms`, streams)
  console.log(`\nerrors: ${names.map((n) => `${n} ${errors[n]}`).join(", ")}`)
  const requests = RATE * SECONDS * ROUNDS
  console.log(`gateway CPU per non-stream request (all workers): ${Object.entries(cpu).map(([n, c]) => `${n} ${((c / requests) * 1000).toFixed(3)} ms`).join("; ")}`)

  await Promise.all(Object.values(pools).map((p) => p.close()))
  cleanup()
  await postgres.stop()
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  cleanup()
  process.exit(1)
})
