/** `npm start` as a user runs it: the real entry point, in its own process. */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { freePort } from "./support/free-port"
import { eventually } from "./support/gateway"
// Without provider keys, so that the demo fleet is what starts.
import { cleanEnv } from "./support/spawned"


let child: ChildProcess | undefined
afterEach(() => {
  if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL")
  child = undefined
})

const run = (args: Array<string>, env: Record<string, string>) => {
  const output = { text: "" }
  child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", ...args], { env: cleanEnv(env), detached: true })
  child.stdout!.on("data", (d: Buffer) => (output.text += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (output.text += d.toString()))
  const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)))
  return { output, exited }
}

describe("npm start", () => {
  it("serves the simulated demo fleet on two workers with no config and no keys, and says so", async () => {
    const port = await freePort()
    const { output } = run([], { PORT: String(port), QUORUM_WORKERS: "2", QUORUM_DATA_DIR: mkdtempSync(join(tmpdir(), "quorum-data-")) })
    // Generous: under a full parallel test run on two cores, two workers compiling TypeScript take a while.
    expect(await eventually(() => output.text.includes("listening"), 90_000), output.text).toBe(true)
    expect(output.text).toContain(`http://127.0.0.1:${port} with 2 workers`)
    expect(output.text).toContain("DEMO FLEET")
    expect(output.text).toContain("open (virtual keys optional)")
    // At once, on fresh connections, so that both workers answer: a worker must not accept
    // connections before its routes are ready (such a request would hang).
    const answers = await Promise.all(Array.from({ length: 6 }, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: "POST",
        headers: { connection: "close" },
        body: JSON.stringify({ model: "sim-fast", messages: [{ role: "user", content: "capital of France?" }] }),
        signal: AbortSignal.timeout(10_000)
      })
      expect(response.status).toBe(200)
      return (await response.json()) as { choices: Array<{ message: { content: string } }> }
    }))
    for (const body of answers) expect(body.choices[0]!.message.content).toContain("Paris")
  }, 120_000)

  it("stops with the file, the key and what was expected when the config is wrong", async () => {
    const dir = mkdtempSync(join(tmpdir(), "quorum-"))
    const file = join(dir, "bad.yaml")
    writeFileSync(file, "models:\n  - id: a\n    provider: openia\n")
    const { output, exited } = run(["--config", file], { PORT: String(await freePort()) })
    expect(await exited).toBe(1)
    expect(output.text).toContain(`${file}: models[0].provider:`)
    expect(output.text).toContain("\"openai\"")
  }, 40_000)
})
