/**
 * npm run bench:floor — what a chat completion costs a Node gateway in CPU before it does
 * anything of its own, piece by piece, side by side in one run: the minimal proxy
 * (bench/minimal-proxy.ts, bytes through), then servers (bench/floor-server.ts, one per
 * variant) that each add one piece: JSON parsed and re-serialized with undici's Pool asked
 * by path; the same through undici's dispatch; with Quorum's abort signal and deadline
 * timer; run by an Effect fiber; Quorum's transport (postJson) in a fiber; undici's
 * top-level request(url) and an Agent, with and without an AbortController; Quorum's
 * checks of the request and the answer (no Effect); Quorum's transport and body reader in
 * a fiber (no checks); and all of it (what Quorum's hot route does before routing,
 * metering and the ledger). Each serves the fixed upstream's 0 ms answers to 64
 * connections, bundled by esbuild as Quorum's dist/ is; CPU per request is read from /proc. It is the reference under Quorum's
 * figures in bench:overhead, and the measurement behind choices of
 * providers/http/transport.ts (a Pool asked by path; an EventEmitter as abort signal).
 *
 * Options (env): SECONDS=6 ROUNDS=3
 */
import { build } from "esbuild"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../test/support/free-port"
import { closedLoop, median } from "./load"
import { cpuSeconds, startNode, stopAll } from "./processes"

const SECONDS = Number(process.env.SECONDS ?? 6)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const ROOT = join(import.meta.dirname, "..")
const MODES = ["pool", "pool+dispatch", "pool+signal", "pool in a fiber", "transport in a fiber", "agent", "agent+signal", "pool+checks", "effect, no checks", "effect"] as const

const start = async (script: string, env: Record<string, string>) => {
  const port = await freePort()
  const { child } = await startNode(script.endsWith(".mjs") ? [script] : ["--import", "tsx", script], { PORT: String(port), ...env }, /^\d+\n/m, ROOT)
  return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? 0 }
}

/** The servers run bundled, as `npm start` runs Quorum: under tsx's loader the same code costs more CPU. */
const bundled = async (script: string): Promise<string> => {
  const outfile = join(mkdtempSync(join(tmpdir(), "quorum-floor-")), "server.mjs")
  await build({
    entryPoints: [join(ROOT, script)],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile,
    logLevel: "error",
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" }
  })
  return outfile
}

const measure = async (target: { url: string; pid: number }) => {
  const at = { name: "", url: target.url, headers: {}, model: "bench" }
  await closedLoop(at, { connections: 64, seconds: 1 })
  const before = cpuSeconds(target.pid)
  const sample = await closedLoop(at, { connections: 64, seconds: SECONDS })
  if (sample.errors > 0) throw new Error(`${target.url}: ${sample.errors} errors, first: ${sample.firstError}`)
  return { cpuUs: ((cpuSeconds(target.pid) - before) / sample.latencies.length) * 1e6, rps: (sample.latencies.length / sample.elapsedMs) * 1000 }
}

const main = async () => {
  const upstream = await start("bench/fixed-upstream.ts", { LATENCY_MS: "0" })
  const proxy = await bundled("bench/minimal-proxy.ts")
  const server = await bundled("bench/floor-server.ts")
  const targets: Array<[string, { url: string; pid: number }]> = [
    ["minimal proxy (bytes through)", await start(proxy, { UPSTREAM_PORT: new URL(upstream.url).port })],
    ...await Promise.all(MODES.map(async (mode) => [mode, await start(server, { MODE: mode, UPSTREAM: upstream.url })] as [string, { url: string; pid: number }]))
  ]
  const figures = new Map<string, Array<{ cpuUs: number; rps: number }>>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, target] of targets) figures.set(name, [...(figures.get(name) ?? []), await measure(target)])
  }
  console.log(`# bench:floor  ${ROUNDS} rounds x ${SECONDS} s, 64 connections, 0 ms upstream; node ${process.version}\n`)
  console.log("| server | CPU µs / request (median) | req/s (median) |\n|---|---|---|")
  for (const [name, runs] of figures) console.log(`| ${name} | ${median(runs.map((r) => r.cpuUs)).toFixed(0)} | ${median(runs.map((r) => r.rps)).toFixed(0)} |`)
}

main().then(() => {
  stopAll()
  process.exit(0)
}, (error) => {
  console.error(error)
  stopAll()
  process.exit(1)
})
