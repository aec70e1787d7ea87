/** `npm start` as a user runs it: npm itself, or the compiled entry it runs, in its own process group. */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { freePort } from "./support/free-port"
import { eventually } from "./support/gateway"
// Without provider keys, so that the demo fleet is what starts.
import { cleanEnv, GATEWAY_ENTRY, PACKAGE_ROOT } from "./support/spawned"

interface Started {
  readonly child: ChildProcess
  readonly output: { text: string }
  readonly exited: Promise<number | null>
}

let started: Started | undefined
afterEach(() => {
  // Whatever a failed test left behind: the whole group (npm, primary, workers).
  if (started?.child.pid !== undefined) {
    try {
      process.kill(-started.child.pid, "SIGKILL")
    } catch {
      // The group is gone already.
    }
  }
  started = undefined
})

const launch = (command: string, args: Array<string>, env: Record<string, string>): Started => {
  const output = { text: "" }
  const child = spawn(command, args, { cwd: PACKAGE_ROOT, env: cleanEnv(env), detached: true })
  child.stdout!.on("data", (d: Buffer) => (output.text += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (output.text += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  started = { child, output, exited }
  return started
}

/** The compiled entry `npm start` runs, as the primary itself. */
const run = (args: Array<string>, env: Record<string, string>) => launch(process.execPath, [GATEWAY_ENTRY, ...args], env)

/** `npm start` itself: npm, then node in its place. */
const npmStart = (env: Record<string, string>) => launch("npm", ["start"], env)

const dataDir = () => mkdtempSync(join(tmpdir(), "quorum-data-"))

/** Resolves once the banner is out, with the worker pids it names; fails if the process exits first. */
const listening = async ({ output, exited }: Started): Promise<Array<number>> => {
  const banner = /listening on \S+ with \d+ workers? \(pids? ([\d, ]+)\)/
  const exitedEarly = exited.then((code) => {
    throw new Error(`exited with ${code} before listening:\n${output.text}`)
  })
  // Generous: under a full parallel test run on two cores, start-up takes a while.
  const found = eventually(() => banner.test(output.text), 90_000).then((ok) => {
    if (!ok) throw new Error(`not listening after 90 s:\n${output.text}`)
    return banner.exec(output.text)![1]!.split(", ").map(Number)
  })
  return Promise.race([found, exitedEarly])
}

/** A process's state, parent and group, from /proc; undefined once it is gone. */
const statOf = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state: state!, ppid: Number(ppid), pgrp: Number(pgrp) }
  } catch {
    return undefined
  }
}

/** Running: an exited process not yet reaped (a zombie) is not. */
const alive = (pid: number): boolean => {
  const stat = statOf(pid)
  return stat !== undefined && stat.state !== "Z"
}

/** Whether any process of the group still runs (npm, the primary, a worker). */
const groupAlive = (pgid: number): boolean =>
  readdirSync("/proc").some((name) => /^\d+$/.test(name) && alive(Number(name)) && statOf(Number(name))?.pgrp === pgid)

const parentOf = (pid: number): number => statOf(pid)!.ppid

/** Polls until none of `pids` runs, up to a generous deadline. */
const allGone = (pids: ReadonlyArray<number>) => eventually(() => !pids.some(alive), 30_000)

/** A server that holds a loopback port, as another program would. */
const occupy = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => resolve(server))
  })

const chat = async (port: number) => {
  const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    headers: { connection: "close" },
    body: JSON.stringify({ model: "sim-fast", messages: [{ role: "user", content: "capital of France?" }] }),
    signal: AbortSignal.timeout(10_000)
  })
  expect(response.status).toBe(200)
  return (await response.json()) as { choices: Array<{ message: { content: string } }> }
}

describe("npm start", () => {
  it("serves the simulated demo fleet on two workers with no config and no keys, and says so", async () => {
    const port = await freePort()
    const gateway = npmStart({ PORT: String(port), QUORUM_WORKERS: "2", QUORUM_DATA_DIR: dataDir() })
    const workers = await listening(gateway)
    const { output } = gateway
    expect(workers).toHaveLength(2)
    // The primary's default for its workers' young generation (src/app/worker-flags.ts).
    for (const pid of workers) expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")).toContain("--max-semi-space-size=8")
    expect(output.text).toContain(`http://127.0.0.1:${port} with 2 workers`)
    expect(output.text).toContain("DEMO FLEET")
    expect(output.text).toContain("open (virtual keys optional)")
    // At once, on fresh connections, so that both workers answer: a worker must not accept
    // connections before its routes are ready (such a request would hang).
    const answers = await Promise.all(Array.from({ length: 6 }, () => chat(port)))
    for (const body of answers) expect(body.choices[0]!.message.content).toContain("Paris")
  }, 120_000)

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`stops every worker on ${signal} to npm`, async () => {
      const port = await freePort()
      const gateway = npmStart({ PORT: String(port), QUORUM_WORKERS: "2", QUORUM_DATA_DIR: dataDir() })
      const workers = await listening(gateway)
      const primary = parentOf(workers[0]!)
      expect(parentOf(workers[1]!)).toBe(primary)
      gateway.child.kill(signal)
      await gateway.exited
      expect(await allGone([primary, ...workers]), gateway.output.text).toBe(true)
      expect(groupAlive(gateway.child.pid!)).toBe(false)
    }, 120_000)
  }

  it("stops every worker on SIGTERM to the primary", async () => {
    const gateway = run([], { PORT: String(await freePort()), QUORUM_WORKERS: "2", QUORUM_DATA_DIR: dataDir() })
    const workers = await listening(gateway)
    gateway.child.kill("SIGTERM")
    expect(await gateway.exited).toBe(0)
    expect(await allGone(workers), gateway.output.text).toBe(true)
  }, 120_000)

  it("stops a worker whose primary was killed", async () => {
    const gateway = run([], { PORT: String(await freePort()), QUORUM_WORKERS: "2", QUORUM_DATA_DIR: dataDir() })
    const workers = await listening(gateway)
    gateway.child.kill("SIGKILL")
    await gateway.exited
    expect(await allGone(workers), gateway.output.text).toBe(true)
  }, 120_000)

  for (const workers of ["1", "2"]) {
    it(`says the port is in use and exits, with ${workers} worker(s)`, async () => {
      const port = await freePort()
      const other = await occupy(port)
      try {
        const gateway = run([], { PORT: String(port), QUORUM_WORKERS: workers, QUORUM_DATA_DIR: dataDir() })
        expect(await gateway.exited, gateway.output.text).toBe(1)
        const said = `quorum: port ${port} is in use (127.0.0.1:${port}`
        expect(gateway.output.text).toContain(said)
        // Once, by the primary, however many workers hit it.
        expect(gateway.output.text.split(said)).toHaveLength(2)
        expect(gateway.output.text).not.toContain("listening")
        // Nothing of the group is left running.
        expect(await eventually(() => !groupAlive(gateway.child.pid!), 30_000)).toBe(true)
      } finally {
        other.close()
      }
    }, 60_000)
  }

  for (const flag of ["--help", "-h"]) {
    it(`prints usage for ${flag} and exits without serving`, async () => {
      const port = await freePort()
      const gateway = run([flag], { PORT: String(port), QUORUM_DATA_DIR: dataDir() })
      expect(await gateway.exited).toBe(0)
      const text = gateway.output.text
      for (const expected of ["Usage:", "--config <path>", "-h, --help", "PORT", "QUORUM_WORKERS", "QUORUM_EVALUATORS_DIR", "npm install && npm start", "npm install && npm test"]) {
        expect(text).toContain(expected)
      }
      expect(text).not.toContain("listening")
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
    }, 40_000)
  }

  it("refuses an unknown flag, naming it", async () => {
    const gateway = run(["--prot", "9000"], { PORT: String(await freePort()) })
    expect(await gateway.exited).toBe(2)
    expect(gateway.output.text).toContain("quorum: unknown option --prot")
    expect(gateway.output.text).not.toContain("listening")
  }, 40_000)

  it("stops with the file, the key and what was expected when the config is wrong", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-"))
    const file = join(dir, "bad.yaml")
    writeFileSync(file, "models:\n  - id: a\n    provider: openia\n")
    const { output, exited } = run(["--config", file], { PORT: String(await freePort()) })
    expect(await exited).toBe(1)
    expect(output.text).toContain(`${file}: models[0].provider:`)
    expect(output.text).toContain("\"openai\"")
  }, 40_000)

  it("runs the README's TypeScript evaluator from the evaluators folder", async () => {
    const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("## Writing an evaluator"))
    const example = /```ts\n([\s\S]*?)```/.exec(section)![1]!
    const dir = mkdtempSync(join(tmpdir(), "quorum-evaluators-"))
    writeFileSync(join(dir, "brevity.ts"), example)
    const port = await freePort()
    const gateway = run([], { PORT: String(port), QUORUM_WORKERS: "1", QUORUM_DATA_DIR: dataDir(), QUORUM_EVALUATORS_DIR: dir })
    await listening(gateway)
    const listed = (await (await fetch(`http://127.0.0.1:${port}/evaluators`)).json()) as { data: Array<{ name: string; description: string }> }
    expect(listed.data.map((e) => e.name).sort()).toEqual(["answer_match", "brevity", "consistency", "json_schema"])
    const response = await fetch(`http://127.0.0.1:${port}/v1/consensus`, {
      method: "POST",
      body: JSON.stringify({ prompt: "What is 17 * 23?", models: ["sim-fast", "sim-smart"], evaluators: [{ name: "brevity", options: { scale: 10 } }] })
    })
    const body = (await response.json()) as { candidates: Array<{ status: string; content: string; scores: Record<string, number> }> }
    expect(response.status, JSON.stringify(body)).toBe(200)
    const answered = body.candidates.filter((c) => c.status === "ok")
    expect(answered.length).toBeGreaterThan(0)
    for (const c of answered) expect(c.scores.brevity).toBeCloseTo(1 / (1 + c.content.length / 10), 6)
  }, 120_000)
})
