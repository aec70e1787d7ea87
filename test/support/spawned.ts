/** A gateway in its own process, started as `npm start` does, for tests that need processes: workers, replicas, kill -9. */
import { type ChildProcess, spawn } from "node:child_process"
import { freePort } from "./free-port"

export interface SpawnedGateway {
  readonly url: string
  readonly pid: number
  readonly output: { text: string }
  /** SIGKILL to the whole process group: the primary and its workers, no chance to flush. */
  kill(): Promise<void>
}

/** The environment without provider keys or Quorum settings of the caller's own. */
export const cleanEnv = (extra: Record<string, string>) => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/_API_KEY$|^QUORUM_/.test(key)) env[key] = value
  }
  return { ...env, ...extra }
}

export const spawnGateway = async (configPath: string, env: Record<string, string>): Promise<SpawnedGateway> => {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--config", configPath], {
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
