/**
 * Calls for the same key that arrive while one is running wait, and go together in the
 * next one: group commit, for admission. One hot key then costs a round trip and a row
 * lock per group rather than per request, and a request that finds nothing running goes
 * at once, so nobody waits on a timer. The group runs detached from its callers: one
 * caller going away (a client disconnecting) cannot cut the others' call short.
 */
import { Effect, Exit } from "effect"

interface Waiting<I, O, E> {
  readonly item: I
  readonly resume: (exit: Exit.Exit<O, E>) => void
}

/** Enough to keep a group's statement small; more waiting than this go in the following call. */
const MAX_GROUP = 256

/** The i-th output; `run` answering fewer outputs than items is a bug, not a refusal. */
const answerOf = <O>(outputs: ReadonlyArray<O>, i: number): Exit.Exit<O, never> => {
  const output = outputs[i]
  return output === undefined ? Exit.die(new Error(`a coalesced call answered ${outputs.length} outputs for item ${i}`)) : Exit.succeed(output)
}

/**
 * `run` gets the items of one key, oldest first, and answers one output per item in the
 * same order; its failure is every item's. A caller that leaves while it waits is taken
 * out of the queue; one whose group has started is answered for nobody (its admission
 * then holds its reservation until the reservation expires).
 */
export const coalescing = <I, O, E>(run: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, E>) => {
  const queues = new Map<string, Array<Waiting<I, O, E>>>()

  const start = (key: string, group: ReadonlyArray<Waiting<I, O, E>>): void => {
    Effect.runCallback(run(group.map((w) => w.item)), {
      onExit: (exit) => {
        group.forEach((w, i) => w.resume(Exit.isSuccess(exit) ? answerOf(exit.value, i) : Exit.failCause(exit.cause)))
        // The key's queue lives as long as a group of it runs: this one.
        const queue = queues.get(key)
        if (queue === undefined || queue.length === 0) queues.delete(key)
        else start(key, queue.splice(0, MAX_GROUP))
      }
    })
  }

  return (key: string, item: I): Effect.Effect<O, E> =>
    Effect.async<O, E>((resume) => {
      const waiting: Waiting<I, O, E> = { item, resume }
      const queue = queues.get(key)
      if (queue === undefined) {
        queues.set(key, [])
        start(key, [waiting])
        return
      }
      queue.push(waiting)
      // A caller that leaves while it waits for the next group is not admitted for nobody.
      return Effect.sync(() => {
        const at = queue.indexOf(waiting)
        if (at !== -1) queue.splice(at, 1)
      })
    })
}

/** A call of a perTurn group, as `run` sees it. */
export interface TurnCall<I> {
  readonly item: I
  /** Whether its caller has gone (the client left): `run` then does nothing for it, or undoes what it did. */
  readonly left: () => boolean
}

/**
 * Calls made during one turn of the event loop go together at its end (setImmediate:
 * after the I/O callbacks of this turn, before any timer), each with its own outcome.
 * For an in-process database (SQLite), where a call is a transaction that runs start to
 * finish synchronously, so that nothing is ever running for `coalescing` to wait on: the
 * requests whose bodies arrived in the same turn then share one BEGIN and one COMMIT. A
 * caller that leaves before its turn ends is taken out of the group; one that leaves
 * while its group waits (for another process's lock) is marked, for `run` to skip. The
 * group runs detached from its callers, like `coalescing`'s.
 */
export const perTurn = <I, O, E>(run: (calls: ReadonlyArray<TurnCall<I>>) => Effect.Effect<ReadonlyArray<Exit.Exit<O, E>>, E>) => {
  let pending: Array<Waiting<I, O, E> & { gone: boolean }> = []

  const flush = (): void => {
    const group = pending
    pending = []
    if (group.length === 0) return
    Effect.runCallback(run(group.map((w) => ({ item: w.item, left: () => w.gone }))), {
      onExit: (exit) =>
        group.forEach((w, i) => {
          if (Exit.isFailure(exit)) return w.resume(Exit.failCause(exit.cause))
          const own = exit.value[i]
          w.resume(own ?? Exit.die(new Error(`a grouped call answered ${exit.value.length} outcomes for item ${i}`)))
        })
    })
  }

  return (item: I): Effect.Effect<O, E> =>
    Effect.async<O, E>((resume) => {
      const waiting = { item, resume, gone: false }
      if (pending.length === 0) setImmediate(flush)
      pending.push(waiting)
      return Effect.sync(() => {
        waiting.gone = true
        pending = pending.filter((w) => w !== waiting)
      })
    })
}
