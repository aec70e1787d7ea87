/**
 * SQLite's WAL checkpoints, off the event loop. In WAL mode a commit only appends to the
 * log; a checkpoint copies the log back into the database file and syncs it. SQLite's
 * automatic checkpoint runs inside the commit that crosses its threshold, so with a
 * synchronous driver it stalled the worker's event loop for 5-10 ms (the file's fsync)
 * every few seconds at one request at a time, and about every second under load, every
 * request in flight waiting behind it; far longer on a cloud disk.
 *
 * Here a worker thread opens its own connection to the file and runs a PASSIVE
 * checkpoint every CHECKPOINT_EVERY_MS while the log is busy, less often (up to every
 * QUIET_CHECKPOINT_MS) while it is quiet: it never waits for a writer and no writer
 * waits for it. The gateway's connection keeps an automatic checkpoint far above what the
 * thread leaves behind, as a backstop should the thread fail (it is then set back to
 * SQLite's default, and the failure logged).
 */
import { Effect, type Scope } from "effect"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

const CHECKPOINT_EVERY_MS = 1_000
/** The longest pause between two checkpoints of a quiet log: at 1,000 pages a second (a busy gateway), 8 s stay under the backstop. */
const QUIET_CHECKPOINT_MS = 8_000
/** A log with this many pages or more is busy: the next checkpoint comes after CHECKPOINT_EVERY_MS. */
const BUSY_PAGES = 256
/** The gateway's own automatic checkpoint while the thread runs, in pages (~40 MB of log). */
export const BACKSTOP_PAGES = 10_000
const SQLITE_DEFAULT_PAGES = 1_000

/**
 * The thread's code: CommonJS, given libsql's resolved path (a thread evaluated from a
 * string resolves nothing itself). It stops when asked, closing its connection, rather
 * than being terminated: a thread terminated inside libsql's native code aborts the
 * process.
 */
const THREAD = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.libsql)
const db = new Database(workerData.path)
db.exec("PRAGMA busy_timeout = 0")
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)")
// A gateway at rest still writes (its lease, every second): a page or two a second is
// checkpointed less and less often, up to every maxMs, and a busy log every everyMs.
let wait = workerData.everyMs
let timer
const tick = () => {
  try {
    const [result] = checkpoint.all()
    // Pages written to the log since it last started over.
    const logged = result ? result.log : 0
    wait = logged >= workerData.busyPages ? workerData.everyMs : Math.min(wait * 2, workerData.maxMs)
  } catch (error) {
    // Busy (another process checkpoints, or a schema change holds the file): next time.
    if (!/SQLITE_BUSY|locked/.test(String(error && (error.code || "")) + " " + String(error && error.message))) throw error
  }
  timer = setTimeout(tick, wait)
}
timer = setTimeout(tick, wait)
parentPort.on("message", () => {
  clearTimeout(timer)
  db.close()
  parentPort.close()
})
`

/** How long a stop may take before the thread is terminated after all (it only ever waits for one checkpoint). */
const STOP_MS = 10_000

const libsqlPath = (): string => createRequire(import.meta.url).resolve("libsql")

interface Running {
  readonly stop: () => Promise<void>
}

/** The thread, started; `failed` is told once if it stops on its own or cannot start. */
const startThread = (path: string, failed: (why: string) => void): Running | undefined => {
  let thread: Worker
  try {
    thread = new Worker(THREAD, { eval: true, workerData: { libsql: libsqlPath(), path, everyMs: CHECKPOINT_EVERY_MS, maxMs: QUIET_CHECKPOINT_MS, busyPages: BUSY_PAGES } })
  } catch (error) {
    failed(error instanceof Error ? error.message : String(error))
    return undefined
  }
  let stopping = false
  let exited = false
  thread.on("error", (error) => {
    if (!stopping) failed(error.message)
  })
  thread.on("exit", (code) => {
    exited = true
    if (!stopping) failed(`exit code ${code}`)
  })
  // The thread never keeps the process alive: a gateway that is done exits.
  thread.unref()
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true
        if (exited) return resolve()
        // Held while it stops: a process that exits first would terminate it mid-call.
        thread.ref()
        const late = setTimeout(() => void thread.terminate(), STOP_MS)
        thread.once("exit", () => {
          clearTimeout(late)
          resolve()
        })
        thread.postMessage("stop")
      })
  }
}

/**
 * Checkpoints `path` from a thread for as long as the scope lives, from the first
 * interval on: a scope that closes sooner (the cluster primary migrating the database,
 * a CLI command) starts no thread at all. `fallBack` is called once if the thread stops
 * on its own or cannot start: the caller's connection then checkpoints itself.
 */
export const checkpointer = (path: string, fallBack: (pages: number) => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let told = false
      const failed = (why: string) => {
        if (told) return
        told = true
        fallBack(SQLITE_DEFAULT_PAGES)
        Effect.runFork(Effect.logWarning(`sqlite: the checkpoint thread stopped (${why}); the gateway's connection checkpoints itself`))
      }
      let running: Running | undefined
      const starting = setTimeout(() => (running = startThread(path, failed)), CHECKPOINT_EVERY_MS)
      starting.unref()
      return {
        stop: (): Promise<void> => {
          clearTimeout(starting)
          return running === undefined ? Promise.resolve() : running.stop()
        }
      }
    }),
    (checkpoints) => Effect.promise(() => checkpoints.stop())
  ).pipe(Effect.asVoid)
