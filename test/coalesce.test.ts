/**
 * billing/coalesce.ts: perTurn (calls of one event-loop turn go together, each with its
 * own outcome) and coalescing (calls for a key that arrive while one runs go in the next).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber } from "effect"
import { coalescing, perTurn, type TurnCall } from "../src/billing/coalesce"

/** A grouped call that records its groups and refuses odd numbers. */
const recorder = () => {
  const groups: Array<ReadonlyArray<number>> = []
  const call = perTurn((calls: ReadonlyArray<TurnCall<number>>) =>
    Effect.sync(() => {
      const items = calls.map((c) => c.item)
      groups.push(items)
      return items.map((n) => (n % 2 === 0 ? Exit.succeed(n * 10) : Exit.fail(`odd ${n}`)))
    }))
  return { groups, call }
}

describe("perTurn", () => {
  it.live("runs the calls of one turn as one group, in order, each answered with its own outcome", () =>
    Effect.gen(function*() {
      const { call, groups } = recorder()
      const answers = yield* Effect.all([1, 2, 3, 4].map((n) => Effect.either(call(n))), { concurrency: "unbounded" })
      expect(groups).toEqual([[1, 2, 3, 4]])
      expect(answers).toEqual([Either.left("odd 1"), Either.right(20), Either.left("odd 3"), Either.right(40)])
      // The next turn's calls are a group of their own.
      expect(yield* call(6)).toBe(60)
      expect(groups).toEqual([[1, 2, 3, 4], [6]])
    }))

  it.live("leaves out a caller that went away before its turn ended", () =>
    Effect.gen(function*() {
      const { call, groups } = recorder()
      const kept = yield* Effect.fork(call(2))
      const gone = yield* Effect.fork(call(4))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(gone)
      expect(yield* Fiber.join(kept)).toBe(20)
      expect(groups).toEqual([[2]])
    }))

  it.live("fails every call of a group whose run fails", () =>
    Effect.gen(function*() {
      const call = perTurn((_: ReadonlyArray<TurnCall<number>>) => Effect.fail("database away"))
      const answers = yield* Effect.all([call(1), call(2)].map(Effect.either), { concurrency: "unbounded" })
      expect(answers).toEqual([Either.left("database away"), Either.left("database away")])
    }))

  it.live("tells the group which callers left while it waited, so that nothing is kept for them", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const seen: Array<[number, boolean]> = []
      const call = perTurn((calls: ReadonlyArray<TurnCall<number>>) =>
        Effect.gen(function*() {
          yield* Deferred.succeed(started, undefined)
          // As a group waits for another process's lock.
          yield* Deferred.await(gate)
          for (const c of calls) seen.push([c.item, c.left()])
          return calls.map((c) => Exit.succeed(c.item))
        }))
      const staying = yield* Effect.fork(call(1))
      const leaving = yield* Effect.fork(call(2))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(leaving)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(staying)).toBe(1)
      expect(seen).toEqual([[1, false], [2, true]])
    }))
})

describe("coalescing", () => {
  it.live("takes a caller that leaves while it waits out of the next group", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const groups: Array<ReadonlyArray<number>> = []
      const call = coalescing((items: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          groups.push(items)
          if (groups.length === 1) yield* Deferred.await(gate)
          return items
        }))
      const first = yield* Effect.fork(call("key", 1))
      yield* Effect.yieldNow()
      const kept = yield* Effect.fork(call("key", 2))
      const gone = yield* Effect.fork(call("key", 3))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(gone)
      yield* Deferred.succeed(gate, undefined)
      expect([yield* Fiber.join(first), yield* Fiber.join(kept)]).toEqual([1, 2])
      expect(groups).toEqual([[1], [2]])
    }))
})
