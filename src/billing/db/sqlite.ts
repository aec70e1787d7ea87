/**
 * The embedded store: a SQLite file through libsql's native binding (its binary comes
 * as an npm package, so nothing is built or downloaded at install), behind @effect/sql.
 *
 * A synchronous client, in the manner of @effect/sql-sqlite-node (which needs
 * better-sqlite3, built from source at install). Not @effect/sql-libsql: its client is
 * asynchronous, so between two statements of a transaction the fiber yields and this
 * process's other requests run while it holds SQLite's write lock (1.3 ms on average,
 * measured with two workers), which the other workers then wait for. Here a transaction
 * runs start to finish in one turn of the event loop and holds the lock for
 * microseconds; when another process holds it, BEGIN is retried after an asynchronous
 * pause rather than in SQLite's busy handler, which would block the event loop. For the
 * same reason the log is checkpointed by a thread (checkpointer.ts), not by a commit.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient, SqlConnection, SqlError, Statement } from "@effect/sql"
import { Effect, Layer, Schedule, Scope } from "effect"
import Database from "libsql"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { BACKSTOP_PAGES, checkpointer } from "./checkpointer"

type Db = InstanceType<typeof Database>
const prepareOn = (db: Db, sql: string) => db.prepare<Array<unknown>>(sql)
type Prepared = ReturnType<typeof prepareOn>

const isBusy = (cause: unknown): boolean =>
  cause instanceof Error && /SQLITE_BUSY|database is locked/.test(`${(cause as { code?: string }).code} ${cause.message}`)

/** Another process's transaction lasts microseconds: retry soon, and give up only after a long while. */
const lockRetry = Schedule.exponential("500 micros", 1.5).pipe(
  Schedule.jittered,
  Schedule.union(Schedule.spaced("20 millis")),
  Schedule.upTo("10 seconds")
)

/** A prepared statement, and whether it returns rows (a call into the binding each time it is asked). */
interface Cached {
  readonly statement: Prepared
  readonly reader: boolean
}

const failedStatement = (cause: unknown) => new SqlError.SqlError({ cause, message: "Failed to execute statement" })

/** A statement run at once on the connection, in the caller's turn. */
export type RunNow = (sql: string, params: ReadonlyArray<unknown>) => ReadonlyArray<object>

/**
 * The SQLite clients of this process, each with its connection's RunNow: a statement of a
 * write transaction can run on the connection the transaction holds without the client's
 * per-statement machinery (a span, a scope and a copy of the fiber's references: ~35
 * runtime steps a statement). See `runInTransaction`.
 */
const direct = new WeakMap<SqlClient.SqlClient, RunNow>()

/**
 * A statement of a write transaction on `client`: on SQLite, run at once on the connection
 * (the transaction holds it, so nothing else runs on it meanwhile); elsewhere, through the
 * client. Only inside `withTransaction`: outside one, the statement would skip the wait for
 * a transaction in progress.
 */
export const runInTransaction = (client: SqlClient.SqlClient) => {
  const now = direct.get(client)
  return <A extends object>(statement: Statement.Statement<A>): Effect.Effect<ReadonlyArray<A>, SqlError.SqlError> => {
    if (now === undefined) return statement
    return Effect.try({
      try: () => {
        const [sql, params] = statement.compile()
        return now(sql, params) as ReadonlyArray<A>
      },
      catch: failedStatement
    })
  }
}

const makeConnection = (db: Db): SqlConnection.Connection & { readonly runNow: RunNow } => {
  const cache = new Map<string, Cached>()
  const prepare = (sql: string): Cached => {
    let cached = cache.get(sql)
    if (cached === undefined) {
      // Statements built from other statements' values (an IN list) vary; keep the cache bounded.
      if (cache.size >= 500) cache.clear()
      const statement = prepareOn(db, sql)
      cached = { statement, reader: statement.reader }
      cache.set(sql, cached)
    }
    return cached
  }
  /** Rows as objects, or (`values`) as arrays: what libsql returns for each. */
  const runNow = <Row extends object>(sql: string, params: ReadonlyArray<unknown>, values = false): ReadonlyArray<Row> => {
    const { reader, statement } = prepare(sql)
    if (!reader) {
      statement.run(...params)
      return []
    }
    if (!values) return statement.all(...params) as Array<Row>
    statement.raw(true)
    try {
      return statement.all(...params) as Array<Row>
    } finally {
      statement.raw(false)
    }
  }
  const run = <Row extends object>(sql: string, params: ReadonlyArray<unknown>, values = false): Effect.Effect<ReadonlyArray<Row>, SqlError.SqlError> =>
    Effect.try({ try: () => runNow<Row>(sql, params, values), catch: failedStatement })
  const exec = (sql: string) =>
    Effect.try({
      try: () => {
        db.exec(sql)
        return [] as ReadonlyArray<never>
      },
      catch: (cause) => new SqlError.SqlError({ cause, message: `Failed to execute ${sql}` })
    })
  return {
    execute: (sql, params, transformRows) => (transformRows ? Effect.map(run(sql, params), transformRows) : run(sql, params)),
    executeRaw: (sql, params) => run(sql, params),
    executeValues: (sql, params) => run<ReadonlyArray<unknown>>(sql, params, true),
    executeUnprepared: (sql, params, transformRows) => {
      // BEGIN IMMEDIATE takes the write lock up front; while another process has it, wait without blocking.
      if (/^BEGIN\b/i.test(sql)) return exec(sql).pipe(Effect.retry({ schedule: lockRetry, while: (e) => isBusy(e.cause) }))
      // A BEGIN that never got the lock leaves nothing to roll back: say so rather than fail on it and hide why.
      if (/^ROLLBACK\b/i.test(sql) && params.length === 0 && !db.inTransaction) return Effect.succeed([])
      if (/^(COMMIT|ROLLBACK)\b/i.test(sql) && params.length === 0) return exec(sql)
      return transformRows ? Effect.map(run(sql, params), transformRows) : run(sql, params)
    },
    executeStream: () => Effect.dieMessage("executeStream is not implemented for SQLite"),
    runNow: (sql, params) => runNow(sql, params)
  }
}

export const sqliteLayer = (path: string): Layer.Layer<SqlClient.SqlClient, SqlError.SqlError> =>
  Layer.scoped(
    SqlClient.SqlClient,
    Effect.gen(function*() {
      const db = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            mkdirSync(dirname(path), { recursive: true })
            const db = new Database(path)
            // WAL: readers never wait for the writer, and a commit is one append. NORMAL syncs
            // at checkpoints, not every commit: a killed process loses nothing committed; a
            // power cut may lose the last commits (use PostgreSQL where that matters).
            db.exec("PRAGMA busy_timeout = 0")
            db.exec("PRAGMA journal_mode = WAL")
            db.exec("PRAGMA synchronous = NORMAL")
            return db
          },
          catch: (cause) => new SqlError.SqlError({ cause, message: `Cannot open SQLite database ${path}` })
        }),
        (db) => Effect.sync(() => db.close())
      )
      // Checkpoints are a thread's (see checkpointer.ts); the connection's own only past a backstop.
      db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`)
      yield* checkpointer(path, (pages) => db.exec(`PRAGMA wal_autocheckpoint = ${pages}`))
      const connection = makeConnection(db)
      // One connection: statements outside a transaction wait for one in progress.
      const semaphore = yield* Effect.makeSemaphore(1)
      const acquirer = semaphore.withPermits(1)(Effect.succeed(connection))
      const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
        Effect.as(
          Effect.zipRight(restore(semaphore.take(1)), Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, semaphore.release(1)))),
          connection
        )
      )
      const client = yield* SqlClient.make({
        acquirer,
        transactionAcquirer,
        compiler: Statement.makeCompilerSqlite(),
        beginTransaction: "BEGIN IMMEDIATE",
        spanAttributes: [["db.system.name", "sqlite"]]
      })
      direct.set(client, connection.runNow)
      return client
    })
  ).pipe(Layer.provide(Reactivity.layer))
