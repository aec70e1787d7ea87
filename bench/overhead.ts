/**
 * npm run bench:overhead — what a gateway adds to every call, side by side in one run:
 * direct calls to a local OpenAI-compatible upstream (bench/fixed-upstream.ts), the
 * minimal node:http proxy (bench/minimal-proxy.ts, the floor for any Node gateway),
 * Portkey's gateway 1.15.2 (bench/portkey.ts), and Quorum (compiled, node:cluster
 * workers) with the ledger on: without a key, and with a budgeted key on SQLite and on
 * PostgreSQL (a local server the bench starts).
 *
 * Each round runs every phase on every target in turn (so that a busy moment of the
 * machine falls on all of them), and the report gives the median over rounds:
 * - latency at 1 connection (p50, p99) and at 32 connections (p99), 20 ms upstream;
 * - throughput at 64 connections with a 0 ms upstream, and the CPU each request cost the
 *   target's whole process tree (from /proc);
 * - time to first token of a stream, 1 connection;
 * then each target's memory after the load, idle CPU, start-up to healthy, and a keyed
 * PostgreSQL run at a fixed rate (open loop: latency from each request's due time).
 * The load generator runs in this process, on the same 2 cores as the targets: its CPU is
 * reported too, and every target pays for it alike.
 *
 * Options (env): ROUNDS=3 WORKERS=2 LATENCY_MS=20 ONE=150 (requests at 1 connection)
 * SECONDS=4 (32- and 64-connection phases) STREAMS=100 PG_RATE=300 PG_SECONDS=10
 * TARGETS=proxy,portkey,quorum,quorum-key,quorum-key-pg (a subset) SOAK=0 (seconds of a
 * memory soak on Quorum after the rounds: worker RSS sampled every 30 s)
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../test/support/free-port"
import { startPostgres } from "../test/support/postgres"
import { closedLoop, median, openLoop, percentile, type Sample, type Target } from "./load"
import { PORTKEY_VERSION, portkeyHeaders, startPortkey } from "./portkey"
import { cpuSeconds, healthyAfter, rssMb, startNode, stopAll, tree, treeRss } from "./processes"

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback)
const ROUNDS = env("ROUNDS", 3)
const WORKERS = env("WORKERS", 2)
const LATENCY_MS = env("LATENCY_MS", 20)
const ONE = env("ONE", 150)
const SECONDS = env("SECONDS", 4)
const STREAMS = env("STREAMS", 100)
const PG_RATE = env("PG_RATE", 300)
const PG_SECONDS = env("PG_SECONDS", 10)
const SOAK = env("SOAK", 0)
const ALL = ["proxy", "portkey", "quorum", "quorum-key", "quorum-key-pg"]
const WANTED = new Set((process.env.TARGETS ?? ALL.join(",")).split(","))
const ADMIN = "bench-admin-key"
const ROOT = join(import.meta.dirname, "..")

/** A gateway under test: its process tree, and how to reach it in front of each upstream. */
interface Gateway {
  readonly name: string
  readonly pid: number | undefined
  readonly slow: Target
  readonly fast: Target
  readonly startupMs: number | undefined
}

const startUpstream = async (latencyMs: number) => {
  const port = await freePort()
  await startNode(["--import", "tsx", "bench/fixed-upstream.ts"], { PORT: String(port), LATENCY_MS: String(latencyMs) }, /^\d+\n/m, ROOT)
  return `http://127.0.0.1:${port}`
}

const startProxy = async (upstream: string) => {
  const port = await freePort()
  const { child } = await startNode(["--import", "tsx", "bench/minimal-proxy.ts"], { PORT: String(port), UPSTREAM_PORT: new URL(upstream).port }, /^\d+\n/m, ROOT)
  return { url: `http://127.0.0.1:${port}`, pid: child.pid! }
}

const quorumConfig = (slow: string, fast: string, keys: boolean) => [
  "models:",
  `  - { id: bench, provider: vllm, base_url: "${slow}/v1", price: { input: 0.15, output: 0.6 } }`,
  `  - { id: bench0, provider: vllm, base_url: "${fast}/v1", price: { input: 0.15, output: 0.6 } }`,
  `auth: { mode: ${keys ? "keys" : "open"} }`
].join("\n")

const startQuorum = async (name: string, slow: string, fast: string, keys: boolean, databaseUrl?: string): Promise<Gateway> => {
  const dir = mkdtempSync(join(tmpdir(), "quorum-bench-"))
  writeFileSync(join(dir, "bench.yaml"), quorumConfig(slow, fast, keys))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  const { child } = await startNode(["dist/main.js", "--config", join(dir, "bench.yaml")], {
    PORT: String(port),
    QUORUM_WORKERS: String(WORKERS),
    QUORUM_ADMIN_KEY: ADMIN,
    QUORUM_DATA_DIR: dir,
    ...(databaseUrl === undefined ? {} : { QUORUM_DATABASE_URL: databaseUrl })
  }, /listening/, ROOT)
  const startupMs = await healthyAfter(`${url}/health`, t0)
  let headers: Record<string, string> = {}
  if (keys) {
    // Every limit on, none reached: each request runs the whole admission.
    const created = await fetch(`${url}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "bench", budget_usd: 1_000_000, rpm: 100_000_000, tpm: 1_000_000_000 })
    }).then((r) => r.json() as Promise<{ key: string }>)
    headers = { authorization: `Bearer ${created.key}` }
  }
  return { name, pid: child.pid!, slow: { name, url, headers, model: "bench" }, fast: { name, url, headers, model: "bench0" }, startupMs }
}

interface RoundFigures {
  one50: number
  one99: number
  many99: number
  throughput: number
  cpuPerRequestUs: number
  ttft50: number
}

const checkClean = (target: string, phase: string, sample: Sample) => {
  if (sample.errors > 0) throw new Error(`${target}, ${phase}: ${sample.errors} errors, first: ${sample.firstError}`)
}

const round = async (gateway: Gateway): Promise<RoundFigures> => {
  const one = await closedLoop(gateway.slow, { connections: 1, requests: ONE })
  checkClean(gateway.name, "1 connection", one)
  const many = await closedLoop(gateway.slow, { connections: 32, seconds: SECONDS })
  checkClean(gateway.name, "32 connections", many)
  const cpuBefore = gateway.pid === undefined ? 0 : cpuSeconds(gateway.pid)
  const fast = await closedLoop(gateway.fast, { connections: 64, seconds: SECONDS })
  checkClean(gateway.name, "64 connections", fast)
  const cpu = gateway.pid === undefined ? 0 : cpuSeconds(gateway.pid) - cpuBefore
  const streams = await closedLoop(gateway.slow, { connections: 1, requests: STREAMS, stream: true })
  checkClean(gateway.name, "streams", streams)
  return {
    one50: percentile(one.latencies, 50),
    one99: percentile(one.latencies, 99),
    many99: percentile(many.latencies, 99),
    throughput: (fast.latencies.length / fast.elapsedMs) * 1000,
    cpuPerRequestUs: (cpu / fast.latencies.length) * 1e6,
    ttft50: percentile(streams.latencies, 50)
  }
}

const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "—")

const main = async () => {
  execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: ROOT, stdio: "inherit" })
  const slow = await startUpstream(LATENCY_MS)
  const fast = await startUpstream(0)
  const postgres = WANTED.has("quorum-key-pg") ? await startPostgres() : undefined

  const gateways: Array<Gateway> = [{ name: "direct", pid: undefined, slow: { name: "direct", url: slow, headers: {}, model: "bench" }, fast: { name: "direct", url: fast, headers: {}, model: "bench" }, startupMs: undefined }]
  if (WANTED.has("proxy")) {
    const [p20, p0] = [await startProxy(slow), await startProxy(fast)]
    // Two processes, one per upstream: its CPU is read on the one that takes the 0 ms load.
    gateways.push({ name: "minimal proxy", pid: p0.pid, slow: { name: "proxy", url: p20.url, headers: {}, model: "bench" }, fast: { name: "proxy", url: p0.url, headers: {}, model: "bench" }, startupMs: undefined })
  }
  if (WANTED.has("portkey")) {
    const port = await freePort()
    const started = await startPortkey(port)
    const url = `http://127.0.0.1:${port}`
    const startupMs = await healthyAfter(url, started.t0)
    gateways.push({ name: `Portkey ${PORTKEY_VERSION}`, pid: started.child.pid!, slow: { name: "portkey", url, headers: portkeyHeaders(slow), model: "bench" }, fast: { name: "portkey", url, headers: portkeyHeaders(fast), model: "bench" }, startupMs })
  }
  if (WANTED.has("quorum")) gateways.push(await startQuorum("Quorum, ledger, no key", slow, fast, false))
  if (WANTED.has("quorum-key")) gateways.push(await startQuorum("Quorum, budgeted key, SQLite", slow, fast, true))
  if (WANTED.has("quorum-key-pg")) gateways.push(await startQuorum("Quorum, budgeted key, PostgreSQL", slow, fast, true, postgres!.database("bench_overhead")))

  console.log(`# bench:overhead  ${ROUNDS} rounds  upstream ${LATENCY_MS} ms (and 0 ms for throughput)  Quorum workers=${WORKERS}`)
  console.log(`node ${process.version}, ${cpus().length} cores; the load generator runs in the bench process on the same cores`)

  // Warm-up: JIT, connection pools, prepared statements.
  for (const g of gateways) {
    await closedLoop(g.fast, { connections: 16, seconds: 1.5 })
    await closedLoop(g.slow, { connections: 1, requests: 20, stream: true })
  }

  const loadCpu0 = process.cpuUsage()
  const figures = new Map<string, Array<RoundFigures>>(gateways.map((g) => [g.name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const g of gateways) figures.get(g.name)!.push(await round(g))
    console.log(`round ${r + 1} of ${ROUNDS} done`)
  }
  const loadCpu = process.cpuUsage(loadCpu0)

  const med = (name: string, pick: (r: RoundFigures) => number) => median(figures.get(name)!.map(pick))
  const d = (pick: (r: RoundFigures) => number) => med("direct", pick)
  console.log("\n| target | 1 conn p50 / p99 (added) | 32 conn p99 (added) | 64 conn, 0 ms: req/s | CPU µs / request | stream TTFT p50 (added) |")
  console.log("|---|---|---|---|---|---|")
  for (const g of gateways) {
    const direct = g.name === "direct"
    const add = (pick: (r: RoundFigures) => number) => (direct ? f(med(g.name, pick)) : `+${f(med(g.name, pick) - d(pick))}`)
    console.log(`| ${g.name} | ${add((r) => r.one50)} / ${add((r) => r.one99)} ms | ${add((r) => r.many99)} ms | ${f(med(g.name, (r) => r.throughput), 0)} | ${direct ? "—" : f(med(g.name, (r) => r.cpuPerRequestUs), 0)} | ${add((r) => r.ttft50)} ms |`)
  }
  console.log(`\nload generator CPU over the rounds: ${f((loadCpu.user + loadCpu.system) / 1e6, 1)} s`)

  // Memory right after the load; V8 gives back a heap grown under load only once
  // allocation has been low a while (its memory reducer, whose collections are CPU too).
  const afterLoad = new Map(gateways.filter((g) => g.pid !== undefined).map((g) => [g.name, treeRss(g.pid!)]))
  await new Promise((r) => setTimeout(r, 25_000))
  const settledRss = new Map(gateways.filter((g) => g.pid !== undefined).map((g) => [g.name, treeRss(g.pid!)]))
  // What a gateway burns with nothing to do, once that has settled.
  const idle: Record<string, number> = {}
  const before = new Map(gateways.filter((g) => g.pid !== undefined).map((g) => [g.name, cpuSeconds(g.pid!)]))
  await new Promise((r) => setTimeout(r, 5_000))
  for (const g of gateways) if (g.pid !== undefined) idle[g.name] = ((cpuSeconds(g.pid) - before.get(g.name)!) / 5) * 100
  console.log("\n| target | RSS of each process after the load, MB | whole tree, MB | the same 25 s later | idle CPU over the next 5 s | start-up to healthy |")
  console.log("|---|---|---|---|---|---|")
  for (const g of gateways) {
    if (g.pid === undefined) continue
    const rss = afterLoad.get(g.name)!
    const later = settledRss.get(g.name)!
    console.log(`| ${g.name} | ${rss.each.map((m) => f(m, 0)).join(", ")} | ${f(rss.total, 0)} | ${later.each.map((m) => f(m, 0)).join(", ")} | ${f(idle[g.name]!, 1)} % | ${g.startupMs === undefined ? "—" : `${f(g.startupMs / 1000, 2)} s`} |`)
  }

  // A budgeted key on PostgreSQL at a fixed rate: each admission is a round trip to the database.
  const pg = gateways.find((g) => g.name.includes("PostgreSQL"))
  let pgAdded = NaN
  if (pg !== undefined) {
    const direct = await openLoop(gateways[0]!.slow, { rate: PG_RATE, seconds: PG_SECONDS })
    const keyed = await openLoop(pg.slow, { rate: PG_RATE, seconds: PG_SECONDS })
    checkClean(pg.name, "open loop", keyed)
    pgAdded = median(keyed.latencies) - median(direct.latencies)
    console.log(`\nbudgeted key on PostgreSQL at ${PG_RATE} req/s for ${PG_SECONDS} s (open loop): median ${f(median(keyed.latencies))} ms against ${f(median(direct.latencies))} ms direct, added ${f(pgAdded)} ms; p99 ${f(percentile(keyed.latencies, 99))} ms`)
  }

  const quorum = gateways.find((g) => g.name.startsWith("Quorum, ledger"))
  const proxy = gateways.find((g) => g.name === "minimal proxy")
  const portkey = gateways.find((g) => g.name.startsWith("Portkey"))
  const keyed = gateways.find((g) => g.name.includes("SQLite"))
  if (quorum !== undefined) {
    const q = (pick: (r: RoundFigures) => number) => med(quorum.name, pick)
    const goals: Array<[string, number, string, boolean]> = []
    const goal = (what: string, value: number, target: string, ok: boolean) => goals.push([what, value, target, ok])
    if (proxy !== undefined) {
      const ratio = q((r) => r.cpuPerRequestUs) / med(proxy.name, (r) => r.cpuPerRequestUs)
      goal("CPU per request, ledger, no key ÷ minimal proxy", ratio, "≤ 2", ratio <= 2)
      if (keyed !== undefined) {
        const k = med(keyed.name, (r) => r.cpuPerRequestUs) / med(proxy.name, (r) => r.cpuPerRequestUs)
        goal("CPU per request, budgeted key on SQLite ÷ minimal proxy", k, "≤ 3", k <= 3)
      }
    }
    goal("added p50 at 1 connection, ms", q((r) => r.one50) - d((r) => r.one50), "≤ 0.5", q((r) => r.one50) - d((r) => r.one50) <= 0.5)
    goal("added p99 at 1 connection, ms", q((r) => r.one99) - d((r) => r.one99), "≤ 2", q((r) => r.one99) - d((r) => r.one99) <= 2)
    const added32 = q((r) => r.many99) - d((r) => r.many99)
    goal("added p99 at 32 connections, ms", added32, "≤ 5", added32 <= 5)
    if (portkey !== undefined) {
      const theirs = med(portkey.name, (r) => r.many99) - d((r) => r.many99)
      goal("added p99 at 32 connections ÷ Portkey's", added32 / theirs, "≤ 0.5", added32 / theirs <= 0.5)
      const speed = q((r) => r.throughput) / med(portkey.name, (r) => r.throughput)
      goal("throughput at 64 connections ÷ Portkey's", speed, "≥ 3", speed >= 3)
    }
    const ttft = q((r) => r.ttft50) - d((r) => r.ttft50)
    goal("added time to first token, ms", ttft, "≤ 1", ttft <= 1)
    goal("start-up to healthy, s", quorum.startupMs! / 1000, "≤ 1.5", quorum.startupMs! <= 1500)
    goal("idle CPU, %", idle[quorum.name]!, "~0 (≤ 0.5)", idle[quorum.name]! <= 0.5)
    // "Each worker": the keyed targets too, whose budgets load a tokenizer (BENCHMARKS.md, twelfth session).
    for (const g of gateways.filter((g) => g.name.startsWith("Quorum"))) {
      const which = g === quorum ? "" : ` (${g.name.replace("Quorum, ", "")})`
      const workerRss = Math.max(...afterLoad.get(g.name)!.each.slice(0, WORKERS))
      goal(`largest worker RSS right after the load${which}, MB`, workerRss, "≤ 150", workerRss <= 150)
      const settled = Math.max(...settledRss.get(g.name)!.each.slice(0, WORKERS))
      goal(`largest worker RSS 25 s after the load${which}, MB`, settled, "≤ 150", settled <= 150)
    }
    if (pg !== undefined) goal(`budgeted key on PostgreSQL at ${PG_RATE}/s, median added ms`, pgAdded, "< 5", pgAdded < 5)
    console.log("\n| goal (issue 10) | measured | target | |\n|---|---|---|---|")
    for (const [what, value, target, ok] of goals) console.log(`| ${what} | ${f(value)} | ${target} | ${ok ? "met" : "NOT met"} |`)
  }

  if (SOAK > 0 && quorum !== undefined) {
    console.log(`\nsoak: Quorum (ledger, no key) at 500 req/s for ${SOAK} s; largest worker RSS, MB:`)
    const samples: Array<string> = []
    for (let t = 0; t < SOAK; t += 30) {
      await openLoop(quorum.slow, { rate: 500, seconds: Math.min(30, SOAK - t) })
      samples.push(f(Math.max(...tree(quorum.pid!).slice(1).map(rssMb)), 0))
    }
    console.log(samples.join(" → "))
  }

  stopAll()
  await postgres?.stop()
  process.exit(0)
}

main().catch((error) => {
  console.error(error)
  stopAll()
  process.exit(1)
})
