/**
 * A real PostgreSQL server for a test file: a fresh cluster in a temporary folder, on a
 * free loopback port, from Debian's `postgresql` package (which .ci/run installs).
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./free-port"

export interface RunningPostgres {
  readonly url: string
  /** A new, empty database on this server. */
  database(name: string): string
  /** Stops the server, keeping its data, until `resume`. */
  pause(): Promise<void>
  /** Starts it again, on the same port, with the same data. */
  resume(): Promise<void>
  stop(): Promise<void>
}

const binDir = (): string => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) throw new Error("PostgreSQL is not installed: apt-get install postgresql (see .ci/run)")
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0]
  return join(root, version!, "bin")
}

const asUser = (): { uid: number; gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim())
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim())
  return { uid, gid }
}

export const startPostgres = async (): Promise<RunningPostgres> => {
  const bin = binDir()
  const user = asUser()
  const dir = mkdtempSync(join(tmpdir(), "quorum-pg-"))
  if (user !== undefined) execFileSync("chown", [`${user.uid}:${user.gid}`, dir])
  chmodSync(dir, 0o700)
  const data = join(dir, "data")
  execFileSync(join(bin, "initdb"), ["-D", data, "-U", "quorum", "--auth=trust", "-E", "UTF8", "--no-sync"], { ...user, stdio: "pipe" })
  const port = await freePort()
  let server: ChildProcess | undefined
  let log = ""
  const psql = (args: Array<string>) =>
    execFileSync(join(bin, "psql"), ["-h", "127.0.0.1", "-p", String(port), "-U", "quorum", "-d", "postgres", "-v", "ON_ERROR_STOP=1", ...args], { stdio: "pipe" })
  const launch = async () => {
    const child = spawn(
      join(bin, "postgres"),
      ["-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "fsync=off", "-c", "max_connections=200"],
      { ...user, stdio: ["ignore", "ignore", "pipe"] }
    )
    server = child
    child.stderr?.on("data", (d: Buffer) => (log += d.toString()))
    const until = Date.now() + 20_000
    for (;;) {
      try {
        psql(["-c", "SELECT 1"])
        return
      } catch {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`PostgreSQL did not start: ${log}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }
  const halt = async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r))
      // Fast shutdown: connections are closed, as when the database goes away.
      server.kill("SIGINT")
      await exited
    }
  }
  await launch()
  const url = (db: string) => `postgres://quorum@127.0.0.1:${port}/${db}`
  return {
    url: url("postgres"),
    database: (name) => {
      psql(["-c", `CREATE DATABASE "${name}"`])
      return url(name)
    },
    pause: halt,
    resume: launch,
    stop: async () => {
      await halt()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
