/** perTurn (billing/coalesce.ts): calls of one event-loop turn go together, each with its own outcome. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber } from "effect"
import { perTurn } from "../src/billing/coalesce"

/** A grouped call that records its groups and refuses odd numbers. */
const recorder = () => {
  const groups: Array<ReadonlyArray<number>> = []
  const call = perTurn((items: ReadonlyArray<number>) =>
    Effect.sync(() => {
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
      const call = perTurn((_: ReadonlyArray<number>) => Effect.fail("database away"))
      const answers = yield* Effect.all([call(1), call(2)].map(Effect.either), { concurrency: "unbounded" })
      expect(answers).toEqual([Either.left("database away"), Either.left("database away")])
    }))
})
