/**
 * A real Redis server for a test file: Debian's `redis-server` (which .ci/run installs),
 * on a free loopback port, with no persistence, in a temporary folder. Started once per
 * file; ready when it says it accepts connections.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./free-port"

export interface RunningRedis {
  readonly url: string
  stop(): Promise<void>
}

const BIN = "/usr/bin/redis-server"

export const redisAvailable = (): boolean => existsSync(BIN)

export const startRedis = async (): Promise<RunningRedis> => {
  const dir = mkdtempSync(join(tmpdir(), "quorum-redis-"))
  const port = await freePort()
  const child = spawn(BIN, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  const exited = new Promise<string>((resolve) => child.once("exit", () => resolve(output)))
  // Redis says when it accepts connections; exiting first means it could not start.
  await new Promise<void>((resolve, reject) => {
    const read = (d: Buffer) => {
      output += d
      if (output.includes("Ready to accept connections")) resolve()
    }
    child.stdout.on("data", read)
    child.stderr.on("data", read)
    void exited.then(() => reject(new Error(`redis-server exited before it was ready: ${output}`)))
  })
  const url = `redis://127.0.0.1:${port}`
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM")
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
