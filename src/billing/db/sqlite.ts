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
import { Context, Effect, FiberRef, Layer, Schedule, Scope } from "effect"
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

/** A statement run at once on the connection, in the caller's turn: its rows, or (changesNow) how many rows it changed. */
export type RunNow = (sql: string, params: ReadonlyArray<unknown>) => ReadonlyArray<object>
export type ChangesNow = (sql: string, params: ReadonlyArray<unknown>) => number

interface Direct {
  readonly runNow: RunNow
  readonly changesNow: ChangesNow
}

/**
 * The SQLite clients of this process, each with its connection's direct execution: a
 * statement of a write transaction can run on the connection the transaction holds
 * without the client's per-statement machinery (a span, a scope and a copy of the fiber's
 * references: ~35 runtime steps a statement). See `runInTransaction`.
 */
const direct = new WeakMap<SqlClient.SqlClient, Direct>()

/** The statement compiled by the client's compiler and run at once by `run`. */
const compiledNow = <A>(statement: Statement.Statement<object>, run: (sql: string, params: ReadonlyArray<unknown>) => A): Effect.Effect<A, SqlError.SqlError> =>
  Effect.try({
    try: () => {
      const [sql, params] = statement.compile()
      return run(sql, params)
    },
    catch: failedStatement
  })

/**
 * A statement of a write transaction on `client`: on SQLite, run at once on the connection
 * (the transaction holds it, so nothing else runs on it meanwhile); elsewhere, through the
 * client. Only inside `withTransaction`: outside one, the statement would skip the wait for
 * a transaction in progress.
 */
export const runInTransaction = (client: SqlClient.SqlClient) => {
  const now = direct.get(client)
  return <A extends object>(statement: Statement.Statement<A>): Effect.Effect<ReadonlyArray<A>, SqlError.SqlError> =>
    now === undefined ? statement : compiledNow(statement, (sql, params) => now.runNow(sql, params) as ReadonlyArray<A>)
}

/**
 * How many rows a write statement of a write transaction on `client` changed: on SQLite
 * from the statement's run, at once (as runInTransaction); elsewhere from the driver's
 * answer (node-postgres's rowCount). Same rule: only inside `withTransaction`. A driver
 * whose answer has no count is a defect, never 0: a caller that reads 0 as "nothing
 * changed" would do the write again.
 */
export const changedInTransaction = (client: SqlClient.SqlClient) => {
  const now = direct.get(client)
  return (statement: Statement.Statement<object>): Effect.Effect<number, SqlError.SqlError> =>
    now === undefined ? Effect.flatMap(statement.raw, countOf) : compiledNow(statement, now.changesNow)
}

const countOf = (result: unknown): Effect.Effect<number> => {
  const count = typeof result === "object" && result !== null && "rowCount" in result ? result.rowCount : undefined
  return typeof count === "number" ? Effect.succeed(count) : Effect.dieMessage("changedInTransaction: the driver's answer has no row count")
}

const makeConnection = (db: Db): SqlConnection.Connection & Direct => {
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
  /**
   * Rows as objects, or (`values`) as arrays: what libsql returns for each. The parameters
   * go to libsql as the one array they are. Spread, libsql gathered them back with
   * `.flat()`, two copies of every parameter (a ledger batch has thousands; ~1.2 µs a row
   * of 16 columns, measured), and took a lone object parameter for named parameters: a
   * Buffer on a `?` aborted the process, a null was refused.
   */
  const runNow = <Row extends object>(sql: string, params: ReadonlyArray<unknown>, values = false): ReadonlyArray<Row> => {
    const { reader, statement } = prepare(sql)
    if (!reader) {
      statement.run(params)
      return []
    }
    if (!values) return statement.all(params) as Array<Row>
    statement.raw(true)
    try {
      return statement.all(params) as Array<Row>
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
    runNow: (sql, params) => runNow(sql, params),
    changesNow: (sql, params) => prepare(sql).statement.run(params).changes
  }
}

type Semaphore = Effect.Semaphore
type WithTransaction = SqlClient.SqlClient["withTransaction"]

/**
 * @effect/sql's withTransaction for a transaction that is not nested in another, with
 * the same contract (the connection held, BEGIN IMMEDIATE, the effect with the
 * connection as its TransactionConnection, COMMIT or ROLLBACK, a failed COMMIT or
 * ROLLBACK a defect) but without its span, scope and two copies of the fiber's
 * references: ~100 runtime steps for every ledger batch and admission group, about as
 * much again as the statements in them. BEGIN is tried at once; only when another
 * process holds the lock does it wait, asynchronously (see executeUnprepared). A nested
 * transaction (a savepoint) goes to @effect/sql's. A COMMIT that fails leaves no
 * transaction open on the connection: the next BEGIN would fail on it. One difference:
 * waiting for the connection (another fiber's transaction) can be interrupted, as
 * Effect's own withPermits can; @effect/sql's could not. Waiting for another process's
 * lock still cannot, as before.
 */
const leanTransaction = (db: Db, connection: SqlConnection.Connection, semaphore: Semaphore, nested: WithTransaction): WithTransaction =>
<R, E, A>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError, R> =>
  Effect.withFiberRuntime<A, E | SqlError.SqlError, R>((fiber) => {
    const outer = fiber.getFiberRef(FiberRef.currentContext)
    if (Context.getOption(outer, SqlClient.TransactionConnection)._tag === "Some") return nested(effect)
    const inside = Context.add(outer, SqlClient.TransactionConnection, [connection, 0] as const)
    const release = semaphore.release(1)
    const ended = (end: "COMMIT" | "ROLLBACK", exit: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.zipRight(
        FiberRef.set(FiberRef.currentContext, outer),
        Effect.suspend(() => {
          try {
            // SQLite may have rolled back already (some errors end the transaction): nothing to undo then.
            if (end === "COMMIT" || db.inTransaction) db.exec(end)
          } catch (cause) {
            try {
              if (db.inTransaction) db.exec("ROLLBACK")
            } catch {
              // The connection is beyond saving; the defect below says why.
            }
            return Effect.zipRight(release, Effect.die(new SqlError.SqlError({ cause, message: `Failed to execute ${end}` })))
          }
          return Effect.zipRight(release, exit)
        })
      )
    return Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(
        restore(semaphore.take(1)),
        Effect.matchCauseEffect(Effect.suspend(() => begin(db, connection)), {
          onFailure: (cause) => Effect.zipRight(release, Effect.failCause(cause)),
          onSuccess: () =>
            Effect.zipRight(
              FiberRef.set(FiberRef.currentContext, inside as Context.Context<never>),
              Effect.matchCauseEffect(restore(effect), {
                onFailure: (cause) => ended("ROLLBACK", Effect.failCause(cause)),
                onSuccess: (a) => ended("COMMIT", Effect.succeed(a))
              })
            )
        })
      )
    )
  })

/** BEGIN IMMEDIATE now, or, while another process holds the write lock, once it is free. */
const begin = (db: Db, connection: SqlConnection.Connection): Effect.Effect<void, SqlError.SqlError> => {
  try {
    db.exec("BEGIN IMMEDIATE")
    return Effect.void
  } catch (cause) {
    if (!isBusy(cause)) return Effect.fail(new SqlError.SqlError({ cause, message: "Failed to execute BEGIN IMMEDIATE" }))
    return Effect.asVoid(connection.executeUnprepared("BEGIN IMMEDIATE", [], undefined))
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
      direct.set(client, connection)
      return Object.assign(client, { withTransaction: leanTransaction(db, connection, semaphore, client.withTransaction) })
    })
  ).pipe(Layer.provide(Reactivity.layer))
