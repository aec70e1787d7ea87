/** A gateway in its own process, started as `npm start` does, for tests that need processes: workers, replicas, kill -9. */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { freePort } from "./free-port"

/** What `npm start` runs: the compiled entry, built once per test run (test/support/build.ts). */
export const GATEWAY_ENTRY = fileURLToPath(new URL("../../dist/main.js", import.meta.url))

/** The package root, where `npm start` runs. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../..", import.meta.url))

/** An empty folder of user evaluators: what a user put in evaluators/ must not change a test. */
const NO_USER_EVALUATORS = mkdtempSync(join(tmpdir(), "quorum-no-evaluators-"))

export interface SpawnedGateway {
  readonly url: string
  readonly pid: number
  readonly output: { text: string }
  /** SIGKILL to the whole process group: the primary and its workers, no chance to flush. */
  kill(): Promise<void>
}

/** The environment without provider keys, Quorum settings of the caller's own, or the user's evaluators. */
export const cleanEnv = (extra: Record<string, string>) => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/_API_KEY$|^QUORUM_/.test(key)) env[key] = value
  }
  return { ...env, QUORUM_EVALUATORS_DIR: NO_USER_EVALUATORS, ...extra }
}

export const spawnGateway = async (configPath: string, env: Record<string, string>): Promise<SpawnedGateway> => {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, [GATEWAY_ENTRY, "--config", configPath], {
    env: cleanEnv({ PORT: String(port), QUORUM_WORKERS: "1", ...env }),
    detached: true
  })
  const output = { text: "" }
  child.stdout!.on("data", (d: Buffer) => (output.text += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (output.text += d.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, "SIGKILL")
      await exited
    }
  }
  const until = Date.now() + 90_000
  while (!output.text.includes("listening")) {
    if (child.exitCode !== null || Date.now() > until) {
      await kill()
      throw new Error(`the gateway did not start: ${output.text}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, output, kill }
}
