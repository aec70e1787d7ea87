/**
 * The embedded store: a SQLite file through libsql (its native binary comes as an npm
 * package, so nothing is built or downloaded at install).
 *
 * @libsql/client hands its connection to each transaction and opens a new one for the
 * next statement, which costs a file open (~0.2 ms) per transaction and drops the
 * per-connection pragmas. Here one connection is kept for the process: @effect/sql's
 * libsql client already serialises transactions with a semaphore, and every write in
 * Quorum runs inside one, so BEGIN/COMMIT on the shared connection cannot interleave.
 */
import { LibsqlClient } from "@effect/sql-libsql"
import { createClient, type Client, type InStatement, type Transaction } from "@libsql/client"
import { Effect, Layer } from "effect"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"

const isBusy = (error: unknown): boolean => error instanceof Error && /SQLITE_BUSY|database is locked/.test(`${(error as { code?: string }).code} ${error.message}`)

/**
 * A statement that failed with SQLITE_BUSY stays "in progress" in libsql until it is
 * garbage-collected, and its connection can then commit nothing. So SQLite itself waits
 * a short while for the lock (busy_timeout: other processes' transactions take well
 * under a millisecond), and past that the connection is replaced, not reused.
 */
const BUSY_TIMEOUT_MS = 20

const openClient = async (path: string): Promise<Client> => {
  const client = createClient({ url: `file:${path}` })
  await client.execute(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`)
  // WAL: readers never wait for the writer, and a commit is one append. NORMAL syncs
  // at checkpoints, not every commit: a killed process loses nothing committed; a
  // power cut may lose the last commits (use PostgreSQL where that matters).
  await client.execute("PRAGMA journal_mode = WAL")
  await client.execute("PRAGMA synchronous = NORMAL")
  return client
}

class Connection {
  constructor(private readonly path: string, public client: Client) {}

  /** BEGIN IMMEDIATE takes the write lock at once, so a transaction never fails half-way for want of it. */
  async beginImmediate(): Promise<void> {
    const deadline = Date.now() + 10_000
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      try {
        await this.client.execute("BEGIN IMMEDIATE")
        return
      } catch (error) {
        if (!isBusy(error) || Date.now() > deadline) throw error
        const poisoned = this.client
        this.client = await openClient(this.path)
        poisoned.close()
        // Back off without blocking the event loop.
        await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())))
      }
    }
  }

  transaction(): Transaction {
    // BEGIN is sent with the first statement: @effect/sql releases its connection
    // semaphore when a statement fails, but not when opening the transaction fails.
    let state: "new" | "open" | "closed" = "new"
    const execute = async (stmt: InStatement) => {
      if (state === "new") {
        await this.beginImmediate()
        state = "open"
      }
      return this.client.execute(stmt)
    }
    const end = (statement: string) => async () => {
      const wasOpen = state === "open"
      state = "closed"
      if (wasOpen) await this.client.execute(statement)
    }
    return {
      execute,
      batch: async (stmts: Array<InStatement>) => {
        const results = []
        for (const stmt of stmts) results.push(await execute(stmt))
        return results
      },
      executeMultiple: async (sql: string) => {
        if (state === "new") await execute("SELECT 1")
        return this.client.executeMultiple(sql)
      },
      commit: end("COMMIT"),
      rollback: end("ROLLBACK"),
      close: () => void end("ROLLBACK")(),
      get closed() {
        return state === "closed"
      }
    }
  }

  /** The Client @effect/sql expects, over whichever connection is current. */
  asClient(): Client {
    return new Proxy(this.client, {
      get: (_, property) => {
        if (property === "transaction") return async () => this.transaction()
        const value: unknown = Reflect.get(this.client, property, this.client)
        return typeof value === "function" ? value.bind(this.client) : value
      }
    })
  }
}

export const sqliteLayer = (path: string) =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const connection = yield* Effect.acquireRelease(
        Effect.tryPromise(async () => {
          mkdirSync(dirname(path), { recursive: true })
          return new Connection(path, await openClient(path))
        }),
        (connection) => Effect.sync(() => connection.client.close())
      )
      return LibsqlClient.layer({ liveClient: connection.asClient() })
    })
  )
