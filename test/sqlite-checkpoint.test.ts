/**
 * SQLite's log is checkpointed by a thread (src/billing/db/checkpointer.ts), not inside a
 * commit on the event loop: the gateway's own connection checkpoints only past a backstop
 * it never reaches here, so the database file grows only through the thread.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { statSync } from "node:fs"
import { BACKSTOP_PAGES, checkpointer } from "../src/billing/db/checkpointer"
import { answeredEntry, openStore, sqliteSetting } from "./support/spend"

const sizeOf = (path: string): number => statSync(path).size

describe("SQLite checkpoints", () => {
  it("are made by the thread: the database file takes the log's pages while the connection's own checkpoint is far off", async () => {
    const setting = sqliteSetting()
    if (setting.kind !== "sqlite") throw new Error("expected a SQLite setting")
    const { store, sql, close } = await openStore(setting)
    try {
      const backstop = await Effect.runPromise(sql<{ wal_autocheckpoint: number }>`PRAGMA wal_autocheckpoint`)
      expect(backstop[0]?.wal_autocheckpoint).toBe(BACKSTOP_PAGES)
      const before = sizeOf(setting.path)
      // ~2,000 rows, a few hundred pages of log: far below the backstop.
      for (let i = 0; i < 20; i++) await Effect.runPromise(store.writeBatch(Array.from({ length: 100 }, answeredEntry)))
      expect(sizeOf(`${setting.path}-wal`)).toBeGreaterThan(0)
      // The thread's next checkpoint copies them into the file (it runs every second).
      while (sizeOf(setting.path) <= before) await new Promise((r) => setTimeout(r, 50))
      expect(sizeOf(setting.path)).toBeGreaterThan(before)
    } finally {
      await close()
    }
  })

  it.scoped("hands checkpoints back to the connection when the thread cannot run", () =>
    Effect.gen(function*() {
      const handedBack = yield* Deferred.make<number>()
      yield* checkpointer("/nonexistent-quorum-dir/quorum.db", (pages) => Effect.runSync(Deferred.succeed(handedBack, pages)))
      // SQLite's own default, where the connection checkpoints as it did before the thread.
      expect(yield* Deferred.await(handedBack)).toBe(1_000)
    }))
})
