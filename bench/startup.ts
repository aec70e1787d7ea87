/**
 * npm run bench:startup — what `npm start` costs before the first request: the time from
 * spawning `npm start` to the first 200 from GET /health, and the resident memory of each
 * process it leaves running (npm, the primary, the workers), then whether SIGTERM to npm
 * stops them all.
 *
 * Each round starts `npm start` with the demo fleet (no config, no provider key), a fresh
 * data folder and its own port, sends a few requests so that every worker has served,
 * reads VmRSS from /proc, sends SIGTERM to npm and waits for every process to be gone.
 *
 * Options (env): ROUNDS=3 WORKERS=2 REQUESTS=50
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "../test/support/free-port"
import { cleanEnv } from "../test/support/spawned"

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const WORKERS = Number(process.env.WORKERS ?? 2)
const REQUESTS = Number(process.env.REQUESTS ?? 50)

interface Proc {
  readonly pid: number
  readonly ppid: number
  readonly command: string
  readonly rssMb: number
}

const readProc = (pid: number): Proc | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((s) => s !== "").join(" ")
    return { pid, ppid, command, rssMb: rssKb / 1024 }
  } catch {
    return undefined
  }
}

/** The process and all its descendants, from /proc. */
const tree = (root: number): Array<Proc> => {
  const all = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map((n) => readProc(Number(n))).filter((p) => p !== undefined)
  const found: Array<Proc> = []
  const visit = (pid: number) => {
    const self = all.find((p) => p.pid === pid)
    if (self !== undefined) found.push(self)
    for (const child of all.filter((p) => p.ppid === pid)) visit(child.pid)
  }
  visit(root)
  return found
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const untilGone = async (pids: ReadonlyArray<number>, ms: number) => {
  const until = Date.now() + ms
  while (Date.now() < until && pids.some(alive)) await new Promise((r) => setTimeout(r, 20))
  return pids.filter(alive)
}

const round = async () => {
  const port = await freePort()
  const env = cleanEnv({ PORT: String(port), QUORUM_WORKERS: String(WORKERS), QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-bench-")) })
  const t0 = performance.now()
  const npm = spawn("npm", ["start", "--silent"], { env, stdio: "ignore" })
  let healthyMs = Number.NaN
  while (Number.isNaN(healthyMs)) {
    if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}`)
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)
    if (ok) healthyMs = performance.now() - t0
    else await new Promise((r) => setTimeout(r, 20))
  }
  for (let i = 0; i < REQUESTS; i++) {
    const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: "POST",
      headers: { connection: "close" },
      body: JSON.stringify({ model: "sim-fast", messages: [{ role: "user", content: "capital of France?" }] })
    })
    await response.arrayBuffer()
  }
  const procs = tree(npm.pid!)
  npm.kill("SIGTERM")
  const left = await untilGone(procs.map((p) => p.pid), 15_000)
  for (const pid of left) process.kill(pid, "SIGKILL")
  return { healthyMs, procs, left }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  console.log(`# bench:startup  npm start, demo fleet, QUORUM_WORKERS=${WORKERS}, ${ROUNDS} rounds, RSS after ${REQUESTS} requests`)
  const times: Array<number> = []
  const totals: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    const { healthyMs, procs, left } = await round()
    times.push(healthyMs)
    const nodes = procs.slice(1) // all but npm itself
    const total = nodes.reduce((sum, p) => sum + p.rssMb, 0)
    totals.push(total)
    console.log(`\nround ${i + 1}: healthy after ${(healthyMs / 1000).toFixed(2)} s; node processes ${total.toFixed(0)} MB RSS in all`)
    for (const p of procs) console.log(`  ${String(p.pid).padStart(7)}  ${p.rssMb.toFixed(0).padStart(5)} MB  ${p.command.slice(0, 90)}`)
    console.log(left.length === 0 ? "  SIGTERM to npm: every process exited" : `  SIGTERM to npm: ${left.length} process(es) still running after 15 s: ${left.join(", ")} (killed)`)
  }
  console.log(`\nmedian: healthy after ${(median(times) / 1000).toFixed(2)} s; node processes ${median(totals).toFixed(0)} MB RSS in all`)
}

await main()
