/**
 * The ledger's writer. Requests hand it their rows and go on; a fiber writes whatever
 * has gathered every `flush_ms`, in one transaction per batch, which also settles the
 * batch's reservations. A row counts as written (`written` in the status) only once its
 * transaction committed, so a process killed at any moment loses no row it reported as
 * written, and a batch is in the ledger and settled entirely or not at all.
 *
 * What a process killed at any moment does lose is the batch it was gathering (up to
 * `flush_ms` of answered requests). Their reservations stay behind, named for this
 * process, whose lease the writer renews every second while it holds any; once it lapses, any other process
 * (a worker or replica running, or one starting) charges them at their reserved worst
 * case, so the key's spend never undercounts (see SpendStore.reconcile).
 */
import { Cause, Duration, Effect, Fiber, Queue, Schedule } from "effect"
import { GatewayConfig } from "../config/gateway-config"
import { LEASE_RENEW_MS } from "./owner"
import { type LedgerEntry, SpendStore } from "./store/store"

export interface LedgerStatus {
  /** Rows waiting for their batch. */
  readonly pending: number
  /** Requests whose rows this process has committed since it started. */
  readonly written: number
  /** Batches that failed and were retried (the database was unreachable or locked). */
  readonly failed_batches: number
  /** Rows dropped because the queue was full while the database was down. */
  readonly dropped: number
}

/** While the database is down, rows wait in memory up to this many; beyond it they are dropped, with an error logged. */
const MAX_PENDING = 200_000
const MAX_BATCH = 2_000

export class Ledger extends Effect.Service<Ledger>()("quorum/Ledger", {
  scoped: Effect.gen(function*() {
    const config = yield* GatewayConfig
    const store = yield* SpendStore
    const queue = yield* Queue.unbounded<LedgerEntry>()
    let inFlight: ReadonlyArray<LedgerEntry> = []
    // Counted at record(), not read from the queue: a row handed straight to the writer's
    // waiting take is in neither the queue nor inFlight until that fiber runs.
    let accepted = 0
    let written = 0
    let failedBatches = 0
    let dropped = 0

    /**
     * A failed attempt (the database away or locked; one that hung is abandoned by the
     * store) is tried again, with growing pauses while the database stays away; a batch
     * that did commit is then skipped (see SpendStore.writeBatch).
     */
    const writeAll = (batch: ReadonlyArray<LedgerEntry>) =>
      store.writeBatch(batch).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            written += batch.length
            inFlight = []
          })
        ),
        Effect.tapError((error) =>
          Effect.sync(() => failedBatches++).pipe(Effect.zipRight(Effect.logError(`ledger: ${batch.length} rows not written yet, retrying: ${error.message}`)))
        ),
        Effect.retry(Schedule.exponential("100 millis", 2).pipe(Schedule.union(Schedule.spaced("5 seconds"))))
      )

    const loop = Effect.gen(function*() {
      // Held in inFlight while the batch gathers: shutdown writes it, and the status counts it.
      // A batch left by a failed round is written first.
      if (inFlight.length === 0) {
        inFlight = [yield* Queue.take(queue)]
        yield* Effect.sleep(Duration.millis(config.spend.flushMs))
        inFlight = [...inFlight, ...(yield* Queue.takeUpTo(queue, MAX_BATCH - 1))]
      }
      yield* writeAll(inFlight)
    }).pipe(
      // The writer must outlive anything unforeseen: log it, pause, go on.
      Effect.catchAllDefect((defect) => Effect.logError(`ledger: writer failed, retrying: ${String(defect)}`).pipe(Effect.zipRight(Effect.sleep("1 second")))),
      Effect.forever
    )

    const sweep = Effect.suspend(() => store.sweepReservations(Date.now())).pipe(
      Effect.catchAll((error) => Effect.logWarning(`ledger: reservation sweep failed: ${error.message}`)),
      Effect.repeat(Schedule.spaced("1 minute")),
      Effect.delay("1 minute")
    )

    /** This process's lease, then the reservations of any process whose lease lapsed; at start-up too. */
    let leaseFailing = false
    const lease = Effect.suspend(() => Effect.zipRight(store.renewLease(Date.now()), store.reconcile(Date.now()))).pipe(
      Effect.tap((charged) =>
        Effect.sync(() => (leaseFailing = false)).pipe(
          Effect.zipRight(charged === 0 ? Effect.void : Effect.logWarning(`ledger: charged ${charged} reservations of stopped gateway processes at their reserved worst case`))
        )),
      // Logged once per outage: the writer already says the database is away.
      Effect.catchAll((error) => (leaseFailing ? Effect.void : Effect.sync(() => (leaseFailing = true)).pipe(Effect.zipRight(Effect.logWarning(`ledger: lease not renewed: ${error.message}`))))),
      Effect.catchAllDefect((defect) => Effect.logError(`ledger: lease failed: ${String(defect)}`)),
      Effect.repeat(Schedule.spaced(Duration.millis(LEASE_RENEW_MS)))
    )

    const writer = yield* Effect.forkScoped(loop)
    yield* Effect.forkScoped(sweep)
    const leaseFiber = yield* Effect.forkScoped(lease)
    // On shutdown: stop the loop, then write what was left (a batch that had committed is skipped).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Fiber.interrupt(writer)
        yield* Fiber.interrupt(leaseFiber)
        const rest = [...inFlight, ...(yield* Queue.takeAll(queue))]
        if (rest.length > 0) {
          yield* store.writeBatch(rest).pipe(
            Effect.tap(() => Effect.sync(() => (written += rest.length))),
            Effect.timeout("10 seconds"),
            Effect.catchAllCause((cause) => Effect.logError(`ledger: ${rest.length} rows lost at shutdown: ${Cause.pretty(cause)}`))
          )
        }
        // What is still reserved (requests cut by the shutdown) is charged by the others now, not when the lease would lapse.
        yield* store.endLease.pipe(Effect.timeout("5 seconds"), Effect.ignore)
      }))

    return {
      record: (entry: LedgerEntry): void => {
        if (queue.unsafeSize().pipe((size) => size._tag === "Some" && size.value >= MAX_PENDING)) {
          if (dropped++ % 1_000 === 0) Effect.runFork(Effect.logError(`ledger: queue full (${MAX_PENDING} rows); dropping rows until the database is back`))
          return
        }
        accepted++
        queue.unsafeOffer(entry)
      },
      status: Effect.sync((): LedgerStatus => ({ pending: accepted - written, written, failed_batches: failedBatches, dropped }))
    }
  })
}) {}
