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
 * Options (env): RATE=1000 SECONDS=10 ROUNDS=2 LATENCY_MS=20 WORKERS=2
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Pool } from "undici"
import { freePort } from "../test/support/free-port"

const RATE = Number(process.env.RATE ?? 1000)
const SECONDS = Number(process.env.SECONDS ?? 10)
const ROUNDS = Number(process.env.ROUNDS ?? 2)
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 20)
const WORKERS = Number(process.env.WORKERS ?? 2)
const STREAM_RATE = Number(process.env.STREAM_RATE ?? 200)

const children: Array<ChildProcess> = []
const cleanup = () => {
  for (const child of children) if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGTERM")
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

const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "What is the capital of France?" }], max_tokens: 50 })
const streamBody = JSON.stringify({ model: "bench", stream: true, messages: [{ role: "user", content: "What is the capital of France?" }] })

interface Result {
  readonly latencies: Array<number>
  errors: number
}

/** Open loop: request i is due at t0 + i/rate, whatever happened to the ones before. */
const phase = async (pool: Pool, path: string, rate: number, seconds: number, stream: boolean): Promise<Result> => {
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
          pool.request({ path, method: "POST", headers: { "content-type": "application/json" }, body: stream ? streamBody : body })
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

const main = async () => {
  const upstreamPort = await freePort()
  await start(["bench/fixed-upstream.ts"], { PORT: String(upstreamPort), LATENCY_MS: String(LATENCY_MS) }, /^\d+\n/m)
  const dir = mkdtempSync(join(tmpdir(), "quorum-bench-"))
  const config = join(dir, "bench.yaml")
  writeFileSync(config, `models:\n  - { id: bench, provider: vllm, base_url: "http://127.0.0.1:${upstreamPort}/v1" }\n`)
  const gatewayPort = await freePort()
  const gateway = await start(["src/main.ts", "--config", config], { PORT: String(gatewayPort), QUORUM_WORKERS: String(WORKERS) }, /listening/)

  const proxyPort = await freePort()
  await start(["bench/minimal-proxy.ts"], { PORT: String(proxyPort), UPSTREAM_PORT: String(upstreamPort) }, /^\d+\n/m)

  const direct = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64 })
  const viaGateway = new Pool(`http://127.0.0.1:${gatewayPort}`, { connections: 64 })
  const viaProxy = new Pool(`http://127.0.0.1:${proxyPort}`, { connections: 64 })
  const targets = { direct, gateway: viaGateway, proxy: viaProxy }

  console.log(`# bench:overhead  rate=${RATE}/s  ${SECONDS}s x ${ROUNDS} rounds per target  upstream latency=${LATENCY_MS} ms  gateway workers=${WORKERS}`)
  console.log(`node ${process.version}, ${(await import("node:os")).cpus().length} cores`)

  // Warm-up: JIT, connection pools.
  for (const pool of Object.values(targets)) await phase(pool, "/v1/chat/completions", RATE, 2, false)
  const workers = childrenOf(gateway.child.pid!)
  const cpuBefore = workers.map(cpuSeconds)

  const results: Record<string, Array<number>> = { direct: [], gateway: [], proxy: [] }
  const errors: Record<string, number> = { direct: 0, gateway: 0, proxy: 0 }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, pool] of Object.entries(targets)) {
      const r = await phase(pool, "/v1/chat/completions", RATE, SECONDS, false)
      results[name]!.push(...r.latencies)
      errors[name]! += r.errors
    }
  }
  const cpuUsed = workers.map((pid, i) => cpuSeconds(pid) - cpuBefore[i]!)

  const streams: Record<string, Array<number>> = { direct: [], gateway: [], proxy: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, pool] of Object.entries(targets)) {
      const r = await phase(pool, "/v1/chat/completions", STREAM_RATE, SECONDS / 2, true)
      streams[name]!.push(...r.latencies)
      errors[name]! += r.errors
    }
  }

  const row = (label: string, s: ReturnType<typeof summary>) =>
    `| ${label} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.p99)} | ${ms(s.max)} |`
  const table = (title: string, data: Record<string, Array<number>>) => {
    const d = summary(data.direct!)
    const g = summary(data.gateway!)
    const p = summary(data.proxy!)
    console.log(`\n| ${title} | requests | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|`)
    console.log(row("direct", d))
    console.log(row("through Quorum", g))
    console.log(row("through the minimal proxy (reference)", p))
    console.log(`| **added by Quorum** | | **${ms(g.p50 - d.p50)}** | ${ms(g.p90 - d.p90)} | **${ms(g.p99 - d.p99)}** | |`)
    console.log(`| added by the minimal proxy | | ${ms(p.p50 - d.p50)} | ${ms(p.p90 - d.p90)} | ${ms(p.p99 - d.p99)} | |`)
  }
  table(`non-stream at ${RATE}/s, ms`, results)
  table(`stream at ${STREAM_RATE}/s, time to first token, ms`, streams)
  console.log(`\nerrors: direct ${errors.direct}, Quorum ${errors.gateway}, minimal proxy ${errors.proxy}`)
  console.log(`gateway worker CPU seconds during the non-stream phases: ${cpuUsed.map((c) => c.toFixed(1)).join(", ")} (${workers.length} workers)`)

  await Promise.all([direct.close(), viaGateway.close(), viaProxy.close()])
  cleanup()
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  cleanup()
  process.exit(1)
})
