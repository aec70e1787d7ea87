/**
 * SQLite's transactions (src/billing/db/sqlite.ts) keep @effect/sql's contract without its
 * per-transaction machinery: the connection held for the transaction's whole life, the
 * effect's statements on it, COMMIT or ROLLBACK, a nested transaction a savepoint, and
 * nothing left behind (no open transaction, no held connection, no connection in the
 * context) whatever way the effect ends. And a write a transaction makes directly on the
 * connection (changedInTransaction) counts its rows, and parameters bind by position.
 */
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option } from "effect"
import Database from "libsql"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { changedInTransaction, sqliteLayer } from "../src/billing/db/sqlite"

const freshPath = () => join(mkdtempSync(join(tmpdir(), "quorum-tx-")), "quorum.db")

const withSql = <A, E>(path: string, body: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, body).pipe(Effect.provide(Layer.orDie(sqliteLayer(path))))

const setUp = (sql: SqlClient.SqlClient) => sql`CREATE TABLE t (n INTEGER PRIMARY KEY)`

const count = (sql: SqlClient.SqlClient) => Effect.map(sql<{ c: number }>`SELECT COUNT(*) AS c FROM t`, (rows) => rows[0]?.c)

/** The transaction can be told apart from none: a statement's connection is the one the context holds. */
const inTransaction = Effect.map(Effect.serviceOption(SqlClient.TransactionConnection), Option.isSome)

/**
 * Whether `fiber` finished after this fiber yielded 50 times: a fiber that could go on
 * runs on the first yield (the scheduler is first in, first out); one that waits for
 * something never finishes, however many yields.
 */
const settled = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  Effect.iterate(0, { while: (i) => i < 50, body: (i) => Effect.as(Effect.yieldNow(), i + 1) }).pipe(Effect.zipRight(Fiber.poll(fiber)))

/** A statement outside a transaction waits for it to end: the transaction holds the one connection. */
const holdsTheConnection = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    yield* sql`DELETE FROM t`
    const started = yield* Deferred.make<void>()
    const finish = yield* Deferred.make<void>()
    const transaction = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
      yield* sql`INSERT INTO t (n) VALUES (1)`
      yield* Deferred.succeed(started, undefined)
      yield* Deferred.await(finish)
      yield* sql`INSERT INTO t (n) VALUES (2)`
    })))
    yield* Deferred.await(started)
    const outside = yield* Effect.fork(count(sql))
    // It cannot run while the transaction holds the one connection, however long it waits.
    expect(Option.isNone(yield* settled(outside))).toBe(true)
    yield* Deferred.succeed(finish, undefined)
    yield* Fiber.join(transaction)
    // It ran after the commit: it sees both rows, never one.
    expect(yield* Fiber.join(outside)).toBe(2)
  })

describe("SQLite transactions", () => {
  it.effect("commit what they did, and leave the context as it was", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* setUp(sql)
        const inside = yield* sql.withTransaction(Effect.zipLeft(inTransaction, sql`INSERT INTO t (n) VALUES (1)`))
        expect(inside).toBe(true)
        expect(yield* inTransaction).toBe(false)
        expect(yield* count(sql)).toBe(1)
      })))

  it.effect("roll back on a failure, a defect or an interruption, and release the connection each time", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* setUp(sql)
        const failed = yield* Effect.exit(sql.withTransaction(Effect.zipRight(sql`INSERT INTO t (n) VALUES (1)`, Effect.fail("refused"))))
        expect(failed).toStrictEqual(Exit.fail("refused"))
        const died = yield* Effect.exit(sql.withTransaction(Effect.zipRight(sql`INSERT INTO t (n) VALUES (2)`, Effect.die("broken"))))
        expect(died).toStrictEqual(Exit.die("broken"))
        const started = yield* Deferred.make<void>()
        const waiting = yield* Effect.fork(sql.withTransaction(
          Effect.zipRight(sql`INSERT INTO t (n) VALUES (3)`, Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
        ))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(waiting)
        expect(yield* count(sql)).toBe(0)
        expect(yield* inTransaction).toBe(false)
        // Nothing is left open: another transaction begins and commits.
        yield* sql.withTransaction(sql`INSERT INTO t (n) VALUES (4)`)
        expect(yield* count(sql)).toBe(1)
        // And the connection is still one: no ending gave its permit back twice.
        yield* holdsTheConnection(sql)
      })))

  it.effect("end a COMMIT that fails (a deferred constraint) with a defect, and leave nothing open", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* sql`PRAGMA foreign_keys = ON`
        yield* sql`CREATE TABLE parent (id INTEGER PRIMARY KEY)`
        yield* sql`CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`
        const exit = yield* Effect.exit(sql.withTransaction(sql`INSERT INTO child (p) VALUES (1)`))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        expect(yield* sql`SELECT * FROM child`).toStrictEqual([])
        yield* sql.withTransaction(Effect.zipRight(sql`INSERT INTO parent (id) VALUES (1)`, sql`INSERT INTO child (p) VALUES (1)`))
        expect(yield* sql`SELECT p FROM child`).toStrictEqual([{ p: 1 }])
      })))

  it.effect("fail when BEGIN fails, and give the connection back", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* setUp(sql)
        // A transaction opened by hand, outside withTransaction: BEGIN IMMEDIATE cannot start another.
        yield* sql.unsafe("BEGIN")
        const exit = yield* Effect.exit(sql.withTransaction(sql`INSERT INTO t (n) VALUES (1)`))
        expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause).pipe(Option.map((e) => e._tag), Option.getOrUndefined)).toBe("SqlError")
        yield* sql.unsafe("ROLLBACK")
        yield* sql.withTransaction(sql`INSERT INTO t (n) VALUES (2)`)
        expect(yield* count(sql)).toBe(1)
      })))

  it.effect("nest as savepoints: an inner failure undoes the inner writes only", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* setUp(sql)
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO t (n) VALUES (1)`
          const inner = yield* Effect.exit(sql.withTransaction(Effect.zipRight(sql`INSERT INTO t (n) VALUES (2)`, Effect.fail("inner"))))
          expect(Exit.isFailure(inner)).toBe(true)
          yield* sql`INSERT INTO t (n) VALUES (3)`
        }))
        expect(yield* sql<{ n: number }>`SELECT n FROM t ORDER BY n`).toStrictEqual([{ n: 1 }, { n: 3 }])
      })))

  it.effect("hold the connection: a statement outside waits for the transaction to end", () =>
    withSql(freshPath(), (sql) => Effect.zipRight(setUp(sql), holdsTheConnection(sql))))

  // Live: the wait for the lock is retried after real pauses.
  it.live("wait while another process holds the write lock, then begin", () => {
    const path = freshPath()
    return withSql(path, (sql) =>
      Effect.gen(function*() {
        yield* setUp(sql)
        const other = new Database(path)
        other.exec("PRAGMA busy_timeout = 0")
        other.exec("BEGIN IMMEDIATE")
        other.exec("INSERT INTO t (n) VALUES (1)")
        const ours = yield* Effect.fork(sql.withTransaction(Effect.flatMap(count(sql), (seen) => Effect.as(sql`INSERT INTO t (n) VALUES (2)`, seen))))
        expect(Option.isNone(yield* settled(ours))).toBe(true)
        other.exec("COMMIT")
        other.close()
        // Begun after the other's commit: it saw the other's row.
        expect(yield* Fiber.join(ours)).toBe(1)
        expect(yield* count(sql)).toBe(2)
      }))
  })

  it.effect("count the rows a direct write changed", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* setUp(sql)
        yield* sql`INSERT INTO t (n) VALUES (1), (2), (3)`
        const changed = changedInTransaction(sql)
        const counts = yield* sql.withTransaction(Effect.all([
          changed(sql`UPDATE t SET n = n + 10 WHERE n >= ${2}`),
          changed(sql`UPDATE t SET n = n + 10 WHERE n > ${100}`)
        ]))
        expect(counts).toStrictEqual([2, 0])
        expect(yield* sql<{ n: number }>`SELECT n FROM t ORDER BY n`).toStrictEqual([{ n: 1 }, { n: 12 }, { n: 13 }])
      })))

  it.effect("bind parameters by position: a lone Buffer or null, and thousands of them", () =>
    withSql(freshPath(), (sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE b (v BLOB, n INTEGER)`
        // A statement whose one parameter is an object: libsql takes a lone object argument
        // for named parameters (a Buffer on a `?` aborted the whole process, a null was refused).
        yield* sql`INSERT INTO b (v, n) VALUES (${Buffer.from([1, 2, 3])}, 0)`
        yield* sql`INSERT INTO b (v, n) SELECT ${null}, 0`
        const blobs = yield* sql<{ v: Uint8Array | null }>`SELECT v FROM b ORDER BY rowid`
        expect(blobs.map((row) => (row.v === null ? null : Buffer.from(row.v).toString("hex")))).toStrictEqual(["010203", null])
        // Thousands of parameters, as a ledger batch has: inserted, then changed inside a transaction.
        const rows = Array.from({ length: 1_500 }, (_, i) => ({ v: null, n: i + 1 }))
        yield* sql`INSERT INTO b ${sql.insert(rows)}`
        const changed = yield* sql.withTransaction(changedInTransaction(sql)(sql`UPDATE b SET n = -n WHERE ${sql.in("n", rows.map((r) => r.n))}`))
        expect(changed).toBe(1_500)
        expect(yield* sql<{ c: number; s: number }>`SELECT COUNT(*) AS c, SUM(n) AS s FROM b`).toStrictEqual([{ c: 1_502, s: -(1_500 * 1_501) / 2 }])
      })))
})
